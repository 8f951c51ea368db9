"""What every tracker mapper offers: raw item in, model out, or a `MappingError` saying why not.

Mappers are pure: built from the source config and the tracker facts discovered by the connector,
they never do I/O, so the same raw payload always maps to the same model.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from mapping.model import Objective, WorkItem


class MappingError(ValueError):
    """A raw item that cannot be mapped; the message names the field and the bad value."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Mapper(Protocol):
    def map(self, raw: dict[str, Any]) -> WorkItem | Objective:
        """The model of one raw item; raises MappingError when it cannot be mapped."""
        ...

    def external_id(self, raw: dict[str, Any]) -> str:
        """The tracker id of a raw item, as far as it can be read (for quarantine rows)."""
        ...


SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError)
"""What reading a payload of an unexpected shape raises (a list where an object was expected,
a missing key, a timestamp out of range...)."""

MapFn = TypeVar("MapFn", bound=Callable[..., WorkItem | Objective])


def shape_errors_are_mapping_errors(map_fn: MapFn) -> MapFn:
    """Make `map` keep its contract for payloads of any shape: whatever a malformed payload
    breaks becomes a `MappingError` naming where, so the item is quarantined, not the sync."""

    @functools.wraps(map_fn)
    def guarded(self: Any, raw: Any) -> WorkItem | Objective:
        try:
            return map_fn(self, raw)
        except MappingError:
            raise
        except SHAPE_ERRORS as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1].name
            raise MappingError(
                f"malformed payload ({type(exc).__name__} in {where}): {exc}"[:500]
            ) from None

    return guarded  # type: ignore[return-value]
