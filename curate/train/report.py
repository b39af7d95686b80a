"""The evaluation report as a Markdown page (eval_report.md beside eval_report.json)."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("loss", "held-out loss"),
    ("samples", "generated"),
    ("exact_match", "exact match"),
    ("mean_iou", "mean IoU"),
    ("mean_box_baseline_iou", "mean-box IoU"),
    ("iou_at_0.5", "IoU>=0.5"),
    ("ocr_line_exact_match", "OCR lines exact"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def eval_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation: {report['name']} (stage {report['stage']}, step {report['step']})",
        "",
        "| task | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for task, measures in report["tasks"].items():
        lines.append(f"| {task} | " + " | ".join(_cell(measures.get(key)) for key, _ in COLUMNS) + " |")
    lines += [
        "",
        "Mean-box IoU: the IoU of one constant box, the mean of the held-out target boxes, against each target.",
        "",
    ]
    if report.get("sparse"):
        keys = ("keep_ratio", "recycle", "schedule", "samples", "mean_iou", "mean_box_iou", "iou50", "decoder_flops")
        lines += [
            f"## SparseVLM: connector {report.get('connector')}, visual tokens pruned in the decoder",
            "",
            "| " + " | ".join(keys) + " |",
            "|" + "---|" * len(keys),
        ]
        lines += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in report["sparse"]]
        lines.append("")
    for task, measures in report["tasks"].items():
        for example in measures.get("examples", []):
            lines += [
                f"## {task}",
                "",
                f"- prefix: `{example['prefix']}`",
                f"- target: `{example['target']}`",
                f"- generated: `{example['generated']}`",
                "",
            ]
    return "\n".join(lines)
