"""`curate mix`: its config, run and summary."""
