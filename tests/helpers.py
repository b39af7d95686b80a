"""Test helpers: pipeline-shaped batches and demo-run overrides."""

from pathlib import Path

import pandas as pd

from curate.core.schema import LEDGER_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def make_batch(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    data = {c: [None] * n for c in LEDGER_COLUMNS}
    data["key"] = [f"{i:09d}" for i in range(n)]
    data.update(columns)
    return pd.DataFrame(data)


def demo_overrides(demo_input: Path, tiny_clip: Path, out: Path) -> list[str]:
    """--set overrides that point pipelines/filter_demo.yaml at test-owned inputs and outputs."""
    return [
        f"input.url_list.path={demo_input / 'urls.parquet'}",
        f"input.url_list.serve_dir={demo_input / 'files'}",
        f"filters.clip_score.pretrained={tiny_clip}",
        f"output.dir={out}",
    ]


def save_tiny_hf_tokenizer(path: Path, texts: list[str]) -> Path:
    """A byte-level BPE Hugging Face tokenizer trained on `texts`, saved to `path` (a local tokenizer folder)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(special_tokens=["[UNK]"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(path)
    return path
