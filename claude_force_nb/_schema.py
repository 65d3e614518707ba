"""Structured output: a pydantic model or a JSON schema, sent as the API's output format and read back.

The schema goes in the request (``output_config.format``, transformed by the
SDK's own ``transform_schema``, as ``messages.parse`` does), so it is part of
the cache key. The answer is read back with it: a pydantic model gives an
instance, a JSON schema the parsed JSON. A reply that does not validate is
the call's failure, with the validation error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._errors import SchemaError
from ._text import first_line


def is_schema(value: Any) -> bool:
    """A pydantic model class or a JSON-schema dict."""
    return isinstance(value, Mapping) or _is_model(value)


def output_format(schema: Any) -> dict[str, Any]:
    """The ``output_config.format`` for ``schema`` (a pydantic model class or a JSON-schema dict)."""
    if not is_schema(schema):
        raise TypeError(f"schema must be a pydantic model class or a JSON-schema dict, not {type(schema).__name__}.")
    from anthropic import transform_schema  # the SDK's helper; loaded only when a schema is asked for

    source = dict(schema) if isinstance(schema, Mapping) else schema
    return {"type": "json_schema", "schema": transform_schema(source)}


def parse(schema: Any, text: str) -> Any:
    """The answer read with ``schema``; :class:`SchemaError` when it does not validate."""
    try:
        if _is_model(schema):
            return schema.model_validate_json(text)
        value = json.loads(text)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        # Three lines: pydantic's count of errors, then the first field and what is wrong with it.
        raise SchemaError(f"The answer does not match the schema: {first_line(exc, 3)}") from exc
    missing = [name for name in schema.get("required", ()) if not isinstance(value, dict) or name not in value]
    if schema.get("type") == "object" and (not isinstance(value, dict) or missing):
        raise SchemaError(f"The answer does not match the schema: missing {', '.join(missing) or 'an object'}.")
    return value


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and hasattr(value, "model_validate_json") and hasattr(value, "model_json_schema")
