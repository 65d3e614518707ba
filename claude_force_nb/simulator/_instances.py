"""Deterministic JSON values that follow a JSON schema: structured answers and tool inputs.

Every choice (an enum member, a number, a boolean) comes from a hash of the
seed and the value's path, so one schema and one seed always give one
value. Strings name their property and the topic, the task at hand (``"summary for “Review
the…”"``) unless a ``format`` asks for a date, an address or a UUID. All
properties are filled, required or not; arrays get two items unless
``minItems``/``maxItems`` say otherwise; numbers keep to
``minimum``/``maximum`` (tool schemas may use them). ``pattern`` is not
followed. A recursive schema stops at ``MAX_DEPTH`` with null, an empty
array or only the required properties.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 8
DEFAULT_ITEMS = 2
_LABEL_PREVIEW = 32


def generate(schema: Mapping[str, Any], *, seed: str, topic: str = "") -> Any:
    """A value that validates against ``schema``, the same for the same schema and seed; strings name ``topic``."""
    return _Generator(schema, seed, topic).value(schema, "$", "value", 0)


def resolved(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema``, or what its internal ``$ref`` points at; unresolvable references are left as they are."""
    return _Generator(schema, "", "").resolve(schema)


def broken(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` made invalid: a required property dropped, else one of the wrong type, else wrapped in a list."""
    if isinstance(value, dict):
        required = [name for name in _names(schema.get("required")) if name in value]
        if required:
            return {k: v for k, v in value.items() if k != required[0]}
        if value:
            name = next(iter(value))
            wrong = "not an object" if isinstance(value[name], dict) else {"unexpected": value[name]}
            return {**value, name: wrong}
    return [value]


class _Generator:
    def __init__(self, root: Mapping[str, Any], seed: str, topic: str):
        self.root = root
        self.seed = seed
        flat = " ".join(topic.split())
        self.task = flat if len(flat) <= _LABEL_PREVIEW else flat[:_LABEL_PREVIEW].rstrip() + "\u2026"

    def pick(self, path: str, n: int) -> int:
        digest = hashlib.sha256(f"{self.seed}\x00{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % max(1, n)

    def value(self, schema: Any, path: str, label: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return self.string({}, path, label)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.pick(path, len(schema["enum"]))]
        for keyword in ("anyOf", "oneOf"):
            variants = [self.resolve(v) for v in schema.get(keyword) or () if isinstance(v, Mapping)]
            if variants:
                # The first variant that is not null: an optional field is filled, not left empty,
                # until a recursive schema is deep enough to end with null.
                filled = [v for v in variants if v.get("type") != "null"]
                if depth > MAX_DEPTH and len(filled) < len(variants):
                    return None
                chosen = filled[0] if filled else variants[0]
                return self.value(chosen, path, label, depth)
        if isinstance(schema.get("allOf"), list):
            schema = self.merged(schema)
        kind = self.kind(schema)
        if depth > MAX_DEPTH and kind in ("object", "array") and self.nullable(schema):
            return None
        if kind == "object":
            return self.object(schema, path, depth)
        if kind == "array":
            return self.array(schema, path, label, depth)
        if kind == "integer":
            return self.integer(schema, path)
        if kind == "number":
            return self.number(schema, path)
        if kind == "boolean":
            return self.pick(path, 2) == 0
        if kind == "null":
            return None
        return self.string(schema, path, label)

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        for _ in range(MAX_DEPTH):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#/"):
                break
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
            if not isinstance(node, Mapping):
                break
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def merged(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part) if isinstance(part, Mapping) else {}
            for key, item in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **item}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *item]
                else:
                    merged.setdefault(key, item)
        return merged

    @staticmethod
    def kind(schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
        if kind is None:
            return "object" if "properties" in schema else "array" if "items" in schema else "string"
        return str(kind)

    @staticmethod
    def nullable(schema: Mapping[str, Any]) -> bool:
        kind = schema.get("type")
        return isinstance(kind, list) and "null" in kind

    def object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = _names(schema.get("required"))
        # Past the depth limit only what must be there, so a recursive schema ends.
        names = required if depth > MAX_DEPTH else [*properties, *(n for n in required if n not in properties)]
        if depth > 2 * MAX_DEPTH:
            return {}
        return {name: self.value(properties.get(name, {}), f"{path}.{name}", name, depth + 1) for name in names}

    def array(self, schema: Mapping[str, Any], path: str, label: str, depth: int) -> list[Any]:
        low = _whole(schema.get("minItems")) or 0
        high = _whole(schema.get("maxItems"))
        count = 0 if depth > MAX_DEPTH else max(low, DEFAULT_ITEMS)
        if high is not None:
            count = min(count, high)
        count = max(count, low)
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        singular = label[:-1] if label.endswith("s") and len(label) > 1 else label
        return [self.value(items, f"{path}[{i}]", f"{singular} {i + 1}", depth + 1) for i in range(count)]

    def integer(self, schema: Mapping[str, Any], path: str) -> int:
        low = _bound(schema, "minimum", "exclusiveMinimum", math.ceil, 1)
        high = _bound(schema, "maximum", "exclusiveMaximum", math.floor, -1)
        if low is None:
            low = 1 if high is None else high - 99
        if high is None:
            high = low + 99
        value = low + self.pick(path, high - low + 1) if high >= low else low
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0 and value % step:
            up = (value // step + 1) * step
            value = up if up <= high else (value // step) * step
        return value

    def number(self, schema: Mapping[str, Any], path: str) -> float:
        low = _real(schema.get("minimum", schema.get("exclusiveMinimum")))
        high = _real(schema.get("maximum", schema.get("exclusiveMaximum")))
        fraction = (self.pick(path, 97) + 1) / 98  # strictly between 0 and 1, so exclusive bounds hold
        if low is not None and high is not None:
            return float(low) if low == high else low + (high - low) * fraction
        if low is not None:
            return low + 1 + 99 * fraction
        if high is not None:
            return high - 1 - 99 * fraction
        return round(1 + 99 * fraction, 2)

    def string(self, schema: Mapping[str, Any], path: str, label: str) -> str:
        n = self.pick(path, 28)
        slug = "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-") or "value"
        formatted = {
            "date-time": f"2025-{n % 12 + 1:02d}-{n + 1:02d}T{n % 24:02d}:00:00Z",
            "date": f"2025-{n % 12 + 1:02d}-{n + 1:02d}",
            "time": f"{n % 24:02d}:{n * 2:02d}:00Z",
            "duration": f"P{n + 1}D",
            "email": f"{slug}@example.com",
            "hostname": f"{slug}.example.com",
            "uri": f"https://example.com/{slug}",
            "ipv4": f"192.0.2.{n + 1}",
            "ipv6": f"2001:db8::{n + 1:x}",
            "uuid": str(uuid.UUID(bytes=hashlib.sha256(f"{self.seed}{path}".encode()).digest()[:16], version=4)),
        }.get(str(schema.get("format")))
        if formatted is not None:
            return formatted
        text = f"{label} for \u201c{self.task}\u201d" if self.task else f"synthetic {label}"
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            text = text.ljust(low, ".")
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _real(value: Any) -> float | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if number else None


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, rounding: Any, nudge: int) -> int | None:
    edge = _real(schema.get(inclusive))
    if edge is not None:
        return int(rounding(edge))
    edge = _real(schema.get(exclusive))
    if edge is not None:
        # Just inside the exclusive bound: past it by one when it is whole, else rounded inwards.
        return int(edge + nudge) if edge.is_integer() else int(rounding(edge))
    return None
