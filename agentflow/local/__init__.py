"""Local models: the catalog, `pull`, and the `llama-server` processes that serve them."""

from __future__ import annotations

from .catalog import CATALOG, DEFAULT_LOCAL, CatalogModel, find, models_dir, pulled_path
from .pull import PullError, pull

__all__ = ["CATALOG", "DEFAULT_LOCAL", "CatalogModel", "PullError", "find", "models_dir", "pull", "pulled_path"]
