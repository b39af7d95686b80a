"""`curate train CONFIG`: the reference Qwen-VL model on curate shards (stages 1-3, resumable, DDP)."""

from __future__ import annotations

import argparse

from curate.commands.cli import config_arguments, overrides
from curate.core.storage import shown

HELP = "train the reference Qwen-VL model on curate shards (stage 1, 2 or 3; resumes from the last checkpoint)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arguments(p, "pipelines/train_demo.yaml", address=False)
    p.add_argument("--stop-after", type=int, metavar="STEP", help="stop (with a checkpoint) after this step")


def main(args: argparse.Namespace) -> int:
    from curate.commands.train.config import load_train
    from curate.commands.train.run import main as train

    cfg = load_train(args.config, overrides(args))
    summary = train(cfg, overwrite=args.overwrite, stop_after=args.stop_after)
    if summary["finished"]:
        out = shown(cfg.out_dir)
        print(
            f"curate train {cfg.name} -> {out}: {summary['steps']} steps, loss {summary['first_loss']:.3f} "
            f"at step 0 -> {summary['final_loss']:.3f} (mean of the last 10; {summary['loss_reduction']:.1%} lower), "
            f"{summary['tokens_per_s']:.0f} tokens/s; eval report {out}/eval_report.md"
        )
    return 0
