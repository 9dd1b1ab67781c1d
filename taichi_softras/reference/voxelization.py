"""Containment oracle for voxelization: the generalized winding number (Jacobson et al. 2013) of
voxel centres, in dense float64 torch. O(P F) work; tests and benchmarks only."""

from __future__ import annotations

import math

import torch


def winding_number(face_vertices: torch.Tensor, points: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Generalized winding number ``(P,)`` of ``points (P, 3)`` w.r.t. triangles ``face_vertices (F, 3, 3)``:
    the sum of the faces' signed solid angles / 4 pi (van Oosterom & Strackee). 1 inside and 0
    outside a closed, outward-wound mesh; about 1/2 on its surface."""
    tri = face_vertices.to(torch.float64)
    out = []
    for s in range(0, len(points), chunk):
        rel = tri[None] - points[s : s + chunk, None, None, :].to(torch.float64)  # (p, F, 3, 3)
        a, b, c = rel.unbind(2)
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        num = (a * torch.cross(b, c, dim=-1)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(torch.atan2(num, den).sum(1) / (2 * math.pi))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def voxel_centres(size: int) -> torch.Tensor:
    """Centres ``(size^3, 3)`` of the voxels of a ``size^3`` grid over the unit cube, [i, j, k] order."""
    idx = torch.arange(size, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(idx, idx, idx, indexing="ij"), -1).reshape(-1, 3)
    return (grid + 0.5) / size


def centre_inside(face_vertices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """bool ``(P,)``: |winding number| > 1/2 (inside whichever way the mesh is wound)."""
    return winding_number(face_vertices, points).abs() > 0.5
