"""The JSON Schemas in schemas/ are the public contract; they must agree with curate/schema.py."""

import json

import pyarrow as pa
from helpers import REPO

from curate.core.schema import LEDGER_SCHEMA, SAMPLE_FIELDS, SCHEMA_VERSION
from curate.filters import REASON_PATTERNS, reject_reasons

SCHEMAS = REPO / "schemas"


def _json_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "number"
    return "string"


def test_ledger_json_schema_matches_arrow_schema():
    schema = json.loads((SCHEMAS / "ledger_row.schema.json").read_text())
    assert schema["required"] == LEDGER_SCHEMA.names
    assert list(schema["properties"]) == LEDGER_SCHEMA.names
    for field in LEDGER_SCHEMA:
        declared = schema["properties"][field.name].get("type") or schema["properties"][field.name]["anyOf"][0]["type"]
        declared = declared if isinstance(declared, list) else [declared]
        assert _json_type(field.type) in declared, field.name
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_reject_reason_vocabulary_is_documented():
    schema = json.loads((SCHEMAS / "ledger_row.schema.json").read_text())
    listed, pattern = schema["properties"]["reject_reason"]["anyOf"]
    assert listed["enum"] == [*reject_reasons(), None]
    assert [pattern["pattern"]] == list(REASON_PATTERNS.values())
    readme = (SCHEMAS / "README.md").read_text()
    for reason in reject_reasons():
        assert reason.split(":")[-1] in readme


def test_sample_json_schema_lists_sample_fields():
    schema = json.loads((SCHEMAS / "shard_sample.schema.json").read_text())
    assert tuple(schema["required"]) == SAMPLE_FIELDS
    assert set(SAMPLE_FIELDS) <= set(LEDGER_SCHEMA.names)
