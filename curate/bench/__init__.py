"""`curate bench`: throughput and memory measured here and now, each beside its baseline (the raw model or a
peer tool) measured in the same run, as ratios. Reports only: nothing here asserts a timing (issue 9)."""
