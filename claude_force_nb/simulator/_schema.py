"""Structured outputs: where a request puts its JSON schema, and the subset of JSON Schema the API takes.

``output_config.format`` carries ``{"type": "json_schema", "schema": {...}}``;
the older beta spelling, a top-level ``output_format``, is still taken, but
not both. A strict tool's ``input_schema`` obeys the same rules. The rules
are the structured-outputs guide's: the root is an object; every object
sets ``additionalProperties: false``; the seven JSON types; ``enum`` of
scalars, ``const``, ``anyOf``, ``allOf``, internal ``$ref`` into ``$defs``
or ``definitions``; the listed string formats; ``minItems`` of 0 or 1. The
guide lists numeric and string-length constraints, other array bounds,
recursive schemas and external references as unsupported, and so they are
refused. Keywords that only describe (``title``, ``description``,
``default``, ``examples``) pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"})
UNSUPPORTED = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "maxItems",
        "uniqueItems",
        "contains",
        "prefixItems",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
    }
)
BOTH_GIVEN = (
    "Both output_format and output_config.format were provided. "
    "Please use only output_config.format (output_format is deprecated)."
)


def output_schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema the answer must follow, from ``output_config.format`` or ``output_format``; None for free text."""
    config = body.get("output_config")
    for fmt in (config.get("format") if isinstance(config, dict) else None, body.get("output_format")):
        if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):
            return fmt["schema"]
    return None


def check_request(body: Mapping[str, Any]) -> None:
    """ValueError, worded as the API's 400, for a malformed ``output_config`` or an unsupported schema."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise ValueError("output_config: Input should be an object.")
    formats = {
        "output_config.format": (config or {}).get("format"),
        "output_format": body.get("output_format"),
    }
    given = {where: fmt for where, fmt in formats.items() if fmt is not None}
    if len(given) > 1:
        raise ValueError(BOTH_GIVEN)
    for where, fmt in given.items():
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise ValueError(f"{where}.type: Input should be 'json_schema'.")
        if not isinstance(fmt.get("schema"), dict):
            raise ValueError(f"{where}.schema: Field required (a JSON schema object).")
        check(fmt["schema"], f"{where}.schema")


def check(schema: Mapping[str, Any], where: str) -> None:
    """ValueError naming the first part of ``schema`` that structured outputs do not support."""
    root = resolve(schema, schema, where)
    if root.get("type") != "object":
        raise ValueError(f'{where}: The root of the schema must be an object (type: "object").')
    _node(schema, schema, where, ())


def resolve(node: Mapping[str, Any], root: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """``node``, or what its ``$ref`` points at; ValueError for an external or dangling reference."""
    seen: set[str] = set()
    while isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"{where}.$ref: Recursive schemas are not supported ({ref}).")
        seen.add(ref)
        node = target(ref, root, where)
    return node


def target(ref: str, root: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """The schema ``ref`` ("#/$defs/Name") names in ``root``."""
    if not ref.startswith("#/"):
        raise ValueError(f"{where}.$ref: External references are not supported ({ref}).")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise ValueError(f"{where}.$ref: {ref} does not resolve to a schema.")
    return node


def _node(node: Any, root: Mapping[str, Any], where: str, refs: tuple[str, ...]) -> None:
    if not isinstance(node, dict):
        raise ValueError(f"{where}: Input should be a JSON schema object.")
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str):
            raise ValueError(f"{where}.$ref: Input should be a string.")
        if ref in refs:
            raise ValueError(f"{where}.$ref: Recursive schemas are not supported ({ref}).")
        _node(target(ref, root, where), root, where, (*refs, ref))
    unsupported = sorted(UNSUPPORTED & node.keys())
    if unsupported:
        raise ValueError(f"{where}: '{unsupported[0]}' is not supported in structured output schemas.")
    if node.get("minItems", 0) not in (0, 1):
        raise ValueError(f"{where}: 'minItems' is supported only with the values 0 and 1.")
    kinds = node.get("type")
    listed = kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []
    for kind in listed:
        if kind not in TYPES:
            raise ValueError(f"{where}.type: '{kind}' is not a supported type; use one of {', '.join(sorted(TYPES))}.")
    if "object" in listed and node.get("additionalProperties") is not False:
        raise ValueError(f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false.")
    if "enum" in node and not (
        isinstance(node["enum"], list) and node["enum"] and all(_scalar(v) for v in node["enum"])
    ):
        raise ValueError(f"{where}.enum: Input should be a non-empty list of strings, numbers, booleans or null.")
    if "const" in node and not _scalar(node["const"]):
        raise ValueError(f"{where}.const: Complex values are not supported.")
    fmt = node.get("format")
    if fmt is not None and "string" in listed and fmt not in FORMATS:
        raise ValueError(f"{where}.format: '{fmt}' is not supported; use one of {', '.join(sorted(FORMATS))}.")
    for name, child in (node.get("properties") or {}).items():
        _node(child, root, f"{where}.properties.{name}", refs)
    if "items" in node:
        _node(node["items"], root, f"{where}.items", refs)
    for keyword in ("anyOf", "allOf"):
        if keyword in node:
            if not isinstance(node[keyword], list) or not node[keyword]:
                raise ValueError(f"{where}.{keyword}: Input should be a non-empty list of schemas.")
            for i, child in enumerate(node[keyword]):
                _node(child, root, f"{where}.{keyword}.{i}", refs)
    for keyword in ("$defs", "definitions"):
        for name, child in (node.get(keyword) or {}).items():
            _node(child, root, f"{where}.{keyword}.{name}", refs)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
