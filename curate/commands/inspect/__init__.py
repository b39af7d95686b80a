"""`curate inspect`: its config, run and summary."""
