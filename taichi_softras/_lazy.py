"""Modules imported at first use, so that ``import taichi_softras`` costs about what ``import torch``
does (trimesh and scikit-image add ~1 s; Taichi ~1-4 s and is started by ``runtime``)."""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for module ``name``; the first attribute access imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


trimesh = LazyModule("trimesh")
measure = LazyModule("skimage.measure")
filters = LazyModule("skimage.filters")
ndimage = LazyModule("scipy.ndimage")
