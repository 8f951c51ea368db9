"""Text the warehouse can store on every backend: U+0000 becomes U+FFFD.

PostgreSQL rejects the NUL character in text and JSON columns, so one tracker field holding it
(a title pasted from a binary, a plugin's value) would fail the whole batch. No tracker shows a
NUL; replacing it with the replacement character keeps everything else of the value, and doing
it on SQLite too keeps both backends equal. Checks are one C-level search: values without a NUL
are returned as they are, untouched.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"
ESCAPED_NUL = b"\\u0000"
"""How orjson writes U+0000 inside a JSON string."""


def storable(value: Any) -> Any:
    """`value` with U+0000 replaced in every string, dict key included, however deep."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value
