"""Mesh geometry helpers on batched tensors: per-face gathers, normals, edges, normalization."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .ops.checks import check_face_indices

#: Normalization guard of face and vertex normals (SoftRas's).
NORMAL_EPS = 1e-6


def face_vertices(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Gather per-face corner attributes: vertices ``(B, N, C)``, faces ``(B, F, 3)`` -> ``(B, F, 3, C)``."""
    if not isinstance(vertices, torch.Tensor) or vertices.ndim != 3:
        raise ValueError(f"vertices must be a (B, N, C) tensor, got {getattr(vertices, 'shape', type(vertices))}")
    if not isinstance(faces, torch.Tensor) or faces.ndim != 3 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be a (B, F, 3) tensor, got {getattr(faces, 'shape', type(faces))}")
    if faces.shape[0] != vertices.shape[0]:
        raise ValueError(f"faces has batch {faces.shape[0]} but vertices has batch {vertices.shape[0]}")
    check_face_indices(faces, vertices.shape[1])
    b, f = faces.shape[:2]
    idx = faces.long().reshape(b, f * 3, 1).expand(b, f * 3, vertices.shape[-1])
    return torch.gather(vertices, 1, idx).reshape(b, f, 3, vertices.shape[-1])


def face_normals(face_verts: torch.Tensor) -> torch.Tensor:
    """Unit normals ``normalize(cross(v1 - v0, v2 - v0))`` of faces ``(B, F, 3, 3)`` -> ``(B, F, 3)``."""
    v0, v1, v2 = face_verts.unbind(dim=2)
    return F.normalize(torch.cross(v1 - v0, v2 - v0, dim=-1), dim=-1, eps=NORMAL_EPS)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals (SoftRas's): the normalized sum of the adjacent faces'
    un-normalized cross products. vertices ``(B, N, 3)``, faces ``(B, F, 3)`` -> ``(B, N, 3)``."""
    v0, v1, v2 = face_vertices(vertices, faces).unbind(dim=2)
    cross = torch.cross(v1 - v0, v2 - v0, dim=-1)  # the same vector for all three corners
    b, f = faces.shape[:2]
    idx = faces.long().reshape(b, f * 3, 1).expand(b, f * 3, 3)
    summed = torch.zeros_like(vertices).scatter_add(1, idx, cross[:, :, None].expand(b, f, 3, 3).reshape(b, f * 3, 3))
    return F.normalize(summed, dim=-1, eps=NORMAL_EPS)


def normalize_vertices(vertices: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Centre the bounding box at the origin and scale its longest side to ``2 * scale``.

    ``scale=1`` is SoftRas's ``load_obj(normalization=True)`` (the mesh fits [-1, 1]^3);
    ``scale=0.5`` fits the unit cube [-0.5, 0.5]^3. vertices ``(N, 3)`` or ``(B, N, 3)`` (per mesh)."""
    lo = vertices.amin(dim=-2, keepdim=True)
    hi = vertices.amax(dim=-2, keepdim=True)
    extent = (hi - lo).amax(dim=-1, keepdim=True)
    if bool((extent <= 0).any()):
        raise ValueError("vertices must span a non-zero extent to be normalized")
    return (vertices - (lo + hi) / 2) * (2.0 * scale / extent)


def edge_adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges of faces ``(F, 3)`` and, per edge, the opposite vertex of its faces.

    Returns ``edges (E, 2)`` (sorted pairs) and ``opposite (E, 2)``: the third vertices of the first
    two faces sharing the edge, ``-1`` where the edge has only one face (a boundary)."""
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    corners = np.concatenate([faces[:, [0, 1, 2]], faces[:, [1, 2, 0]], faces[:, [2, 0, 1]]])  # (a, b, opposite)
    pairs = np.sort(corners[:, :2], axis=1)
    edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    first = np.searchsorted(inverse[order], np.arange(len(edges)))
    count = np.bincount(inverse, minlength=len(edges))
    opposite = np.full((len(edges), 2), -1, dtype=np.int64)
    opposite[:, 0] = corners[order[first], 2]
    two = count >= 2
    opposite[two, 1] = corners[order[first[two] + 1], 2]
    return edges, opposite
