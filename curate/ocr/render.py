"""Render one synthetic document (SynthDoG-style, QWENVL_FORMAT.md §6.2) and track every text line's quad.

A document is a textured paper with paragraphs of text lines (1-3 columns, varied fonts, sizes, colours and
alignment) placed on a photo or texture background by ONE homography (rotation + perspective + placement); the
same homography maps each line's ink box to its quad, so quads follow the pixels exactly. Photometric effects
(shadow, brightness/contrast, blur, noise, JPEG) come after and move no pixel.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from curate.ocr.corpus import Corpus
from curate.ocr.fonts import Font, coverage
from curate.ocr.geometry import apply, homography

SCRIPT_OF = {"en": "latin", "zh": "cjk"}


@dataclass(frozen=True, kw_only=True)
class RenderSettings:
    short_side: tuple[int, int] = (448, 1024)  # canvas short side in pixels
    aspect: tuple[float, float] = (1.0, 1.6)  # long / short side
    zh_share: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)
    text_scale: tuple[float, float] = (0.0334, 0.07)  # body font size / paper short side (SynthDoG: 0.0334..0.1)
    max_lines: int = 0  # stop a document after this many lines (0: fill the paper)


@dataclass
class Line:
    text: str
    quad: list[tuple[float, float]]  # TL, TR, BR, BL in canvas pixels
    box: tuple[int, int, int, int]  # ink box on the paper, before the homography
    mask: np.ndarray | None = None  # the line's own ink (paper pixels inside `box`), kept on request


@dataclass
class Document:
    image: bytes  # JPEG
    width: int
    height: int
    language: str
    font: str  # family
    font_path: str
    lines: list[Line]
    paper_to_canvas: np.ndarray = field(repr=False)


class Renderer:
    """Holds fonts, corpora and backgrounds; render(seed, index) is deterministic for the pair."""

    def __init__(
        self,
        settings: RenderSettings,
        fonts: dict[str, tuple[Font, ...]],
        corpora: dict[str, Corpus],
        backgrounds: list[Image.Image],
    ) -> None:
        self.settings, self.fonts, self.corpora, self.backgrounds = settings, fonts, corpora, backgrounds
        cv2.setNumThreads(1)
        self._font_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}
        self._advance_cache: dict[tuple[str, int], dict[str, float]] = {}
        # Unit Gaussian noise drawn once (fixed seed); documents take random windows of it. Drawing fresh full-size
        # noise per document cost more than rendering the text.
        side = int(settings.short_side[1] * settings.aspect[1]) + 1
        unit = np.random.default_rng(20231).standard_normal((side, side), dtype=np.float32)
        self._noise = np.clip(128 + 5 * unit, 0, 255).astype(np.uint8)  # grain, sigma 5 grey levels

    def render(self, seed: int, index: int, keep_masks: bool = False) -> Document:
        rng = np.random.default_rng([seed, index])
        lang = "zh" if rng.random() < self.settings.zh_share else "en"
        font = self.fonts[SCRIPT_OF[lang]][int(rng.integers(len(self.fonts[SCRIPT_OF[lang]])))]
        width, height = self._canvas_size(rng)
        canvas = self._background(rng, (width, height))
        paper_size = (
            (width, height)
            if rng.random() < 0.5
            else (int(width * rng.uniform(0.6, 0.9)), int(height * rng.uniform(0.6, 0.9)))
        )
        paper = _paper(rng, paper_size, self._noise)
        lines = self._layout(rng, paper, font, lang, keep_masks)
        h = _placement(rng, paper_size, (width, height))
        # OpenCV's warp is several times faster than PIL's transform (the slowest step of a document); one thread,
        # so a worker process uses one core and the result is deterministic.
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])  # OpenCV puts pixel centres at integers, PIL at +0.5
        warped = Image.fromarray(
            cv2.warpPerspective(
                np.asarray(paper),
                np.linalg.inv(half) @ h @ half,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=tuple(int(v) for v in paper.getpixel((0, 0))),
            )
        )
        coverage_mask = Image.new("L", (width, height), 0)  # the paper's outline, drawn: cheaper than a 2nd warp
        outline = apply(h, np.array([[0, 0], [paper_size[0], 0], [paper_size[0], paper_size[1]], [0, paper_size[1]]]))
        ImageDraw.Draw(coverage_mask).polygon([tuple(p) for p in outline.tolist()], fill=255)
        canvas.paste(warped, (0, 0), coverage_mask)
        for line in lines:
            x0, y0, x1, y1 = line.box
            line.quad = [tuple(p) for p in apply(h, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])).tolist()]
        image = _effects(rng, canvas, self._noise)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=int(rng.integers(*self.settings.jpeg_quality)))
        return Document(out.getvalue(), width, height, lang, font.family, font.path, lines, h)

    def _canvas_size(self, rng: np.random.Generator) -> tuple[int, int]:
        short = int(rng.integers(self.settings.short_side[0], self.settings.short_side[1] + 1))
        long = int(short * rng.uniform(*self.settings.aspect))
        return (long, short) if rng.random() < 0.5 else (short, long)

    def _background(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        if self.backgrounds and rng.random() < 0.7:
            photo = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            scale = max(size[0] / photo.width, size[1] / photo.height) * rng.uniform(1.0, 1.5)
            cw, ch = size[0] / scale, size[1] / scale  # crop in photo pixels, blur small, then scale up once
            x, y = rng.uniform(0, photo.width - cw), rng.uniform(0, photo.height - ch)
            crop = photo.crop((int(x), int(y), math.ceil(x + cw), math.ceil(y + ch)))
            crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0, 3)))  # out of focus (SynthDoG: sigma 0..10)
            return crop.resize(size, Image.Resampling.BILINEAR)
        return _texture(rng, size, rng.integers(60, 200, 3), self._noise)

    def _advances(self, pen: ImageFont.FreeTypeFont) -> dict[str, float]:
        key = (pen.path, pen.size)
        if key not in self._advance_cache:
            self._advance_cache[key] = {}
        return self._advance_cache[key]

    def _font(self, path: str, size: int) -> ImageFont.FreeTypeFont:
        key = (path, size)
        if key not in self._font_cache:
            self._font_cache[key] = ImageFont.truetype(path, size)
        return self._font_cache[key]

    def _layout(
        self, rng: np.random.Generator, paper: Image.Image, font: Font, lang: str, keep_masks: bool
    ) -> list[Line]:
        """Paragraph blocks stacked top to bottom; lines in reading order (column by column within a block)."""
        draw = ImageDraw.Draw(paper)
        pw, ph = paper.size
        base = max(12, int(min(pw, ph) * rng.uniform(*self.settings.text_scale)))  # SynthDoG text_scale (§6.2)
        mx, my = int(pw * rng.uniform(0.04, 0.1)), int(ph * rng.uniform(0.04, 0.1))
        colour = tuple(int(v) for v in rng.integers(0, 70, 3))
        allowed = coverage(font.path)
        lines: list[Line] = []
        y, first = my, True
        while True:
            title = first and rng.random() < 0.4
            size = int(base * rng.uniform(1.4, 1.9)) if title else base
            pen = self._font(font.path, size)
            line_h = int(size * rng.uniform(1.4, 1.7))
            cols = 1 if title else int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
            while cols > 1 and (pw - 2 * mx) / cols < 10 * size:
                cols -= 1
            rows = 1 if title else int(rng.integers(2, 11))
            rows = min(rows, (ph - my - y) // line_h)
            if rows < 1:
                return lines
            gap = int(size * 1.5)
            col_w = ((pw - 2 * mx) - gap * (cols - 1)) / cols
            align = str(rng.choice(["left", "center", "right"], p=[0.6, 0.2, 0.2]))
            for c in range(cols):
                for r in range(rows):
                    width = col_w if rng.random() < 0.1 else col_w * rng.uniform(0.5, 1.0)
                    text = self._fit(rng, pen, width, lang, allowed)
                    if not text:
                        continue
                    x0 = mx + c * (col_w + gap)
                    x = (
                        x0
                        + {
                            "left": 0,
                            "center": (col_w - pen.getlength(text)) / 2,
                            "right": col_w - pen.getlength(text),
                        }[align]
                    )
                    top = y + r * line_h
                    draw.text((x, top), text, font=pen, fill=colour)
                    lines.append(_line(text, pen, (x, top), keep_masks))
                    if len(lines) == self.settings.max_lines:
                        return lines
            y += rows * line_h + int(size * rng.uniform(0.8, 2.0))
            first = False

    def _fit(
        self, rng: np.random.Generator, pen: ImageFont.FreeTypeFont, width: float, lang: str, allowed: frozenset[int]
    ) -> str:
        """The longest corpus slice (whole words for English) that fits `width` in this font."""
        per_char = pen.size * (1.0 if lang == "zh" else 0.45)
        text = self.corpora[lang].slice(rng, int(width / per_char) + 8, allowed)
        advances = self._advances(pen)
        total, cut = 0.0, len(text)
        for i, char in enumerate(text):  # sum per-character advances (cached) instead of measuring prefixes
            if char not in advances:
                advances[char] = pen.getlength(char)
            total += advances[char]
            if total > width:
                cut = i
                break
        text = text[:cut]
        while text and pen.getlength(text) > width:  # kerning can make the real line a little longer
            text = text[:-1]
        if lang == "en" and " " in text[len(text) // 2 :]:
            text = text[: text.rfind(" ")]
        return text.strip()


def _line(text: str, pen: ImageFont.FreeTypeFont, origin: tuple[float, float], keep_mask: bool) -> Line:
    """The line's ink box on the paper (1 px margin for anti-aliasing), and its own ink mask if asked."""
    left, top, right, bottom = pen.getbbox(text)
    x, y = origin
    box = (math.floor(x + left) - 1, math.floor(y + top) - 1, math.ceil(x + right) + 1, math.ceil(y + bottom) + 1)
    mask = None
    if keep_mask:
        layer = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
        ImageDraw.Draw(layer).text((x - box[0], y - box[1]), text, font=pen, fill=255)
        mask = np.asarray(layer)
    return Line(text, [], box, mask)


