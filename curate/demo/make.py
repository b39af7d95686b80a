"""The embedded demo input: real photos (scikit-image's bundled samples) with captions, plus rows built to trip
every filter (tiny images, panoramas, foreign/emoji/HTML/short/long/irregular captions, mismatched pairs, 404s,
corrupt files). Deterministic for a seed: same bytes every time.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from PIL import Image, ImageEnhance

from curate.core.atomic import write_bytes_atomic, write_parquet_atomic

log = logging.getLogger(__name__)
CAPTIONS_FILE = Path(__file__).resolve().parent.parent / "assets" / "demo_captions.yaml"

# Share of rows of each bad kind (the rest are good pairs); every filter gets some rejects.
BAD_SHARES = {
    "tiny": 0.033,
    "panorama": 0.033,
    "foreign": 0.04,
    "emoji": 0.025,
    "html_kept": 0.017,
    "html_short": 0.013,
    "special_tag": 0.017,
    "irregular": 0.02,
    "too_short": 0.02,
    "too_long": 0.017,
    "mismatched": 0.083,
    "not_found": 0.03,
    "corrupt": 0.033,
    "no_caption": 0.008,
    "no_url": 0.008,
}
ZH_SHARE_OF_GOOD = 0.17


@dataclass(frozen=True)
class Photo:
    name: str
    image: Image.Image
    en: tuple[str, ...]
    zh: tuple[str, ...]


def load_photos() -> tuple[list[Photo], list[dict]]:
    """The demo photos with their captions, and the foreign-language captions."""
    import skimage.data  # ships its sample photos inside the wheel: no download

    folder = Path(skimage.data.__file__).parent
    spec = yaml.safe_load(CAPTIONS_FILE.read_text())
    photos = []
    for name, caps in spec["photos"].items():
        (path,) = [p for p in folder.glob(f"{name}.*") if p.suffix in (".png", ".jpg")]
        with Image.open(path) as img:
            image = img.convert("RGB")
        photos.append(Photo(name, image, tuple(caps["en"]), tuple(caps["zh"])))
    return photos, spec["foreign"]


def variant(photo: Photo, rng: np.random.Generator, short_side: tuple[int, int]) -> Image.Image:
    """A random crop / flip / brightness change of a photo, resized to a short side in `short_side`."""
    img = photo.image
    w, h = img.size
    cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    target = int(rng.integers(short_side[0], short_side[1] + 1))
    scale = target / min(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)


def jpeg(img: Image.Image, rng: np.random.Generator) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=int(rng.integers(75, 96)))
    return out.getvalue()


def make_demo(out: str | Path, rows: int = 600, seed: int = 0) -> Path:
    """Write the demo folder: files/ (served), urls.parquet, clip_train.parquet (+ images), _SUCCESS."""
    out = Path(out)
    if (out / "_SUCCESS").exists():
        if not (out / DEDUP_URLS).exists():  # a demo folder from before the dedup demo
            plant_duplicates(out, seed)
        log.info("demo input already in %s", out)
        return out
    if rows < 100:
        raise ValueError("the demo needs at least 100 rows so every filter gets rejects")
    rng = np.random.default_rng(seed)
    photos, foreign = load_photos()
    kinds = _row_kinds(rows, rng)
    urls, captions = [], []
    for i, kind in enumerate(kinds):  # the demo_kind column says what each row was built to test
        url, caption = _make_row(i, kind, photos, foreign, rng, files=out / "files")
        urls.append(url)
        captions.append(caption)
    write_parquet_atomic(
        out / "urls.parquet",
        pa.table(
            {
                "url": pa.array(urls, pa.string()),
                "caption": pa.array(captions, pa.string()),
                "demo_kind": pa.array(kinds, pa.string()),
            }
        ),
    )
    _make_clip_train(photos, rng, out)
    _make_corpus(photos, rng, out)
    plant_duplicates(out, seed)
    write_bytes_atomic(out / "_SUCCESS", b"")
    log.info("demo input: %d rows in %s", rows, out)
    return out


DEDUP_URLS = "urls_dedup.parquet"
REFERENCE_DIR = "reference"
# Planted rows of the dedup demo (pipelines/filter_dedup.yaml), each a copy of a good row's image: kind -> count.
PLANTED = {"dup_copy": 4, "dup_recaption": 3, "dup_reencode": 4, "dup_resize": 4, "dup_flip": 4}
REFERENCE_IMAGES = 4  # good rows whose image (re-encoded) goes into the demo's reference set


def plant_duplicates(out: Path, seed: int = 0) -> Path:
    """urls_dedup.parquet: the demo rows plus planted copies of good rows' images (byte copies, recaptioned
    copies, JPEG re-encodes, resizes, mirror images), and reference/: re-encodes of other good rows' images, a
    stand-in for a benchmark split that leaked into the crawl. Every dedup tier of filter_dedup rejects some."""
    rng = np.random.default_rng(seed + 17)
    table = pq.read_table(out / "urls.parquet")
    kinds = table.column("demo_kind").to_pylist()
    good = [i for i, k in enumerate(kinds) if k == "good_en"]
    picks = [int(i) for i in rng.choice(good, size=sum(PLANTED.values()) + REFERENCE_IMAGES, replace=False)]
    urls, captions, planted = [], [], []
    for kind, count in PLANTED.items():
        for _ in range(count):
            source = picks.pop()
            url, caption = table.column("url")[source].as_py(), table.column("caption")[source].as_py()
            data = (out / "files" / url).read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                image = img.convert("RGB")
            if kind == "dup_reencode":
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=int(rng.integers(30, 60)))
                data = buffer.getvalue()
            elif kind == "dup_resize":
                scale = float(rng.uniform(1.2, 1.6))
                data = jpeg(image.resize((round(image.width * scale), round(image.height * scale))), rng)
            elif kind == "dup_flip":
                data = jpeg(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), rng)
            if kind == "dup_recaption":
                caption = f"a photo of {caption}"
            name = f"images/{kind}-{len(urls):03d}.jpg"
            write_bytes_atomic(out / "files" / name, data)
            urls.append(name)
            captions.append(caption)
            planted.append(kind)
    for source in picks:  # what is left: the reference set's sources
        url = table.column("url")[source].as_py()
        with Image.open(out / "files" / url) as img:
            buffer = io.BytesIO()
            img.convert("RGB").save(buffer, format="JPEG", quality=70)
        write_bytes_atomic(out / REFERENCE_DIR / Path(url).name, buffer.getvalue())
    extra = pa.table(
        {
            "url": pa.array(urls, pa.string()),
            "caption": pa.array(captions, pa.string()),
            "demo_kind": pa.array(planted, pa.string()),
        }
    )
    write_parquet_atomic(out / DEDUP_URLS, pa.concat_tables([table, extra]))
    return out / DEDUP_URLS


def _row_kinds(rows: int, rng: np.random.Generator) -> list[str]:
    kinds = [k for k, share in BAD_SHARES.items() for _ in range(max(2, round(share * rows)))]
    good = rows - len(kinds)
    zh = round(good * ZH_SHARE_OF_GOOD)
    kinds += ["good_zh"] * zh + ["good_en"] * (good - zh)
    order = rng.permutation(len(kinds))
    return [kinds[i] for i in order]


# Captions picked from a fixed list for kinds that test one text rule each.
FIXED_CAPTIONS = {
    "html_short": ['<a href="https://example.com/p/1">link</a>', "<br/><img src='a.png'/>&nbsp;", "<div>photo</div>"],
    "irregular": [
        "IMG_20190412_123456.jpg",
        "DSC01234 DSC01235 0123456789",
        "#### ---- #### 2019-04-12",
        "https://example.com/images/9f8e7d6c5b4a39281706f5e4d3c2b1a0.jpg",
    ],
    "too_short": ["cat", "photo", "猫", "image 1"],
    "emoji": ["😍", "🔥🔥", "❤️", "✨ so cute ✨", "👍"],  # appended to a good caption
}


def _make_row(
    i: int, kind: str, photos: list[Photo], foreign: list[dict], rng: np.random.Generator, *, files: Path
) -> tuple[str | None, str | None]:
    """(relative URL, caption) of demo row i; writes its image file unless the row has none."""
    photo = photos[int(rng.integers(len(photos)))]
    caption = _caption(kind, photo, photos, foreign, rng)
    if kind == "not_found":
        return f"images/missing-{i:06d}.jpg", caption
    if kind == "no_url":
        return None, caption
    data = jpeg(_image(kind, photo, rng), rng)
    name = f"images/{i:06d}.jpg"
    write_bytes_atomic(files / name, _corrupt(data, rng) if kind == "corrupt" else data)
    return name, caption


def _pick(options: list | tuple, rng: np.random.Generator):  # noqa: ANN202 - element of options
    return options[int(rng.integers(len(options)))]


def _caption(
    kind: str, photo: Photo, photos: list[Photo], foreign: list[dict], rng: np.random.Generator
) -> str | None:
    caption = _pick(photo.en, rng)
    if kind == "good_zh":
        return _pick(photo.zh, rng)
    if kind == "foreign":
        return _pick(foreign, rng)["text"]
    if kind == "mismatched":
        other = photos[(photos.index(photo) + int(rng.integers(1, len(photos)))) % len(photos)]
        return _pick(other.en, rng)
    if kind == "emoji":
        return f"{caption} {_pick(FIXED_CAPTIONS['emoji'], rng)}"
    if kind in FIXED_CAPTIONS:
        return _pick(FIXED_CAPTIONS[kind], rng)
    templates = {
        "html_kept": f"<p><b>{caption.capitalize()}</b> &amp; more&nbsp;photos</p>",
        "special_tag": f"<PERSON> next to {caption}",
        "too_long": " ".join(photo.en * 2),  # ~150 words
        "no_caption": None,
    }
    return templates.get(kind, caption)


def _image(kind: str, photo: Photo, rng: np.random.Generator) -> Image.Image:
    if kind == "tiny":
        return variant(photo, rng, (16, 100))
    image = variant(photo, rng, (240, 480))
    if kind == "panorama":  # a thin strip, >= 4:1
        strip = image.crop((0, 0, image.width, max(8, image.width // int(rng.integers(4, 9)))))
        scale = 200 / strip.height  # short side stays above min_side: this row is for max_aspect_ratio
        return strip.resize((round(strip.width * scale), 200))
    return image


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    choice = int(rng.integers(4))
    if choice == 0:
        return data[:200]  # header only
    if choice == 1:
        return rng.bytes(4096)  # noise
    if choice == 2:
        return b"<!doctype html><html><body>404 - image removed</body></html>"  # an HTML page as image/jpeg
    return b""  # empty body


def _make_corpus(photos: list[Photo], rng: np.random.Generator, out: Path, documents: int = 60) -> None:
    """corpus_en.txt / corpus_zh.txt: one document per line, sentences drawn from the captions, for the demo's
    pure-text and synthetic-OCR tasks."""
    for lang, end, joiner in (("en", ".", " "), ("zh", "。", "")):
        lines = []
        for _ in range(documents):
            sentences = [_pick(getattr(_pick(photos, rng), lang), rng) for _ in range(int(rng.integers(6, 14)))]
            lines.append(joiner.join(s[0].upper() + s[1:] + end if lang == "en" else s + end for s in sentences))
        write_bytes_atomic(out / f"corpus_{lang}.txt", ("\n".join(lines) + "\n").encode())


def _make_clip_train(photos: list[Photo], rng: np.random.Generator, out: Path, per_photo: int = 100) -> None:
    """Matched pairs from other crops of the same photos, for `curate train-clip`."""
    paths, captions, photo_ids = [], [], []
    for p, photo in enumerate(photos):
        pool = list(photo.en) + list(photo.zh)
        for j in range(per_photo):
            name = f"clip_train/{photo.name}-{j:03d}.jpg"
            write_bytes_atomic(out / name, jpeg(variant(photo, rng, (72, 96)), rng))
            paths.append(name)
            captions.append(pool[int(rng.integers(len(pool)))])
            photo_ids.append(p)
    write_parquet_atomic(
        out / "clip_train.parquet",
        pa.table(
            {
                "image_path": pa.array(paths, pa.string()),
                "caption": pa.array(captions, pa.string()),
                "photo": pa.array(photo_ids, pa.int32()),
            }
        ),
    )


def repeat_rows(demo: str | Path, rows: int, out: str | Path) -> Path:
    """A `rows`-row URL list cycling the demo's rows (scale tests and benchmarks): copy k of a URL gets the query
    `?copy=k`, so every row is its own download of the same served file, and the demo's mix of reasons repeats."""
    table = pq.read_table(Path(demo) / "urls.parquet")
    index = pa.array(np.arange(rows) % table.num_rows)
    copy = (np.arange(rows) // table.num_rows).astype(str)
    urls = table.column("url").take(index).combine_chunks()
    suffixed = pc.binary_join_element_wise(urls, pa.array(np.char.add("?copy=", copy)), "")
    out = Path(out)
    write_parquet_atomic(
        out,
        pa.table(
            {
                "url": pc.if_else(pc.equal(copy, "0"), urls, suffixed),
                "caption": table.column("caption").take(index),
                "demo_kind": table.column("demo_kind").take(index),
            }
        ),
    )
    return out
