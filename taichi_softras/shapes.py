"""Procedural mesh primitives: box, cylinder, sphere, and their union.

Every builder returns ``(vertices (V, 3) float32, faces (F, 3) int64)`` torch tensors with
counter-clockwise winding seen from outside (outward normals, positive signed volume). Geometry
comes from :mod:`trimesh.creation`; this module only places and combines it. Demo assets built from
them (a toy car, a skinned chain) are in :mod:`taichi_softras.assets`, rotation maths in
:mod:`taichi_softras.rotations`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ._lazy import trimesh
from .ops.checks import check_vec3

MeshTensors = tuple[torch.Tensor, torch.Tensor]  # (vertices (V, 3) float32, faces (F, 3) int64)


def _to_torch(mesh: trimesh.Trimesh) -> MeshTensors:
    return (
        torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32),
        torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64),
    )


def _to_trimesh(vertices: torch.Tensor, faces: torch.Tensor) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices.detach().cpu().numpy(), faces.cpu().numpy(), process=False)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _vec3(name: str, value: Sequence[float]) -> np.ndarray:
    value = check_vec3(value, name)
    if isinstance(value, torch.Tensor) and value.ndim != 1:
        raise ValueError(f"{name} must be 3 numbers, got shape {tuple(value.shape)}")
    return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)


def _axis_transform(axis: Sequence[float], center: Sequence[float]) -> np.ndarray:
    """4x4 transform taking trimesh's +z primitive axis to ``axis`` and the origin to ``center``."""
    axis = _vec3("axis", axis)
    if np.linalg.norm(axis) == 0:
        raise ValueError("axis must be a non-zero vector, got (0, 0, 0)")
    t = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], axis / np.linalg.norm(axis))
    t[:3, 3] = _vec3("center", center)
    return t


def box(extents: Sequence[float] = (1.0, 1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0)) -> MeshTensors:
    """Axis-aligned box with side lengths ``extents`` (3,) centred at ``center`` (3,): 8 vertices, 12 faces."""
    ext = _vec3("extents", extents)
    if not (ext > 0).all():
        raise ValueError(f"extents must all be > 0, got {tuple(ext)}")
    return _to_torch(trimesh.creation.box(extents=ext, transform=trimesh.transformations.translation_matrix(_vec3("center", center))))


def cylinder(
    radius: float = 0.5,
    height: float = 1.0,
    sections: int = 24,
    axis: Sequence[float] = (0.0, 0.0, 1.0),
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> MeshTensors:
    """Closed cylinder around ``axis`` through ``center``: ``2 * sections + 2`` vertices, ``4 * sections`` faces."""
    _positive("radius", radius)
    _positive("height", height)
    if sections < 3:
        raise ValueError(f"sections must be >= 3, got {sections}")
    m = trimesh.creation.cylinder(radius=radius, height=height, sections=sections, transform=_axis_transform(axis, center))
    return _to_torch(m)


def sphere(radius: float = 0.5, subdivisions: int = 2, center: Sequence[float] = (0.0, 0.0, 0.0)) -> MeshTensors:
    """Icosphere: ``10 * 4**s + 2`` vertices, ``20 * 4**s`` faces for ``s = subdivisions``."""
    _positive("radius", radius)
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    m.apply_translation(_vec3("center", center))
    return _to_torch(m)


def combine(parts: Sequence[MeshTensors]) -> MeshTensors:
    """Concatenate meshes into one (faces re-indexed); parts may overlap (silhouettes don't mind)."""
    if len(parts) == 0:
        raise ValueError("parts must hold at least one (vertices, faces) mesh, got none")
    vertices, faces, offset = [], [], 0
    for v, f in parts:
        vertices.append(v.to(torch.float32))
        faces.append(f.to(torch.int64) + offset)
        offset += v.shape[0]
    return torch.cat(vertices), torch.cat(faces)
