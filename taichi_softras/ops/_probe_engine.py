"""Buffers and kernel launches of anchor-ray probing (imported at the first call: it imports
Taichi). Built like :mod:`._raster_engine`: one grow-only :class:`FieldPool`, emptied when the
runtime adopts a new Taichi runtime; callers hold ``runtime.LOCK`` (``runtime.launch``) around
every function here."""

from __future__ import annotations

import taichi as ti
import torch

from .. import runtime
from ..kernels import common as KC
from ..kernels import probe as K
from ._binning import Bins, bin_items
from ._buffers import FieldPool

POOL = FieldPool()


def bin_anchors(tile_box: torch.Tensor, n: int, grid: tuple[int, int, int], b: int) -> Bins:
    """Per-cell anchor lists (pooled fields, ``ops/_binning.py``) from the anchors' cell boxes
    ``tile_box (b*n, 6)`` in grids of ``grid = (gx, gy, gz)`` cells."""
    box = POOL.get("probe_box", ti.i32, b * n, width=6)
    KC.load_rows(tile_box, box, b * n)
    on_cpu = runtime.active_arch() == "cpu"
    return bin_items(POOL, box, b * n, n, grid, b, on_cpu, "radius with the number of anchors and rays")


def find_argmax(flat: dict, bins: Bins, labels: dict, out: dict, n_rays: int, n_anchors: int,
                ray_tile=None, tiles_per_batch: int = 0, grid_lo=None, cell=None, grid: int = 0) -> None:
    """The arg-max search (``kernels.probe.find_argmax`` with screen tiles ``ray_tile``, else
    ``find_argmax_grid`` with the 3D grid ``grid_lo``, ``cell``, ``grid``). ``flat``: origins,
    directions, anchors, radius, values; ``labels``: ray_label, anchor_label, use_labels; ``out``:
    argmax, count (written)."""
    common = dict(**flat, offsets=bins.off, lists=bins.lst, **labels, n_rays=n_rays, n_anchors=n_anchors, **out)
    if ray_tile is not None:
        K.find_argmax(ray_tile=ray_tile, tiles_per_batch=tiles_per_batch, **common)
    else:
        K.find_argmax_grid(grid_lo=grid_lo, cell=cell, grid=grid, **common)


def _gather_fields(dtype: torch.dtype, n_values: int, n_rays: int):
    """Flat fields (values with grad, argmax, out with grad) from the pool."""
    real = ti.f64 if dtype == torch.float64 else ti.f32
    return (
        POOL.get("probe_values", real, n_values, grad=True),
        POOL.get("probe_argmax", ti.i32, n_rays),
        POOL.get("probe_out", real, n_rays, grad=True),
    )


def gather(values: torch.Tensor, argmax: torch.Tensor, out: torch.Tensor) -> None:
    """``out[i] = values[argmax[i]]`` (flat tensors; 0 where argmax is -1)."""
    vf, af, of = _gather_fields(values.dtype, values.numel(), argmax.numel())
    KC.load(values, vf, values.numel())
    KC.load(argmax, af, argmax.numel())
    KC.zero(of, argmax.numel())
    K.gather(values=vf, argmax=af, out=of, n=argmax.numel())
    KC.store(of, out, argmax.numel())


def gather_grad(grad_out: torch.Tensor, argmax: torch.Tensor, grad_values: torch.Tensor) -> None:
    """The adjoint of :func:`gather` (Taichi autodiff): scatter-adds ``grad_out`` into ``grad_values``."""
    n_values = grad_values.numel()
    vf, af, of = _gather_fields(grad_out.dtype, n_values, argmax.numel())
    KC.load(argmax, af, argmax.numel())
    KC.load(grad_out, of.grad, argmax.numel())
    KC.zero(vf.grad, n_values)
    K.gather.grad(values=vf, argmax=af, out=of, n=argmax.numel())
    KC.store(vf.grad, grad_values, n_values)
