"""JSONB columns that hold one Python type: :class:`JSONBPayload` (``columns.jsonb(T)``)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONBPayload"]

T = TypeVar("T")


class JSONBPayload(TypeDecorator[T]):
    """JSONB holding values of one Python type. Build it with :func:`jsonb`."""

    impl = JSONB
    cache_ok = True

    def __init__(self, payload_type: type[T] | None = None) -> None:
        super().__init__()
        self.payload_type = payload_type

    # The two hooks below serve code that runs these tables through SQLAlchemy
    # itself; querykit's executor uses querykit.codecs, which applies the same rules.
    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """A dataclass goes in as a JSON object; other values as they are."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """A JSON object comes back as the payload dataclass when it is one."""
        payload: Any = self.payload_type
        if (
            isinstance(value, dict)
            and isinstance(payload, type)
            and dataclasses.is_dataclass(payload)
        ):
            return payload(**value)
        return value
