"""The typed result of a task: the schema of `finish`, and validation of what the model sent.

A pydantic model is used as-is (its fields are `finish`'s parameters); any other type (str,
int, list[...], a dataclass) is wrapped as a single `answer` parameter."""

from __future__ import annotations

import inspect
import json
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .models.base import OutputSpec, ToolSpec
from .schema import drop_defaulted_nulls, strict_schema
from .tool import ToolArgumentsError, format_validation_error

T = TypeVar("T")

FINISH = "finish"


class OutputSchema(Generic[T]):
    def __init__(self, output_type: type[T]) -> None:
        self.type = output_type
        self.wrapped = not (inspect.isclass(output_type) and issubclass(output_type, BaseModel))
        if self.wrapped:
            self.model: type[BaseModel] = create_model("finish_arguments", __config__=ConfigDict(extra="forbid"),
                                                       answer=(output_type, ...))
        else:
            self.model = cast(type[BaseModel], output_type)
        self.schema = strict_schema(self.model)

    def finish_spec(self, description: str = "Finish the task with its final answer.") -> ToolSpec:
        return ToolSpec(name=FINISH, description=description, parameters=self.schema)

    def output_spec(self) -> OutputSpec:
        name = "answer" if self.wrapped else self.model.__name__
        return OutputSpec(name=name, schema_=self.schema)

    def validate(self, arguments: str | dict[str, Any]) -> T:
        """The typed value, or `ToolArgumentsError` saying what to fix."""
        try:
            raw = json.loads(arguments or "{}") if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as e:
            raise ToolArgumentsError(f"the arguments are not valid JSON ({e.msg}); send a JSON object") from None
        if not isinstance(raw, dict):
            raise ToolArgumentsError("the arguments must be a JSON object")
        known = {name for name, f in self.model.model_fields.items() for name in (name, f.alias) if name}
        unknown = sorted(set(cast(dict[str, Any], raw)) - known)
        if unknown:  # the schema says additionalProperties: false; a misspelt field must not vanish
            raise ToolArgumentsError(
                f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(sorted(known))}")
        try:
            value = self.model.model_validate(drop_defaulted_nulls(cast(dict[str, Any], raw), self.model))
        except ValidationError as e:
            raise ToolArgumentsError(format_validation_error(e)) from None
        return cast(T, value.answer if self.wrapped else value)  # type: ignore[attr-defined]
