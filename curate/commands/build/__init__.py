"""`curate build`: its config, run and summary."""
