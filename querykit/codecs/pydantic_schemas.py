"""pydantic support, optional: core schemas for pgvector's types, pydantic models as ``as_=``.

Rows hold pgvector's ``Vector``, ``HalfVector``, ``SparseVector`` and ``Bit``, which
pydantic knows nothing of: a response model with a ``Vector`` field was
"Invalid args for response field". :func:`attach_core_schemas` gives each class a
``__get_pydantic_core_schema__``; pydantic calls it, and it imports pydantic_core
only then, so querykit costs nothing and needs nothing when pydantic is absent.

In a model, a ``Vector`` field accepts a ``Vector`` or a list of floats, serialises
as the ``Vector`` itself in Python mode and as :func:`~querykit.codecs.jsonable.vector_json`
in JSON mode (``model_dump(mode="json")``, FastAPI, ``jsonable_encoder``), and has the
JSON schema of that form (an array of numbers for ``vector`` and ``halfvec``).
"""

from __future__ import annotations

from typing import Any

from pgvector import Bit, HalfVector, SparseVector, Vector

from .jsonable import vector_json

__all__ = ["attach_core_schemas", "model_annotations", "model_fields"]


def model_fields(cls: Any) -> dict[str, bool] | None:
    """``{key: required}`` of a pydantic model class (the alias where one is set), else None.

    Read from the class, so pydantic is never imported for it.
    """
    if not isinstance(cls, type) or not hasattr(cls, "model_validate"):
        return None
    fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, dict):
        return None
    return {(info.alias or name): bool(info.is_required()) for name, info in fields.items()}


def model_annotations(cls: Any) -> dict[str, Any] | None:
    """``{key: type}`` of a pydantic model's fields, as pydantic resolved them, else None."""
    if model_fields(cls) is None:
        return None
    return {(info.alias or name): info.annotation for name, info in cls.model_fields.items()}


def _json_form(cls: type) -> Any:
    """The pydantic-core schema of ``cls``'s JSON form and how to make ``cls`` from it."""
    from pydantic_core import core_schema as cs

    if cls is SparseVector:
        form = cs.typed_dict_schema(
            {
                "dimensions": cs.typed_dict_field(cs.int_schema(ge=0)),
                "indices": cs.typed_dict_field(cs.list_schema(cs.int_schema(ge=0))),
                "values": cs.typed_dict_field(cs.list_schema(cs.float_schema())),
            }
        )
        return form, lambda d: SparseVector(
            dict(zip(d["indices"], d["values"], strict=True)), d["dimensions"]
        )
    if cls is Bit:
        return cs.str_schema(pattern="^[01]*$"), Bit
    return cs.list_schema(cs.float_schema(allow_inf_nan=False)), cls


def _core_schema(cls: type[Any], source: Any, handler: Any) -> Any:
    from pydantic_core import core_schema as cs

    form, make = _json_form(cls)
    from_json_form = cs.no_info_after_validator_function(make, form)
    return cs.json_or_python_schema(
        json_schema=from_json_form,
        python_schema=cs.union_schema([cs.is_instance_schema(cls), from_json_form]),
        serialization=cs.plain_serializer_function_ser_schema(vector_json, when_used="json"),
    )


def attach_core_schemas() -> None:
    """Give pgvector's value classes a pydantic core schema, unless they have their own."""
    classes: tuple[type, ...] = (Vector, HalfVector, SparseVector, Bit)
    for cls in classes:
        if "__get_pydantic_core_schema__" not in vars(cls):
            setattr(cls, "__get_pydantic_core_schema__", classmethod(_core_schema))  # noqa: B010
