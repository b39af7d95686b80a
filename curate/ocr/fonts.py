"""The fonts synthetic documents are rendered with, and which characters each one can draw."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from curate.core.errors import ConfigError

FONTS_FILE = Path(__file__).resolve().parent.parent / "assets" / "ocr_fonts.yaml"
FONT_DIRS = (
    Path("/usr/share/fonts/truetype"),
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
)
SCRIPTS = ("latin", "cjk")
MIN_FAMILIES = {"latin": 3, "cjk": 2}  # the floor; Qwen-VL used 41 English and 11 Chinese fonts (§6.1)


@dataclass(frozen=True)
class Font:
    family: str
    path: str
    script: str


def available_fonts() -> dict[str, tuple[Font, ...]]:
    """Installed fonts per script; raises ConfigError naming the packages to install when too few are found."""
    spec = yaml.safe_load(FONTS_FILE.read_text())
    found: dict[str, tuple[Font, ...]] = {}
    for script in SCRIPTS:
        fonts = []
        for entry in spec[script]:
            path = next((d / entry["file"] for d in FONT_DIRS if (d / entry["file"]).is_file()), None)
            if path:
                fonts.append(Font(entry["family"], str(path), script))
        if len(fonts) < MIN_FAMILIES[script]:
            packages = sorted({e["package"] for e in spec[script]})
            raise ConfigError(
                f"only {len(fonts)} {script} font families found (need {MIN_FAMILIES[script]}); rendering "
                f"{'Chinese' if script == 'cjk' else 'Latin'} text without them would draw missing-glyph boxes. "
                f"Install them with `make fonts` (apt-get install {' '.join(packages)})."
            )
        found[script] = tuple(fonts)
    return found


@functools.cache
def coverage(path: str) -> frozenset[int]:
    """Code points the font has a glyph for (its best cmap)."""
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=0, lazy=True) as font:
        return frozenset(font.getBestCmap())
