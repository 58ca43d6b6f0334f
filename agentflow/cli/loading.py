"""User files the `agentflow` command loads: apps that register targets, model files, workflow files.

A model can be named as `provider:model` (see `get_model`) or as a Python file holding one —
`my_model.py` (its `model`) or `my_model.py:name` — which is how tests and demos give the
command a scripted model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core.errors import ConfigError
from ..models import Model, get_model
from ..models.defaults import default_model


def load_module(source: str) -> ModuleType:
    """Import a dotted module name or a .py file (its directory goes on sys.path for its imports)."""
    if source.endswith(".py") or os.sep in source:
        path = Path(source).resolve()
        if not path.is_file():
            raise ConfigError(f"there is no file {source}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load {source} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.parent))
        spec.loader.exec_module(module)
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(source)


def split_ref(ref: str) -> tuple[str, str | None]:
    """`file.py:name` -> (`file.py`, `name`); `file.py` -> (`file.py`, None)."""
    path, sep, name = ref.rpartition(":")
    if sep and path.endswith(".py"):
        return path, name
    return ref, None


def is_file_ref(ref: str) -> bool:
    return split_ref(ref)[0].endswith(".py")


def load_object(ref: str, kinds: tuple[type[Any], ...], what: str) -> Any:
    """The object `name` of `file.py:name`, or the only object of one of `kinds` in `file.py`."""
    path, name = split_ref(ref)
    module = load_module(path)
    if name is not None:
        value = getattr(module, name, None)
        if not isinstance(value, kinds):
            found = "nothing" if value is None else f"a {type(value).__name__}"
            raise ConfigError(f"{path}:{name} must be a {what}, but {name!r} is {found}")
        return value
    found = {k: v for k, v in vars(module).items() if isinstance(v, kinds) and not k.startswith("_")}
    if len(found) != 1:
        names = ", ".join(found) or "none"
        raise ConfigError(f"{path} must hold exactly one {what} (found: {names}); name one with {path}:NAME")
    return next(iter(found.values()))


def load_model(name: str | None) -> Model:
    """The model named by `--model` or `$AGENTFLOW_MODEL` (a `provider:model` or a .py file), else the default."""
    name = name or os.environ.get("AGENTFLOW_MODEL") or None
    if name is None:
        return default_model()
    if not is_file_ref(name):
        return get_model(name)
    path, attr = split_ref(name)
    value = getattr(load_module(path), attr or "model", None)
    if callable(value) and not isinstance(value, Model):
        value = value()
    if not isinstance(value, Model):
        raise ConfigError(f"{path} must define `{attr or 'model'}`: a Model (e.g. a FunctionModel) or a function "
                          "that returns one")
    return value
