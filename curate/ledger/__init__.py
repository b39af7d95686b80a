"""What a filter run reads and writes besides the download: the normalized input, local images, the ledger, the kept
samples' shards, stats.json and the funnel."""
