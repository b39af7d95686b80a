"""`curate train`: its config, run and summary."""
