"""The NMR voxel frame and voxel IoU.

NMR/SoftRas voxelize world vertices v mapped by u = v * 31/32 + 0.5 into a 32^3 grid over [0, 1)^3
(cell i along an axis holds 32 u in [i, i + 1)), indexed ``[x, y, z]``, and store
``vox.transpose(0, 2, 1, 3)[:, :, :, ::-1]``: stored ``[a, b, c]`` is cell x = b, y = a, z = 31 - c.
So the cell with index i along an axis spans world [(i - 16)/31, (i - 15)/31).
"""

from __future__ import annotations

import numpy as np
import torch
from taichi_softras.voxelization import voxel_ious as voxel_iou  # noqa: F401  (per-shape IoU (B,))

SIZE = 32


def stored_from_xyz(vox_xyz: np.ndarray | torch.Tensor):
    """``(..., 32, 32, 32)`` indexed [x, y, z] -> the stored NMR order (see module docstring)."""
    if isinstance(vox_xyz, torch.Tensor):
        return vox_xyz.transpose(-3, -2).flip(-1)
    return np.swapaxes(vox_xyz, -3, -2)[..., ::-1]


def cell_samples(subsamples: int = 3) -> np.ndarray:
    """World points inside every cell, in stored order: ``(32, 32, 32, subsamples**3, 3)`` (x, y, z).

    Samples sit on a regular grid strictly inside the cell, reaching its faces' neighbourhood, so
    'any sample inside the solid' approximates NMR's rule (a cell is full when the surface crosses it
    or it lies inside)."""
    k = subsamples
    offs = (np.arange(k) + 0.5) / k if k > 1 else np.array([0.5])
    idx = np.arange(SIZE)
    # world coordinate of (cell index + offset) along one axis
    axis = ((idx[:, None] + offs[None, :]) - SIZE / 2) / (SIZE - 1)  # (32, k)
    x = axis[:, None, None, :, None, None]
    y = axis[None, :, None, None, :, None]
    z = axis[None, None, :, None, None, :]
    shape = (SIZE, SIZE, SIZE, k, k, k)
    pts = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(shape[:3] + (k**3, 3))
    return np.ascontiguousarray(stored_from_xyz(np.moveaxis(pts, (3, 4), (0, 1))).transpose(2, 3, 4, 0, 1))


def stored_cell_centres() -> np.ndarray:
    """World centres of the cells in stored order, ``(32, 32, 32, 3)``."""
    return cell_samples(1)[..., 0, :]
