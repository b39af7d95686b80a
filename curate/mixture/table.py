"""The realized mixture table that `curate mix` prints and its report page shows."""

from __future__ import annotations

from typing import Any


def mixture_table(stats: dict[str, Any]) -> str:
    """The realized mixture: task, samples, share (vs target), sequences, tokens, packing efficiency."""
    lines = [
        f"curate mix {stats['name']} (seq_len {stats['seq_len']}, tokenizer {stats['tokenizer']}, "
        f"image plan {stats.get('image_plan', 'qwen_vl')})",
        f"  {'task':<18}{'samples':>9}{'share':>8}{'target':>8}{'sequences':>11}{'tokens':>12}{'packing':>9}",
    ]
    for task, r in stats["tasks"].items():
        lines.append(
            f"  {task:<18}{r['samples']:>9}{r['share']:>8.1%}{r['target_share']:>8.1%}{r['sequences']:>11}"
            f"{r['tokens']:>12}{r['efficiency']:>9.1%}"
        )
    for task, weight in stats["missing_tasks"].items():
        lines.append(f"  {task:<18}{'0':>9}   (weight {weight}: no input holds {task} samples; shares renormalized)")
    reasons = ("unpackable", "image_missing", "image_size_unknown")
    left_out = {
        t: {k: r[k] for k in reasons if r.get(k)} for t, r in stats["tasks"].items() if any(r.get(k) for k in reasons)
    }
    if left_out:
        lines.append(
            "  left out of the pool (unpackable: longer than seq_len; image bytes missing; image size unknown to "
            f"the plan): {left_out}"
        )
    lines.append(
        f"  packing efficiency {stats['packing_efficiency']:.1%}; {stats['sft_conversations']} SFT "
        "conversations in sft.json"
    )
    return "\n".join(lines)
