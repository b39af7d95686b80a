"""Contact sheets: each view's image with its boxes and quads drawn and labelled, and its text beneath; as one PNG
or as a self-contained HTML page (images inline, text selectable)."""

from __future__ import annotations

import base64
import functools
import html
import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from curate.core.images import decode_rgb
from curate.format.regions import regions
from curate.inspect.views import View

log = logging.getLogger(__name__)
TILE = (320, 240)  # image area of a tile, pixels
TEXT_LINES = 9
LINE = 15
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))
PLAN_COLOUR = (255, 225, 25)  # the image plan's tile grid (curate inspect --plan)


@dataclass(frozen=True)
class Drawn:
    """A region as drawn: its label and points in the source image's pixels (for checking against annotations)."""

    key: str
    kind: str
    label: str
    points: tuple[tuple[float, float], ...]


@functools.cache
def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A font that draws Latin and Chinese (the CJK family `make fonts` installs), else PIL's default."""
    from curate.core.errors import ConfigError
    from curate.ocr.fonts import available_fonts

    try:
        return ImageFont.truetype(available_fonts()["cjk"][0].path, size)
    except (ConfigError, OSError):
        log.warning("no CJK font found (make fonts): Chinese text in previews will not render")
        return ImageFont.load_default(size)


def render_image(view: View, plan: str | None = None) -> tuple[Image.Image, list[Drawn]]:
    """The view's image fitted in a tile with its regions drawn (a grey panel when no bytes were kept); with
    `plan` (deepseek_vl2), the tile grid the plan cuts it into and its token count."""
    canvas = Image.new("RGB", TILE, (235, 235, 235))
    draw = ImageDraw.Draw(canvas)
    if view.image is None:
        draw.text((10, TILE[1] // 2 - 8), "no image bytes kept", fill=(90, 90, 90), font=font(14))
        return canvas, []
    try:
        img = decode_rgb(view.image)
    except Exception:  # noqa: BLE001 - an undecodable image is shown as such, not a crash
        draw.text((10, TILE[1] // 2 - 8), "image does not decode", fill=(180, 0, 0), font=font(14))
        return canvas, []
    size = img.size
    scale = min(TILE[0] / size[0], TILE[1] / size[1])
    shown = img.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.BILINEAR)
    ox, oy = (TILE[0] - shown.width) // 2, (TILE[1] - shown.height) // 2
    canvas.paste(shown, (ox, oy))
    drawn, colours = [], {}
    for region in regions(view.text):
        points = region.pixels(size)
        colour = colours.setdefault(region.label, PALETTE[len(colours) % len(PALETTE)])
        on_tile = [(ox + x * scale, oy + y * scale) for x, y in points]
        if region.kind == "box":
            draw.rectangle([on_tile[0], on_tile[1]], outline=colour, width=2)
        else:
            draw.polygon(on_tile, outline=colour, width=2)
        if region.label:
            _label(draw, on_tile[0], region.label, colour)
        drawn.append(Drawn(view.key, region.kind, region.label, points))
    if plan:
        _draw_plan(draw, plan, size, (ox, oy, scale))
    return canvas, drawn


def _draw_plan(draw: ImageDraw.ImageDraw, plan: str, size: tuple[int, int], at: tuple[float, float, float]) -> None:
    from curate.format.image_plan import plan_image, tiles_in_image

    ox, oy, scale = at
    planned = plan_image(plan, *size)
    for x0, y0, x1, y1 in tiles_in_image(planned):
        draw.rectangle([ox + x0 * scale, oy + y0 * scale, ox + x1 * scale, oy + y1 * scale], outline=PLAN_COLOUR)
    columns, rows = planned.grid
    grid = f"{columns}x{rows} · " if columns else ""
    _label(draw, (ox, oy), f"{grid}{planned.tokens} tok", PLAN_COLOUR)


def _label(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour: tuple[int, int, int]) -> None:
    text = text if len(text) <= 28 else text[:27] + "…"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font(11))
    x, y = at[0], max(0.0, at[1] - (bottom - top) - 4)
    draw.rectangle([x, y, x + right - left + 4, y + bottom - top + 4], fill=colour)
    draw.text((x + 2, y + 1), text, fill="white", font=font(11))


def wrap(text: str, width: float) -> list[str]:
    """Lines of `text` no wider than `width` pixels in the tile font (by character: CJK has no spaces)."""
    lines, line = [], ""
    for char in text.replace("\n", " "):
        if font(12).getlength(line + char) > width:
            lines.append(line)
            line = char.lstrip()
        else:
            line += char
    return [*lines, line] if line else lines


def text_lines(view: View) -> list[str]:
    """Title, then the wrapped text, then the details, cut to the tile's text area."""
    width = TILE[0] - 8
    title = f"{view.key} · {view.status or view.task}"
    body = wrap(view.text, width) or ["(no text)"]
    details = [d for detail in view.details for d in wrap(detail, width)[:1]]
    lines = [title, *body[: TEXT_LINES - 1 - len(details)], *details]
    return lines[:TEXT_LINES]


def render_tile(view: View, plan: str | None = None) -> tuple[Image.Image, list[Drawn]]:
    image, drawn = render_image(view, plan)
    tile = Image.new("RGB", (TILE[0], TILE[1] + TEXT_LINES * LINE + 8), "white")
    tile.paste(image, (0, 0))
    draw = ImageDraw.Draw(tile)
    for i, line in enumerate(text_lines(view)):
        colour = (200, 0, 0) if view.status not in (None, "kept") and line == view.status else (20, 20, 20)
        draw.text((4, TILE[1] + 4 + i * LINE), line, fill=colour, font=font(12))
    return tile, drawn


def contact_sheet(views: list[View], columns: int = 4, plan: str | None = None) -> tuple[Image.Image, list[Drawn]]:
    """All views as one grid image, and every region drawn (and the image plan's tile grid, with `plan`)."""
    if not views:
        raise ValueError("no samples to draw")
    tiles = [render_tile(v, plan) for v in views]
    width, height = tiles[0][0].size
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * (width + 6) + 6, rows * (height + 6) + 6), (200, 200, 200))
    for i, (tile, _) in enumerate(tiles):
        sheet.paste(tile, (6 + (i % cols) * (width + 6), 6 + (i // cols) * (height + 6)))
    return sheet, [d for _, drawn in tiles for d in drawn]


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def html_sheet(views: list[View], title: str, plan: str | None = None) -> tuple[str, list[Drawn]]:
    """A self-contained HTML page: one figure per view, image inline, text as text."""
    figures, everything = [], []
    for view in views:
        image, drawn = render_image(view, plan)
        everything += drawn
        lines = "<br>".join(html.escape(line) for line in [view.text, *view.details])
        figures.append(
            f'<figure><img alt="{html.escape(view.key)}" src="{data_uri(png_bytes(image))}">'
            f"<figcaption><b>{html.escape(view.key)} · {html.escape(view.status or view.task)}</b><br>"
            f"{lines}</figcaption></figure>"
        )
    return page(title, "".join(figures)), everything


def page(title: str, body: str) -> str:
    """The one HTML shell of curate's pages: no external resources, so it opens anywhere, offline."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
main {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; width: 320px; background: #fafafa; border: 1px solid #ddd; }}
figure.wide {{ width: auto; max-width: 100%; }}
figure img {{ display: block; max-width: 100%; }}
figcaption {{ font-size: 12px; padding: 6px; overflow-wrap: anywhere; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<main>{body}</main>
</body></html>
"""
