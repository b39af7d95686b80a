"""The synthetic OCR renderer (SynthDoG-style, QWENVL_FORMAT.md §6): fonts, corpora and documents with every
text line's quad tracked. The `synthdog` source (curate.sources.synthdog) feeds it to `curate build`."""
