"""`curate tiles --plan P WxH [WxH ...]`: one JSON line per size with the tile grid, the tile boxes and the token
count, for planning sequence budgets (curate.format.image_plan)."""

from __future__ import annotations

import argparse
import json
import re

from curate.core.errors import ConfigError

HELP = "the tile grid, tile boxes and token count of images of given sizes under an image plan"
SIZE = re.compile(r"(\d+)[xX](\d+)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from curate.format.image_plan import PLANS

    p.add_argument("sizes", nargs="+", metavar="WxH", help="image sizes in pixels, e.g. 640x480 1920x1080")
    p.add_argument("--plan", default="deepseek_vl2", choices=PLANS, help="image plan (default deepseek_vl2)")
    p.add_argument("--images", type=int, default=1, help="images in the sample (deepseek_vl2 tiles only <= 2)")


def main(args: argparse.Namespace) -> int:
    from curate.format.image_plan import plan_image

    if args.images < 1:
        raise ConfigError("--images must be >= 1")
    for text in args.sizes:
        found = SIZE.fullmatch(text.strip())
        if not found or min(int(found[1]), int(found[2])) < 1:
            raise ConfigError(f"size {text!r}: write WIDTHxHEIGHT with both sides >= 1, e.g. 640x480")
        plan = plan_image(args.plan, int(found[1]), int(found[2]), args.images)
        print(json.dumps({**plan.as_dict(), "images_in_sample": args.images}))
    return 0
