"""Looking at the data: contact sheets of samples with boxes and quads drawn, report plots, threshold re-runs."""
