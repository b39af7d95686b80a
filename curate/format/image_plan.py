"""Image plans (issue 18): how many tokens an image of a given size costs a model, and how it is cut into views.

- `qwen_vl`: every image is resized to 448 x 448 and resampled to 256 queries (Qwen-VL, Bai et al. 2023, sec. 2.1).
- `deepseek_vl2`: DeepSeek-VL2's dynamic tiling (`processing_deepseek_vl_v2.py`, Wu et al. 2024, sec. 2.1):
  - candidates: (m * 384, n * 384) for m, n >= 1 with m * n <= 9;
  - choice (LLaVA-NeXT's `select_best_resolution`): for each candidate W x H, s = min(W / w, H / h),
    effective = min(int(w * s) * int(h * s), w * h), waste = W * H - effective; the largest effective
    resolution wins, then the least waste; on a full tie the earlier candidate (the loop keeps the first);
  - views: a global thumbnail (the image padded to 384 x 384 with the mean colour, aspect kept) and the image
    padded the same way to W x H, cut into 384 x 384 tiles row by row;
  - tokens: SigLIP's 27 x 27 patches padded to 28 x 28, a 2 x 2 unfold + MLP: 14 x 14 per view. The global view
    is 14 rows of (14 + 1 newline), then 1 view separator, then (rows * 14) rows of (columns * 14 + 1);
  - a sample with more than 2 images gets no tiling: each image is the global view plus one 384 tile.
- `anyres_max_9`: LLaVA-OneVision's AnyRes-Max-9 as transformers' `LlavaOnevisionProcessor` counts it
  (`_get_number_of_features`, `_get_unpadded_features`; Li et al. 2024, sec. 3) for tokens planning; the reference
  model does not train under it:
  - candidates: (w * 384, h * 384) for 1 <= w, h <= 6, in the processor's pinpoint order (height-major); the same
    select_best_resolution as above;
  - views: the image resized to 384 x 384 (the base view) and the image resized into the canvas keeping its aspect
    (the short side rounded up) and padded equally (the odd pixel after), cut into 384 x 384 tiles row by row;
  - tokens: SigLIP's 27 x 27 per view. Base view 729; the local grid (rows * 27) x (columns * 27) loses the rows
    or columns that show only padding (unpadding), is shrunk by r = sqrt(h * w / (9 * 27^2)) to
    int(h // r) x int(w // r) when r > 1.1, and gets one newline token per row: 729 + h * w + h;
  - every image of a sample is counted this way (the processor does not look at the image count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TILE = 384
MAX_TILES = 9
GRID_SIDE = 14  # 27 x 27 SigLIP patches, padded to 28 x 28, 2 x 2 unfold
QWEN_VL_QUERIES = 256
MEAN_COLOUR = (127, 127, 127)  # int(0.5 * 255): SigLIP's normalisation mean, DeepSeek-VL2's padding colour
TILING_MAX_IMAGES = 2
ANYRES_SIDE = 27  # SigLIP-so400m at 384 px, patch 14: 27 x 27 tokens per view
ANYRES_MAX_VIEWS = 9  # the 9 of anyres_max_9: the local grid is shrunk to about 9 views' worth of tokens
ANYRES_GRID = 6  # pinpoints (1x1) .. (6x6) tiles
PLANS = ("qwen_vl", "deepseek_vl2", "anyres_max_9")
TRAINED_PLANS = ("qwen_vl", "deepseek_vl2")  # the plans the reference model lays out (curate train)


def candidate_resolutions(tile: int = TILE, max_tiles: int = MAX_TILES) -> list[tuple[int, int]]:
    """(width, height) of every tile grid of at most `max_tiles` tiles, columns-major (m, then n)."""
    return [
        (m * tile, n * tile) for m in range(1, max_tiles + 1) for n in range(1, max_tiles + 1) if m * n <= max_tiles
    ]


CANDIDATES = candidate_resolutions()
# LlavaOnevisionImageProcessor's image_grid_pinpoints are [height, width] pairs, height-major
ANYRES_CANDIDATES = [(w * TILE, h * TILE) for h in range(1, ANYRES_GRID + 1) for w in range(1, ANYRES_GRID + 1)]


def select_best_resolution(size: tuple[int, int], candidates: list[tuple[int, int]] = CANDIDATES) -> tuple[int, int]:
    """The candidate with the largest effective resolution, then the least waste (first on a full tie)."""
    width, height = size
    best, best_effective, best_waste = candidates[0], -1, float("inf")
    for cand_w, cand_h in candidates:
        scale = min(cand_w / width, cand_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = cand_w * cand_h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (cand_w, cand_h), effective, waste
    return best


@dataclass(frozen=True)
class ImagePlan:
    plan: str
    size: tuple[int, int]  # the original width and height
    grid: tuple[int, int]  # local tiles: [columns, rows]; (0, 0) when the plan has no tiles
    canvas: tuple[int, int]  # the padded local canvas (width, height)
    tiles: tuple[tuple[int, int, int, int], ...]  # tile boxes on the canvas, row-major
    tokens: int

    def as_dict(self) -> dict:
        return {
            "plan": self.plan,
            "size": list(self.size),
            "grid": list(self.grid),
            "canvas": list(self.canvas),
            "tiles": [list(t) for t in self.tiles],
            "tokens": self.tokens,
        }


def deepseek_tokens(columns: int, rows: int) -> int:
    """Global view (14 rows of 14 + newline), the view separator, then the local grid with a newline per row."""
    return GRID_SIDE * (GRID_SIDE + 1) + 1 + rows * GRID_SIDE * (columns * GRID_SIDE + 1)


def anyres_tokens(width: int, height: int, columns: int, rows: int) -> int:
    """LLaVA-OneVision's tokens for an image of `width` x `height` on a grid of `columns` x `rows` 384 px tiles:
    the base view, the unpadded (and, past 1.1 x 9 views, shrunk) local grid, and one newline per grid row."""
    grid_h, grid_w = ANYRES_SIDE * rows, ANYRES_SIDE * columns
    if width / height > grid_w / grid_h:  # wider than the canvas: padding rows above and below
        grid_h -= (grid_h - int(height * (grid_w / width))) // 2 * 2
    else:
        grid_w -= (grid_w - int(width * (grid_h / height))) // 2 * 2
    local, newlines = grid_h * grid_w, grid_h
    ratio = math.sqrt(grid_h * grid_w / (ANYRES_MAX_VIEWS * ANYRES_SIDE**2))
    if ratio > 1.1:
        local, newlines = int(grid_h // ratio) * int(grid_w // ratio), int(grid_h // ratio)
    return ANYRES_SIDE * ANYRES_SIDE + local + newlines


def plan_image(plan: str, width: int, height: int, images_in_sample: int = 1) -> ImagePlan:
    """The plan of one image of `width` x `height` in a sample holding `images_in_sample` images."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height}: both sides must be >= 1")
    if plan == "qwen_vl":
        return ImagePlan(plan, (width, height), (0, 0), (0, 0), (), QWEN_VL_QUERIES)
    check_plan(plan)
    anyres = plan == "anyres_max_9"
    if anyres:
        canvas = select_best_resolution((width, height), ANYRES_CANDIDATES)
    else:
        canvas = (TILE, TILE) if images_in_sample > TILING_MAX_IMAGES else select_best_resolution((width, height))
    columns, rows = canvas[0] // TILE, canvas[1] // TILE
    tiles = tuple((c * TILE, r * TILE, (c + 1) * TILE, (r + 1) * TILE) for r in range(rows) for c in range(columns))
    tokens = anyres_tokens(width, height, columns, rows) if anyres else deepseek_tokens(columns, rows)
    return ImagePlan(plan, (width, height), (columns, rows), canvas, tiles, tokens)


