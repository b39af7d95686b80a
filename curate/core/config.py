"""The strict config loader every command uses: a tree of small frozen dataclasses built from YAML.

YAML keys map 1:1 to dataclass fields. Unknown keys, unknown list entries and wrongly typed values raise
ConfigError naming what is valid, before any work (or Ray) starts. `--set a.b=value` overrides apply to the parsed
YAML; `filters.<name>.<field>` / `sources.<name>.<field>` address list entries by name. Also the two sections
every command shares: `output` and `ray`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from curate.core.errors import ConfigError
from curate.core.storage import localize, portable


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    """Where results go; dir defaults to out/<name>."""

    dir: str | None = None
    samples_per_shard: int = 1000

    def __post_init__(self) -> None:
        if self.samples_per_shard < 1:
            raise ConfigError("output.samples_per_shard must be >= 1")


@dataclass(frozen=True, kw_only=True)
class RayConfig:
    """Ray connection: address None = local Ray (or the RAY_ADDRESS environment variable)."""

    address: str | None = None
    num_cpus: int | None = None
    # Rows per Ray task for the model-free filters (chained in one task); CLIP batches are clip_score.batch_size.
    # Each task has a fixed cost (scheduling, block bundling, output metadata) that 10,000-row tasks did not
    # amortize (`curate bench` P2, issue 20); 50,000 rows of metadata are a few MB.
    batch_rows: int = 50000

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise ConfigError("ray.batch_rows must be >= 1")


# ---------------------------------------------------------------------------------------------- loading


LIST_SECTIONS = ("filters", "sources")  # list sections whose entries overrides address by name


def read_yaml(path: str | Path, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    for item in overrides:
        apply_override(raw, item)
    return localize(raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override in place; `filters.<name>.<field>` addresses a filter by name."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, _, text = item.partition("=")
    value = yaml.safe_load(text) if text.strip() else None
    parts = key.strip().split(".")
    node: Any = raw
    if parts[0] in LIST_SECTIONS:
        if len(parts) < 3:
            raise ConfigError(f"override {item!r} must look like {parts[0]}.<name>.<field>=value")
        node = _list_entry(raw, parts[0], parts[1], item)
        parts = parts[2:]
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a mapping")
    node[parts[-1]] = value


def _list_entry(raw: dict[str, Any], section: str, name: str, item: str) -> dict[str, Any]:
    entries = raw.get(section) or []
    for i, entry in enumerate(entries):
        if entry == name:  # bare `- language` entry: give it a mapping to write into
            entry = entries[i] = {name: {}}
        if isinstance(entry, dict) and name in entry:
            if entry[name] is None:
                entry[name] = {}
            return entry[name]
    listed = [e if isinstance(e, str) else next(iter(e)) for e in entries if e]
    raise ConfigError(f"override {item!r}: no {section[:-1]} {name!r} in this pipeline; listed: {', '.join(listed)}")


def build_named(entry: Any, table: dict[str, type], section: str, where: str) -> Any:
    """One `{name: {field: value}}` entry of a list section (filters, sources), resolved through its table."""
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where}: each {section} entry must be {{name: {{field: value}}}}, got {entry!r}")
    name, kwargs = next(iter(entry.items()))
    if name not in table:
        raise ConfigError(f"unknown {section[:-1]} {name!r} in {where}; known: {', '.join(sorted(table))}")
    return build_dataclass(table[name], kwargs or {}, f"{where}: {section}.{name}")


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in raw.items()}
    missing = [n for n, f in fields.items() if n not in kwargs and _is_required(f)]
    if missing:
        raise ConfigError(f"{where}: missing required field(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


# Scalar types the loader accepts: (check, what the message calls it). bool is not an int here, int is a float.
SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true/false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(typing.get_args(hint), value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build_dataclass(hint, value, where)
    if origin in (tuple, list):
        if isinstance(value, tuple) and all(dataclasses.is_dataclass(v) and not isinstance(v, type) for v in value):
            return value  # list entries already built (filters, sources)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        return tuple(_coerce(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint in SCALARS:
        if hint is float and isinstance(value, str) and FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads `3e-3` (no dot) as a string; it is plainly a number
        check, name = SCALARS[hint]
        if not check(value):
            raise ConfigError(f"{where}: expected {name}, got {value!r}")
        return float(value) if hint is float else value
    return value


def _coerce_union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _coerce(option, value, where)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")


# ---------------------------------------------------------------------------------------------- dumping


def to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain data, in the same shape the YAML uses."""
    return _plain(cfg)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, tuple):
        # entries of list sections are written back as {name: fields}, as in the YAML
        return [{_entry_name(v): _plain(v)} if _entry_name(v) else _plain(v) for v in obj]
    return obj


def _entry_name(obj: Any) -> str | None:
    if not dataclasses.is_dataclass(obj):
        return None
    return getattr(type(obj), "kind", None) or getattr(type(obj), "name", None)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def fingerprint(cfg: Any) -> str:
    """Hash of everything that changes results (not where they go nor how Ray is reached)."""
    data = portable(to_dict(cfg))
    data.pop("ray", None)
    data["output"] = {k: v for k, v in data.get("output", {}).items() if k != "dir"}
    for entry in data.get("sources", []) if isinstance(data.get("sources"), list) else []:
        for spec in entry.values() if isinstance(entry, dict) else []:
            if isinstance(spec, dict):
                spec.pop("license", None)  # a source's declared licence labels the data, it does not change it
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
