"""`curate export`: task samples as a Hugging Face dataset with a card, or as LLaVA conversations (issue 21)."""