def image_tokens(plan: str, width: int, height: int, images_in_sample: int = 1) -> int:
    return plan_image(plan, width, height, images_in_sample).tokens


def check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise ValueError(f"image plan {plan!r}; valid: {', '.join(PLANS)}")
    return plan


def sample_image_tokens(plan: str, sizes: list | None, images: int) -> list[int] | None:
    """Tokens between `<img>` and `</img>` of each of a sample's `images` images under `plan`, from their recorded
    (width, height); None when the plan needs a size the sample does not record. `<img>`/`</img>` themselves
    are 2 more tokens per image (QWENVL_FORMAT.md §3.2)."""
    if plan == "qwen_vl":
        return [QWEN_VL_QUERIES] * images
    check_plan(plan)
    sizes = list(sizes or [])
    if len(sizes) < images or any(not size or min(size) < 1 for size in sizes[:images]):
        return None
    return [plan_image(plan, int(w), int(h), images).tokens for w, h in sizes[:images]]


def anyres_pad_geometry(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, int, int]:
    """(x scale, y scale, x offset, y offset) of LLaVA-OneVision's resize into `target` (the short side rounded
    up, `get_patch_output_size`) and its centred padding (the odd pixel after, `_pad_for_patching`)."""
    (w, h), (tw, th) = size, target
    if tw / w < th / h:
        new_w, new_h = tw, min(math.ceil(h * tw / w), th)
    else:
        new_w, new_h = min(math.ceil(w * th / h), tw), th
    return new_w / w, new_h / h, (tw - new_w) // 2, (th - new_h) // 2


def pad_geometry(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, int, int]:
    """(x scale, y scale, x offset, y offset) of PIL's ImageOps.pad(image of `size`, `target`), centred."""
    (w, h), (tw, th) = size, target
    if w / h == tw / th:
        return tw / w, th / h, 0, 0
    if w / h > tw / th:
        new_h = round(h / w * tw)
        return tw / w, new_h / h, 0, round((th - new_h) * 0.5)
    new_w = round(w / h * th)
    return new_w / w, th / h, round((tw - new_w) * 0.5), 0


def tiles_in_image(plan: ImagePlan) -> list[tuple[float, float, float, float]]:
    """The tile boxes mapped back onto the original image (clipped to it): what each tile sees."""
    geometry = anyres_pad_geometry if plan.plan == "anyres_max_9" else pad_geometry
    sx, sy, ox, oy = geometry(plan.size, plan.canvas)
    w, h = plan.size
    boxes = []
    for x0, y0, x1, y1 in plan.tiles:
        box = ((x0 - ox) / sx, (y0 - oy) / sy, (x1 - ox) / sx, (y1 - oy) / sy)
        boxes.append((max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])))
    return boxes


def views(image, plan: ImagePlan) -> tuple:  # noqa: ANN001 - PIL images in and out
    """(global thumbnail, [local tiles]) of a PIL image under a deepseek_vl2 plan, as DeepSeek-VL2 cuts them:
    ImageOps.pad to 384 x 384 and to the canvas with the mean colour, then row-major 384 crops of the canvas."""
    from PIL import ImageOps

    if plan.plan != "deepseek_vl2":
        raise ValueError(f"views: only deepseek_vl2 cuts views, not {plan.plan}")
    image = image.convert("RGB")
    thumbnail = ImageOps.pad(image, (TILE, TILE), color=MEAN_COLOUR)
    canvas = ImageOps.pad(image, plan.canvas, color=MEAN_COLOUR)
    return thumbnail, [canvas.crop(box) for box in plan.tiles]
