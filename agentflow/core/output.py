"""The typed result of a task: the schema of `finish`, and validation of what the model sent.

A pydantic model is used as-is (its fields are `finish`'s parameters); any other type (str,
int, list[...], a dataclass) is wrapped as a single `answer` parameter."""

from __future__ import annotations

import inspect
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, create_model

from ..models.base import OutputSpec, ToolSpec
from .schema import strict_schema
from .tool import validate_arguments

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
        value = validate_arguments(arguments, self.model)
        return cast(T, value.answer if self.wrapped else value)  # type: ignore[attr-defined]
