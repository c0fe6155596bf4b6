"""Error lines of the form `key.path: value is not allowed: what is allowed`."""

from __future__ import annotations

import difflib
from typing import Any

import voluptuous as vol

from detector.config.loader import Secret
from detector.config.validators import Each, KeyInvalid
from detector.redact import redact_text

_MAX_VALUE_CHARS = 60
# Keys whose values never show in an error (detector.config.SECRET_KEYS says the same).
SECRET_KEYS = frozenset({"password", "token"})


def key_path(path: list[Any]) -> str:
    """`cameras.backyard.masks[0].polygon`; `(top level)` for the empty path."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text.lstrip(".") or "(top level)"


def show(value: Any) -> str:
    """A value as written in YAML, shortened; secrets show as `<secret>`."""
    text = _show(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return "<secret>"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(redact_text(value))  # a URL with user:password@ shows as ***@
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_show(k)}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _value_at(data: Any, path: list[Any]) -> tuple[bool, Any]:
    """The value at a key path of the raw data, if it is there."""
    for key in path:
        if (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)
        ):
            data = data[key]
        else:
            return False, None
    return True, data


def _mapping(schema: Any) -> dict[Any, Any] | None:
    """The dict a (possibly wrapped) schema validates mappings with."""
    if isinstance(schema, vol.Schema):
        return _mapping(schema.schema)
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, vol.All | vol.Any):
        for validator in schema.validators:
            found = _mapping(validator)
            if found is not None:
                return found
    return None


def _sequence_item(schema: Any) -> Any:
    """The item schema of a (possibly wrapped) list schema."""
    if isinstance(schema, vol.Schema):
        return _sequence_item(schema.schema)
    if isinstance(schema, list) and len(schema) == 1:
        return schema[0]
    if isinstance(schema, Each):
        return schema.item
    if isinstance(schema, vol.All | vol.Any):
        for validator in schema.validators:
            found = _sequence_item(validator)
            if found is not None:
                return found
    return None


def _matches(marker: Any, key: Any) -> bool:
    if isinstance(marker, vol.Marker):
        marker = marker.schema
    if isinstance(marker, str):
        return bool(marker == key)
    if callable(marker):
        try:
            marker(key)
        except vol.Invalid:
            return False
        return True
    return False


def allowed_keys(schema: Any, path: list[Any]) -> list[str]:
    """The fixed key names the schema allows in the mapping at `path` (empty when unknown)."""
    for key in path:
        if isinstance(key, int):
            schema = _sequence_item(schema)
            continue
        mapping = _mapping(schema)
        if mapping is None:
            return []
        schema = next((v for k, v in mapping.items() if _matches(k, key)), None)
    mapping = _mapping(schema)
    if mapping is None:
        return []
    names = (k.schema if isinstance(k, vol.Marker) else k for k in mapping)
    return sorted(name for name in names if isinstance(name, str))


def format_error(error: vol.Invalid, data: Any, schema: Any) -> str:
    """One error line: key path, the bad value (or `<secret>`), what is allowed."""
    path = list(error.path)
    where = key_path(path)
    message = str(error.error_message)
    if isinstance(error, KeyInvalid):
        return f"{where}: {show(path[-1])} is not allowed: {message}"
    if message == "extra keys not allowed":
        allowed = allowed_keys(schema, path[:-1])
        hint = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        return (
            f"{where}: unknown key"
            + (f" (did you mean {hint[0]}?)" if hint else "")
            + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        )
    if isinstance(error, vol.RequiredFieldInvalid):
        return f"{where}: required key missing"
    found, value = _value_at(data, path)
    if found and path and path[-1] in SECRET_KEYS:
        # Never the value of a password or token, whatever its type (a password of digits
        # is a number to YAML: it must be quoted).
        kind = "a string" if isinstance(value, str) else f"a {_kind(value)}"
        return f"{where}: <secret, {kind}> is not allowed: {message} (quote it in YAML)"
    if found:
        return f"{where}: {show(value)} is not allowed: {message}"
    return f"{where}: {message}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "value" if value is not None else "null value"
