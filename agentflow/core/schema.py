"""JSON schemas that OpenAI strict mode and Anthropic both accept, built from Python types.

Strict mode wants every object closed (`additionalProperties: false`) with every property
required, and no `default`s. A parameter that has a default therefore becomes nullable and
required: the model sends `null` to mean "use the default", and `drop_defaulted_nulls` turns that
back into an omitted argument before validation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

# Keywords whose values are maps of name -> schema: their keys are names, never keywords.
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of `model` in strict form (see module doc)."""
    schema = model.model_json_schema()
    root = copy.deepcopy(schema)
    return _strict(schema, root)


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema stated by someone else (an MCP server's tool) in the same strict form."""
    root = copy.deepcopy(schema)
    return _strict(copy.deepcopy(schema), root)


def is_nullable(schema: dict[str, Any]) -> bool:
    """Whether `schema` admits null: how strict form marks an argument that may be left out."""
    variants = schema.get("anyOf")
    return schema.get("type") == "null" or (isinstance(variants, list) and {"type": "null"} in variants)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if is_nullable(schema):
        return schema
    described = {k: schema.pop(k) for k in ("description",) if k in schema}
    return {"anyOf": [schema, {"type": "null"}], **described}


def _strict(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    schema.pop("default", None)
    ref = schema.get("$ref")
    if isinstance(ref, str) and len(schema) > 1:  # strict mode wants a bare $ref: inline it
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        schema.pop("$ref")
        schema = {**copy.deepcopy(target), **schema}
        return _strict(schema, root)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            schema[key] = {name: _strict(sub, root) for name, sub in schema[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = _strict(schema[key], root)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            schema[key] = [_strict(sub, root) for sub in schema[key]]
    if schema.get("type") == "object" or "properties" in schema:
        properties: dict[str, Any] = schema.setdefault("properties", {})
        required = set(schema.get("required", []))
        for name in properties:
            if name not in required:
                properties[name] = _nullable(properties[name])
        closed = schema.get("additionalProperties")
        rest = {k: v for k, v in schema.items() if k not in ("type", "properties", "required", "additionalProperties")}
        schema = {"type": "object", "properties": properties, "required": list(properties),
                  "additionalProperties": closed if isinstance(closed, dict) else False, **rest}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**schema.pop("allOf")[0], **schema}
    return schema


def drop_defaulted_nulls(arguments: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Remove the `null`s sent for parameters that have a default, at any depth (see module doc)."""
    fields = model.model_fields
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        field = fields.get(key)
        if field is None:
            out[key] = value
        elif value is None and not field.is_required():
            continue
        else:
            out[key] = _descend(value, field.annotation)
    return out


def _descend(value: Any, annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return drop_defaulted_nulls(value, annotation) if isinstance(value, dict) else value
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _descend(value, args[0])
    if isinstance(value, list) and args and origin in (list, tuple, set, frozenset, Sequence):
        return [_descend(v, args[0]) for v in value]
    if isinstance(value, dict) and len(args) == 2 and origin in (dict, Mapping):
        return {k: _descend(v, args[1]) for k, v in value.items()}
    if origin in (Union, UnionType) and isinstance(value, dict):
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return drop_defaulted_nulls(value, arg)
    return value
