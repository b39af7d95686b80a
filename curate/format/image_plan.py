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
"""

from __future__ import annotations

from dataclasses import dataclass

TILE = 384
MAX_TILES = 9
GRID_SIDE = 14  # 27 x 27 SigLIP patches, padded to 28 x 28, 2 x 2 unfold
QWEN_VL_QUERIES = 256
MEAN_COLOUR = (127, 127, 127)  # int(0.5 * 255): SigLIP's normalisation mean, DeepSeek-VL2's padding colour
TILING_MAX_IMAGES = 2
PLANS = ("qwen_vl", "deepseek_vl2")


def candidate_resolutions(tile: int = TILE, max_tiles: int = MAX_TILES) -> list[tuple[int, int]]:
    """(width, height) of every tile grid of at most `max_tiles` tiles, columns-major (m, then n)."""
    return [
        (m * tile, n * tile) for m in range(1, max_tiles + 1) for n in range(1, max_tiles + 1) if m * n <= max_tiles
    ]


CANDIDATES = candidate_resolutions()


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


def plan_image(plan: str, width: int, height: int, images_in_sample: int = 1) -> ImagePlan:
    """The plan of one image of `width` x `height` in a sample holding `images_in_sample` images."""
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height}: both sides must be >= 1")
    if plan == "qwen_vl":
        return ImagePlan(plan, (width, height), (0, 0), (0, 0), (), QWEN_VL_QUERIES)
    check_plan(plan)
    if images_in_sample > TILING_MAX_IMAGES:
        canvas = (TILE, TILE)
    else:
        canvas = select_best_resolution((width, height))
    columns, rows = canvas[0] // TILE, canvas[1] // TILE
    tiles = tuple((c * TILE, r * TILE, (c + 1) * TILE, (r + 1) * TILE) for r in range(rows) for c in range(columns))
    return ImagePlan(plan, (width, height), (columns, rows), canvas, tiles, deepseek_tokens(columns, rows))


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
    sx, sy, ox, oy = pad_geometry(plan.size, plan.canvas)
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
