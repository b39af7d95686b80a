"""`curate demo-data` and `curate train-clip`."""

from __future__ import annotations

import argparse

DATA_HELP = "generate the embedded demo input (images + URL list)"
CLIP_HELP = "train the tiny demo CLIP on matched image-caption pairs (CPU, seconds)"


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo_input", help="folder to write (default out/demo_input)")
    p.add_argument("--rows", type=int, default=600, help="rows in the demo URL list (default 600)")
    p.add_argument("--seed", type=int, default=0)


def data(args: argparse.Namespace) -> int:
    from curate.demo.make import make_demo

    print(f"demo input written to {make_demo(args.out, rows=args.rows, seed=args.seed)}")
    return 0


def add_clip_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", default="out/demo_input/clip_train.parquet", help="parquet with image_path, caption")
    p.add_argument("--out", default="models/curate-tiny-clip.pt", help="checkpoint to write")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)


def clip(args: argparse.Namespace) -> int:
    from curate.clip.train import train_tiny_clip

    report = train_tiny_clip(args.pairs, args.out, steps=args.steps, seed=args.seed)
    print(
        f"tiny CLIP saved to {args.out}: matched mean {report['matched_mean']:.3f}, shuffled mean "
        f"{report['shuffled_mean']:.3f}, AUC {report['auc']:.3f} on held-out pairs"
    )
    return 0
