"""JSON as the portal takes it from outside (API bodies, import files, license files): numbers that
JSON can write (no NaN or Infinity, nothing beyond a float's range, as Python's json module would
otherwise accept) and strings that every database stores (no NUL, no lone surrogate)."""

import json


def _finite_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constants(name):
    raise ValueError(f"{name} is not a JSON number")


def loads(data):
    """``json.loads`` that refuses NaN, Infinity and numbers out of range with a ValueError naming
    them. Bytes are read as UTF-8 (UnicodeDecodeError, a ValueError, when they are not)."""
    if isinstance(data, bytes | bytearray):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=_finite_float, parse_constant=_no_constants)


def unstorable_text(value, path=""):
    """The path (``deviceAttributes.0.value``) of the first string, key or value, holding a NUL or a
    lone surrogate, which no database stores; None when there is none."""
    if isinstance(value, str):
        if "\x00" in value:
            return path or "value"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "value"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and unstorable_text(key):
            return f"{path}.{key!r}" if path else repr(key)
        found = unstorable_text(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None
