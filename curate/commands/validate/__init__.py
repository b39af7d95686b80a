"""`curate validate PATH...`: the format rules on task samples; on a mix output also images, boundaries,
duplicates, tar = parquet and sft.json."""
