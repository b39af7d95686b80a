"""Synthetic OCR documents (SynthDoG-style, QWENVL_FORMAT.md §6) with every text line's quad tracked."""
