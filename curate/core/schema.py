"""Column names, the Arrow schema of a ledger row, and the reject-reason vocabulary.

`schemas/ledger_row.schema.json` and `schemas/shard_sample.schema.json` are the public contracts; a test
checks that they agree with what is declared here.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

# One row per input row. Score columns are null for rows that never reached the filter that computes them.
LEDGER_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("key", pa.string()),  # stable id of the input row, also the shard member name
        ("row_id", pa.int64()),  # position in the input list
        ("chunk", pa.int32()),  # unit of resumable work (input.rows_per_chunk rows)
        ("url", pa.string()),  # as given in the input (file:// URI for local images)
        ("caption_raw", pa.string()),  # as given in the input
        ("caption", pa.string()),  # after HTML and irregular-pattern cleaning (caption_text filter)
        ("download_status", pa.string()),  # img2dataset status, or "local" for local images
        ("error_message", pa.string()),  # img2dataset / decoder message behind a download: or image: reason
        ("width", pa.int32()),  # original image size, before any resize
        ("height", pa.int32()),
        ("image_path", pa.string()),  # where the image bytes are: a tar (raw shard) or a local file
        ("image_member", pa.string()),  # member name inside image_path when it is a tar
        ("aspect_ratio", pa.float64()),  # max(w/h, h/w)
        ("caption_chars", pa.int32()),
        ("caption_words", pa.int32()),
        ("caption_alpha_ratio", pa.float64()),  # letters / non-space characters of the cleaned caption
        ("lang", pa.string()),  # fastText lid.176 label
        ("lang_score", pa.float64()),
        ("lang_en_share", pa.float64()),  # share of the caption's words that are common English words (issue 22)
        ("clip_score", pa.float64()),  # cosine similarity of image and caption embeddings
        ("image_sha256", pa.string()),  # dedup_exact: sha256 of the image bytes as stored
        ("pixel_sha256", pa.string()),  # dedup_exact with pixels: sha256 of the decoded pixels and size
        ("phash", pa.int64()),  # dedup_near / decontaminate: 64-bit pHash (the bits as a signed int64)
        ("dhash", pa.int64()),  # dedup_near / decontaminate with hash: dhash
        ("dup_of", pa.string()),  # key of the kept row this row duplicates, or <set>:<image> when contaminated
        ("dup_distance", pa.float64()),  # to dup_of: Hamming bits (exact/near/contaminated), 1 - cosine (semantic)
        ("reject_reason", pa.string()),  # null = kept
    ]
)
LEDGER_COLUMNS = tuple(LEDGER_SCHEMA.names)

# Reasons that are not a filter's own name. Filters add "<name>" or "<name>:<detail>".
INGEST_REASONS = (
    "download:not_found",  # HTTP 404 / 410
    "download:http_error",  # any other HTTP error status
    "download:timeout",
    "download:connection_error",  # refused, reset, DNS failure
    "download:invalid_url",  # empty or unsupported URL
    "download:disallowed",  # X-Robots-Tag noai and friends
    "download:error",  # anything else img2dataset reports
    "download:missing",  # row absent from img2dataset's output (its shard failed)
    "download:refused",  # the URL policy refused it: file://, loopback, link-local, private (issue 8)
    "download:too_large",  # response larger than download.max_image_bytes
    "download:redirect_loop",  # redirects that cycle or go past 10 hops
    "download:bad_url",  # cannot be encoded as a browser sends it: a host IDNA refuses, a bad port (issue 21)
    "image:not_found",  # local image file missing
    "image:decode_error",  # bytes are not a decodable image
    "image:too_large",  # more pixels than curate.core.images.MAX_IMAGE_PIXELS (a decompression bomb)
)

# Members of a shard sample's JSON (the <key>.json beside <key>.jpg).
SAMPLE_FIELDS = (
    "schema_version",
    "key",
    "url",
    "caption",
    "caption_raw",
    "width",
    "height",
    "aspect_ratio",
    "lang",
    "lang_score",
    "clip_score",
)
