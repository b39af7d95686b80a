"""`curate demo-data` (the embedded demo input) and `curate train-clip` (the tiny demo CLIP)."""
