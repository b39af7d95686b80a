"""Deduplication and decontamination (issue 17): fingerprints, banded search, keep rule, global decisions."""
