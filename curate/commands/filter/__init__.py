"""`curate filter`: stage-1 filtering (config, run, summary)."""
