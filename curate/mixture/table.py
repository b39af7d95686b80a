"""The realized mixture table that `curate mix` prints and its report page shows."""

from __future__ import annotations

from typing import Any


def mixture_table(stats: dict[str, Any]) -> str:
    """The realized mixture: task, samples, share (vs target), sequences, tokens, packing efficiency."""
    lines = [
        f"curate mix {stats['name']} (seq_len {stats['seq_len']}, tokenizer {stats['tokenizer']})",
        f"  {'task':<18}{'samples':>9}{'share':>8}{'target':>8}{'sequences':>11}{'tokens':>12}{'packing':>9}",
    ]
    for task, r in stats["tasks"].items():
        lines.append(
            f"  {task:<18}{r['samples']:>9}{r['share']:>8.1%}{r['target_share']:>8.1%}{r['sequences']:>11}"
            f"{r['tokens']:>12}{r['efficiency']:>9.1%}"
        )
    for task, weight in stats["missing_tasks"].items():
        lines.append(f"  {task:<18}{'0':>9}   (weight {weight}: no input holds {task} samples; shares renormalized)")
    left_out = {
        t: {k: r[k] for k in ("unpackable", "image_missing") if r.get(k)}
        for t, r in stats["tasks"].items()
        if r.get("unpackable") or r.get("image_missing")
    }
    if left_out:
        lines.append(f"  left out of the pool (longer than seq_len, or image bytes missing): {left_out}")
    lines.append(
        f"  packing efficiency {stats['packing_efficiency']:.1%}; {stats['sft_conversations']} SFT "
        "conversations in sft.json"
    )
    return "\n".join(lines)
