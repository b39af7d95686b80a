"""`curate bench`: throughput and memory beside the raw model and peer tools (config, run, one module per part)."""
