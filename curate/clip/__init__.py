"""open_clip model loading and the tiny demo CLIP trainer."""
