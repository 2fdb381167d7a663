"""Request bodies checked against minidock's OpenAPI description (openapi.yaml).

The daemon reads the same file the fuzz tests generate requests from: a
body whose fields have the wrong JSON type is refused with Docker's wording
("json: cannot unmarshal array into Go struct field ….Name of type string")
before any handler sees it. Only types are checked: null is Go's zero value,
and the sizes in the file bound what the fuzzer generates, not what a client
may send.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import yaml

from ..errors import InvalidParameter

SPEC = os.path.join(os.path.dirname(__file__), "openapi.yaml")
GO_TYPES = {"string": "string", "boolean": "bool", "integer": "int", "object": "map", "array": "slice"}


@functools.cache
def _spec() -> dict[str, Any]:
    with open(SPEC) as f:
        return yaml.safe_load(f)


def body_schema(method: str, path: str) -> dict[str, Any] | None:
    op = (_spec()["paths"].get(path) or {}).get(method.lower()) or {}
    content = (op.get("requestBody") or {}).get("content") or {}
    return (content.get("application/json") or {}).get("schema")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return _spec()["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")


def validate(value: Any, schema: dict[str, Any], where: str) -> None:
    schema = _resolve(schema)
    kind = schema.get("type")
    if value is None or kind is None:
        return
    ok = {"object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
          "boolean": isinstance(value, bool),
          "integer": isinstance(value, int) and not isinstance(value, bool)}.get(kind, True)
    if not ok:
        raise InvalidParameter(f"json: cannot unmarshal {_kind(value)} into Go struct field {where} "
                               f"of type {GO_TYPES.get(kind, kind)}")
    if kind == "object":
        props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                validate(item, sub, f"{where}.{key}")
    elif kind == "array":
        for item in value:
            validate(item, schema.get("items") or {}, where)
