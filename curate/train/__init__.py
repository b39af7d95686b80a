"""The reference training side: the Qwen-VL model at any size and its tokenizer (issue 6, in progress)."""
