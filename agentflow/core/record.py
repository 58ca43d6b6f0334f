"""The pydantic base of the records a run keeps in memory: messages, usage, steps and events.

Pydantic keeps on every instance the set of fields given explicitly (~216 bytes, 728 from five
names on; more than a short message's text). A run holds dozens of records per model call, and a
process may hold hundreds of runs, so records of one shape share one such set, and a record gets
its own only when an assignment would change it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_SHARED: dict[frozenset[str], set[str]] = {}


class Record(BaseModel):
    def model_post_init(self, context: Any, /) -> None:
        given = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _SHARED.setdefault(frozenset(given), given))

    def __setattr__(self, name: str, value: Any) -> None:
        given = self.__pydantic_fields_set__
        if name not in given and name in type(self).model_fields:  # pydantic will add it: unshare first
            object.__setattr__(self, "__pydantic_fields_set__", set(given))
        super().__setattr__(name, value)