def _paper(rng: np.random.Generator, size: tuple[int, int], noise: np.ndarray) -> Image.Image:
    """Off-white paper with a faint blotchy texture (SynthDoG blends a paper photo at alpha 0..0.2)."""
    return _texture(rng, size, rng.integers(222, 256, 3), noise, amplitude=rng.uniform(2, 10))


def _noise_window(rng: np.random.Generator, noise: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    y = int(rng.integers(0, noise.shape[0] - h + 1))
    x = int(rng.integers(0, noise.shape[1] - w + 1))
    return noise[y : y + h, x : x + w]


def _texture(
    rng: np.random.Generator, size: tuple[int, int], base: np.ndarray, noise: np.ndarray, amplitude: float = 25.0
) -> Image.Image:
    """A flat base colour shaded by smooth low-frequency blotches plus grain (one grey layer added to RGB)."""
    w, h = size
    coarse = np.clip(128 + rng.normal(0, amplitude, (max(2, h // 64), max(2, w // 64))), 0, 255).astype(np.uint8)
    blotch = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR), dtype=np.int16)
    grain = _noise_window(rng, noise, (h, w)).astype(np.int16) - 128
    grain = (grain * int(amplitude * 16 / 20)) >> 4  # integer scaling: float math over every pixel costs 3x
    shade = Image.fromarray(np.clip(blotch + grain, 0, 255).astype(np.uint8))
    flat = Image.new("RGB", size, tuple(int(v) for v in base))
    return ImageChops.add(flat, Image.merge("RGB", (shade, shade, shade)), offset=-128)


def _placement(rng: np.random.Generator, paper: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Homography paper -> canvas: rotation, perspective jitter of the corners, scaled to stay inside."""
    pw, ph = paper
    cw, ch = canvas
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=float)
    centred = corners - [pw / 2, ph / 2]
    angle = math.radians(rng.uniform(-6, 6))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = centred @ rotation.T + rng.uniform(-0.05, 0.05, (4, 2)) * [pw, ph]
    span = moved.max(axis=0) - moved.min(axis=0)
    scale = min(1.0, (cw - 4) / span[0], (ch - 4) / span[1])
    moved = moved * scale
    low, high = -moved.min(axis=0) + 2, [cw, ch] - moved.max(axis=0) - 2
    centre = rng.uniform(low, np.maximum(low, high))
    return homography(corners, moved + centre)


def _effects(rng: np.random.Generator, image: Image.Image, noise: np.ndarray) -> Image.Image:
    """Shadow, brightness/contrast, noise and blur (SynthDoG's post effects, §6.2); no geometry changes.
    Done with PIL lookup tables and channel ops on uint8 images: float numpy over every pixel was the slowest
    step of a document."""
    w, h = image.size
    if rng.random() < 0.4:  # a soft shadow across one side: a small gradient, scaled up
        direction = rng.normal(size=2)
        gx, gy = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16))
        ramp = gx * direction[0] + gy * direction[1]
        ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
        shade = (255 * (1 - rng.uniform(0.1, 0.5) * ramp)).astype(np.uint8)
        mask = Image.fromarray(shade).resize((w, h), Image.Resampling.BILINEAR)
        image = ImageChops.multiply(image, Image.merge("RGB", (mask, mask, mask)))
    gain, offset = rng.uniform(1.0, 1.3), rng.uniform(-40, 0)  # contrast, brightness
    image = image.point([int(min(255, max(0, v * gain + offset))) for v in range(256)] * 3)
    if rng.random() < 0.5:
        grain = Image.fromarray(_noise_window(rng, noise, (h, w)))
        image = ImageChops.add(image, Image.merge("RGB", (grain, grain, grain)), offset=-128)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.0)))
    return image


def load_backgrounds(patterns: tuple[str, ...], limit: int = 64) -> list[Image.Image]:
    """Background photos (RGB, at most 1024 px) from globs; none given = scikit-image's bundled photos."""
    import glob

    if patterns:
        paths = sorted(Path(p) for pattern in patterns for p in glob.glob(pattern))[:limit]
    else:
        import skimage.data

        folder = Path(skimage.data.__file__).parent
        paths = [
            folder / n
            for n in (
                "astronaut.png",
                "coffee.png",
                "chelsea.png",
                "rocket.jpg",
                "hubble_deep_field.jpg",
                "motorcycle_left.png",
                "retina.jpg",
                "brick.png",
            )
        ]
    images = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((1024, 1024))
            images.append(img)
    return images
