"""The Qwen-VL text format, written and read in one place: the writer helpers and every pattern that parses it
(qwen.py), the format rules (validate.py), boxes and quads back in pixels (regions.py), and the one tokenizer
that packing and training both count with (tokenizer.py)."""
