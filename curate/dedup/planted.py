"""A planted-duplicate set built from the real sample photos (issue 17): every original gets known near-copies, so
a deduplicator's decisions can be scored (recall per kind of copy, precision overall).

Originals are the real photos of the shared data (COCO train/val, the Conceptual Captions Flickr photos, the SROIE
and WildReceipt receipts, the ICDAR 2015 scene-text photos). Each original gets one sample of every variant:

- ``copy``: the same bytes under another file name, same caption;
- ``reencode``: decoded and saved again as JPEG at a random quality 30-95;
- ``resize``: scaled by a random factor 0.5-2x (log-uniform), saved as JPEG q95;
- ``crop``: up to 10% of the width and (independently) up to 10% of the height removed, each split at random
  between the two sides, saved as JPEG q95;
- ``flip``: mirrored left-right, saved as JPEG q95;
- ``recaption``: the same bytes with another original's caption.

Ground truth: two samples are duplicates iff they have the same ``source`` and neither is a ``flip``. A mirrored
photo is a different picture for training purposes (text reads backwards, left/right words in captions), so a flip
does not count: merging it with its original is a false positive unless ``score_decisions(..., flip_is_duplicate=
True)``; how often flips were merged is reported on its own either way. The distinct originals are the negatives
of each other (every pair of distinct originals is a non-duplicate pair). With ``per_variant`` only that many
originals (a seeded choice per variant) get each variant; an original that got none is listed with variant
``negative``: a pure distractor.

Everything is deterministic in ``seed``: the parameters of a variant come from a generator seeded with (seed,
original index, variant index), so they do not depend on ``per_variant``.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

VARIANTS = ("copy", "reencode", "resize", "crop", "flip", "recaption")
MAX_CROP = 0.10  # at most this share of the width (and of the height) is cut away
QUALITY = (30, 95)  # re-encode quality range, inclusive
SCALE = (0.5, 2.0)  # resize factor range (log-uniform)
SAVE_QUALITY = 95  # JPEG quality of the resized, cropped and flipped images

# (key prefix, folder under shared data, file pattern); photos and receipts, in this order.
SOURCES = (
    ("coco-train", "coco/train2017", "*.jpg"),
    ("coco-val", "coco/val2017", "*.jpg"),
    ("cc-flickr", "laion/cc_flickr_images", "*.jpg"),
    ("icdar2015", "ocr/icdar2015/imgs", "*.jpg"),
    ("sroie", "ocr/sroie/img", "*.jpg"),
    ("wildreceipt", "ocr/wildreceipt", "*.jpeg"),
)
RECEIPTS = ("sroie", "wildreceipt")  # document scans with the same layout: near each other in hash space


def _coco_captions(shared_data: Path) -> dict[str, str]:
    """file name -> the first caption (lowest annotation id) of each COCO image."""
    captions: dict[str, str] = {}
    for name in ("captions_train2017.json", "captions_val2017_shared20.json"):
        data = json.loads((shared_data / "coco" / "annotations" / name).read_text())
        files = {image["id"]: image["file_name"] for image in data["images"]}
        for ann in sorted(data["annotations"], key=lambda a: a["id"]):
            captions.setdefault(files[ann["image_id"]], ann["caption"].strip())
    return captions


def _flickr_titles(shared_data: Path) -> dict[str, str]:
    with open(shared_data / "laion" / "cc_flickr_images" / "credits.csv", newline="", encoding="utf-8") as f:
        return {row["ImageID"] + ".jpg": row["Title"].strip() for row in csv.DictReader(f)}


def _scene_text(gt: Path) -> list[str]:
    words = [line.split(",", 8)[-1].strip() for line in gt.read_text(encoding="utf-8-sig").splitlines() if line]
    return [w for w in words if w and w != "###"]


def _caption(shared_data: Path, prefix: str, path: Path, coco: dict[str, str], flickr: dict[str, str]) -> str:
    """A real caption where the data has one (COCO captions, Flickr titles), else a plain description."""
    if prefix.startswith("coco"):
        return coco[path.name]
    if prefix == "cc-flickr" and flickr.get(path.name):
        return flickr[path.name]
    if prefix == "icdar2015":
        words = _scene_text(shared_data / "ocr" / "icdar2015" / "gt" / f"gt_{path.stem}.txt")[:4]
        return "A street photo with the text " + ", ".join(f'"{w}"' for w in words) if words else "A street photo"
    if prefix == "sroie":
        key = json.loads((shared_data / "ocr" / "sroie" / "key" / f"{path.stem}.json").read_text())
        return f"A scanned receipt from {key['company']}, total {key['total']}"
    return f"A photo of a shop receipt ({path.name})"


def originals(shared_data: Path) -> list[dict]:
    """The real photos, in a fixed order: key, path (in shared data), caption, kind ('photo' or 'receipt')."""
    shared_data = Path(shared_data)
    coco, flickr = _coco_captions(shared_data), _flickr_titles(shared_data)
    found = []
    for prefix, folder, pattern in SOURCES:
        for path in sorted((shared_data / folder).glob(pattern)):
            found.append({
                "key": f"{prefix}-{path.stem}",
                "path": path,
                "caption": _caption(shared_data, prefix, path, coco, flickr),
                "kind": "receipt" if prefix in RECEIPTS else "photo",
            })  # fmt: skip
    if not found:
        raise FileNotFoundError(f"no sample photos under {shared_data}")
    return found


def _save(img: Image.Image, path: Path, quality: int) -> None:
    img.convert("RGB").save(path, "JPEG", quality=quality)


def _make_variant(variant: str, original: dict, path: Path, rng: np.random.Generator, captions: list[str]) -> tuple:
    """Write one variant of `original` to `path`; return (caption, detail)."""
    caption, detail = original["caption"], ""
    if variant == "copy":
        shutil.copyfile(original["path"], path)
    elif variant == "recaption":
        shutil.copyfile(original["path"], path)
        others = [c for c in captions if c != caption]
        caption = others[int(rng.integers(len(others)))]
    else:
        with Image.open(original["path"]) as img:
            img.load()
        if variant == "reencode":
            q = int(rng.integers(QUALITY[0], QUALITY[1] + 1))
            _save(img, path, q)
            detail = f"q={q}"
        elif variant == "resize":
            f = float(np.exp(rng.uniform(np.log(SCALE[0]), np.log(SCALE[1]))))
            size = (max(1, round(img.width * f)), max(1, round(img.height * f)))
            _save(img.resize(size, Image.Resampling.LANCZOS), path, SAVE_QUALITY)
            detail = f"scale={f:.2f}"
        elif variant == "crop":
            (cut_w, cut_h), (share_left, share_top) = rng.uniform(0, MAX_CROP, 2), rng.uniform(0, 1, 2)
            left, top = round(img.width * cut_w * share_left), round(img.height * cut_h * share_top)
            right = img.width - round(img.width * cut_w * (1 - share_left))
            bottom = img.height - round(img.height * cut_h * (1 - share_top))
            _save(img.crop((left, top, right, bottom)), path, SAVE_QUALITY)
            detail = (f"crop w={100 * cut_w:.1f}% (left {100 * cut_w * share_left:.1f}%) "
                      f"h={100 * cut_h:.1f}% (top {100 * cut_h * share_top:.1f}%)")  # fmt: skip
        elif variant == "flip":
            _save(ImageOps.mirror(img), path, SAVE_QUALITY)
            detail = "mirrored left-right"
        else:
            raise ValueError(f"variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return caption, detail


def make_planted_set(shared_data: Path, out_dir: Path, seed: int = 0, per_variant: int | None = None) -> list[dict]:
    """Write the originals (copied) and their planted variants under `out_dir`; return one dict per sample:
    key, path, caption, variant ('original', one of VARIANTS, or 'negative'), source (key of the original; its own
    key for an original), detail (the variant's parameters), kind ('photo' or 'receipt').

    `per_variant`: how many originals (a seeded choice) get each variant; None = every original gets all."""
    found = originals(shared_data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = {v: set(range(len(found))) for v in VARIANTS}
    if per_variant is not None:
        pick = np.random.default_rng([seed, len(VARIANTS)])  # its own stream: variant parameters stay the same
        chosen = {v: set(pick.permutation(len(found))[:per_variant].tolist()) for v in VARIANTS}
    captions = [o["caption"] for o in found]
    samples = []
    for i, original in enumerate(found):
        key, kind = original["key"], original["kind"]
        path = out_dir / f"{key}{original['path'].suffix}"
        shutil.copyfile(original["path"], path)
        planted = [v for v in VARIANTS if i in chosen[v]]
        role = "original" if planted else "negative"
        samples.append({"key": key, "path": str(path), "caption": original["caption"], "variant": role,
                        "source": key, "detail": "", "kind": kind})  # fmt: skip
        for j, variant in enumerate(VARIANTS):
            if variant not in planted:
                continue
            suffix = original["path"].suffix if variant in ("copy", "recaption") else ".jpg"
            vpath = out_dir / f"{key}~{variant}{suffix}"
            rng = np.random.default_rng([seed, i, j])
            caption, detail = _make_variant(variant, original, vpath, rng, captions)
            samples.append({"key": f"{key}~{variant}", "path": str(vpath), "caption": caption, "variant": variant,
                            "source": key, "detail": detail, "kind": kind})  # fmt: skip
    return samples


def _group(sample: dict, flip_is_duplicate: bool) -> str:
    """The duplicate class of a sample: its source, except that a flip is a class of its own by default."""
    if sample["variant"] == "flip" and not flip_is_duplicate:
        return sample["source"] + "~flip"
    return sample["source"]


def true_pairs(samples: Iterable[dict], flip_is_duplicate: bool = False) -> set[frozenset[str]]:
    """Every unordered pair of sample keys that are duplicates of each other (same source, no flip)."""
    by_group: dict[str, list[str]] = {}
    for s in samples:
        by_group.setdefault(_group(s, flip_is_duplicate), []).append(s["key"])
    return {frozenset((a, b)) for keys in by_group.values() for i, a in enumerate(keys) for b in keys[i + 1 :]}


def representatives(keys: Iterable[str], dup_of: dict[str, str | None]) -> dict[str, str]:
    """key -> the kept sample its cluster collapses to (follow dup_of until a key maps to None or is absent)."""
    keys = list(keys)
    known = set(keys)
    unknown = {k for k, v in dup_of.items() if k not in known or (v is not None and v not in known)}
    if unknown:
        raise ValueError(f"dup_of names keys not in the set: {sorted(unknown)[:5]}")
    root: dict[str, str] = {}
    for key in keys:
        chain, cur = [], key
        while cur not in root and dup_of.get(cur) is not None:
            chain.append(cur)
            cur = dup_of[cur]
            if cur in chain:
                raise ValueError(f"dup_of has a cycle through {cur!r}")
        top = root.get(cur, cur)
        for k in [*chain, cur]:
            root[k] = top
    return root


def score_decisions(samples: list[dict], dup_of: dict[str, str | None], flip_is_duplicate: bool = False) -> dict:
    """Score a deduplicator's decisions against the planted truth.

    `dup_of`: sample key -> the key it was dropped as a duplicate of (None or absent = kept). Following it gives each
    sample's representative (the kept sample of its cluster), whichever sample of a group was kept.

    - recall of a variant: the share of its samples whose representative is their original's representative (found
      whichever way round the decision went). `overall.recall` pools every variant that counts as a duplicate.
    - precision: of the samples marked duplicate, the share whose representative is in the same duplicate group
      (same source, and flips apart unless `flip_is_duplicate`).
    - flips: `per_variant['flip']['merged']` is the share merged with their original either way; with the default
      they are not duplicates, so a merged flip is counted wrong in precision and flips are not in overall recall.
    - kept / groups: how many samples stay, and how many would if every planted duplicate were found and nothing
      else merged.
    """
    by_key = {s["key"]: s for s in samples}
    root = representatives(by_key, dup_of)
    original_root = {s["source"]: root[s["key"]] for s in samples if s["key"] == s["source"]}
    per_variant: dict[str, dict] = {}
    found_all = total_all = 0
    for variant in VARIANTS:
        rows = [s for s in samples if s["variant"] == variant]
        if not rows:
            continue
        found = sum(root[s["key"]] == original_root[s["source"]] for s in rows)
        name = "merged" if variant == "flip" and not flip_is_duplicate else "recall"
        per_variant[variant] = {"n": len(rows), name: found / len(rows)}
        if name == "recall":
            found_all, total_all = found_all + found, total_all + len(rows)
    marked = [k for k, v in dup_of.items() if v is not None]
    right = sum(_group(by_key[k], flip_is_duplicate) == _group(by_key[root[k]], flip_is_duplicate) for k in marked)
    groups = len({_group(s, flip_is_duplicate) for s in samples})
    overall = {
        "recall": found_all / total_all if total_all else 1.0,
        "precision": right / len(marked) if marked else 1.0,
        "marked": len(marked),
        "false_merges": len(marked) - right,
        "kept": len(samples) - len(marked),
        "groups": groups,
    }
    return {"per_variant": per_variant, "overall": overall}
