"""Exports of task samples for other tools (issue 21): a Hugging Face dataset with a card, LLaVA conversations."""
