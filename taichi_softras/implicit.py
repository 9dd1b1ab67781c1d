"""Implicit surfaces learned from silhouettes (Liu, Saito, Chen, Li — NeurIPS 2019).

An occupancy network ``network(points (P, 3)) -> (P,)`` (or ``(P, 1)``) with values in [0, 1] is
trained with L = L_sil + λ L_geo:

* :class:`FieldProber` / :func:`silhouette_loss`: anchor values max-pooled along camera rays
  (:func:`taichi_softras.ops.probe.probe_view`) against the silhouettes;
* :func:`geometric_regularizer`: finite-difference normals kept consistent across the surface band;
* :func:`extract_mesh` (marching cubes) and :func:`occupancy_grid` / :func:`voxel_iou` to evaluate.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from ._lazy import measure, trimesh

from .ops.checks import check_choice, check_positive, check_tensor, image_hw
from .camera import Camera
from .ops.probe import probe_view
from .sampling import grid_points
from .voxelization import voxel_iou  # noqa: F401  (evaluation; re-exported here)

Field = Callable[[torch.Tensor], torch.Tensor]
LOSS_KINDS = ("mse", "bce")
_BCE_CLAMP = 1e-6  # keeps log finite where a probe saturates at exactly 0 or 1


def evaluate(network: Field, points: torch.Tensor) -> torch.Tensor:
    """``network`` on points ``(..., 3)`` -> values ``(...)`` (accepts networks returning (P, 1))."""
    flat = points.reshape(-1, 3)
    out = network(flat)
    if out.shape not in ((flat.shape[0],), (flat.shape[0], 1)):
        raise ValueError(f"network must map (P, 3) points to (P,) or (P, 1) values, got {tuple(out.shape)} for P={flat.shape[0]}")
    return out.reshape(points.shape[:-1])


def silhouette_loss(probed: torch.Tensor, target: torch.Tensor, kind: str = "mse", weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-ray loss between probed values and silhouette labels (1 inside, 0 outside).

    probed, target: the same shape, e.g. ``(B, R)``; ``kind``: 'mse' or 'bce'; ``weights`` (same
    shape, optional): per-ray importance weights (e.g. 1 / sampling density), a weighted mean.
    """
    check_choice(kind, "kind", LOSS_KINDS)
    if probed.shape != target.shape:
        raise ValueError(f"probed and target must have the same shape, got {tuple(probed.shape)} and {tuple(target.shape)}")
    target = target.to(probed.dtype)
    if kind == "mse":
        per_ray = (probed - target) ** 2
    else:
        per_ray = F.binary_cross_entropy(probed.clamp(_BCE_CLAMP, 1 - _BCE_CLAMP), target, reduction="none")
    if weights is None:
        return per_ray.mean()
    if weights.shape != probed.shape:
        raise ValueError(f"weights must have the shape of probed {tuple(probed.shape)}, got {tuple(weights.shape)}")
    weights = weights.to(probed.dtype)
    return (per_ray * weights).sum() / weights.sum()


class FieldProber(nn.Module):
    """Silhouette loss of an occupancy network by anchor-ray probing.

    Anchors (default: ``n_anchors`` uniform in the cube ``bounds``, redrawn each call) get the
    network's values; every camera's rays max-pool them (``radius`` = anchors' support), with
    boundary-aware assignment unless disabled; the probed values are compared with the silhouettes.
    Cameras are :class:`~taichi_softras.camera.Camera` values, or look_at perspective eyes
    (``viewing_angle``, ``at``, ``up``), one per view.
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 64,
        radius: float = 0.02,
        n_anchors: int = 16384,
        bounds: Sequence[float] = (-0.5, 0.5),
        viewing_angle: float = 15.0,
        boundary_aware: bool = True,
        loss: str = "mse",
        at: Sequence[float] = (0, 0, 0),
        up: Sequence[float] = (0, 1, 0),
    ) -> None:
        super().__init__()
        self.image_size = image_hw(image_size)
        self.radius = check_positive(radius, "radius")
        if isinstance(n_anchors, bool) or not isinstance(n_anchors, int) or n_anchors < 1:
            raise ValueError(f"n_anchors must be a positive int, got {n_anchors!r}")
        self.n_anchors = n_anchors
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.viewing_angle = float(viewing_angle)
        self.boundary_aware = bool(boundary_aware)
        check_choice(loss, "loss", LOSS_KINDS)
        self.loss = loss
        self.at, self.up = tuple(at), tuple(up)

    def forward(
        self,
        network: Field,
        eyes: torch.Tensor,
        silhouettes: torch.Tensor,
        anchors: torch.Tensor | None = None,
        pixels: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """eyes: a :class:`~taichi_softras.camera.Camera` of batch V (or 1) or look_at eyes ``(V, 3)``
        (with the prober's ``viewing_angle``, ``at``, ``up``); silhouettes ``(V, H, W)``; anchors ``(N, 3)`` shared by the views or
        ``(V, N, 3)``; pixels ``(V, R)`` flat indices of the rays (default: all, R = H W); weights
        ``(V, R)`` per-ray loss weights. Returns the scalar loss and the probed values: an image
        ``(V, H, W)`` without ``pixels``, else ``(V, R)``."""
        check_tensor(silhouettes, "silhouettes", ndim=3)
        v = silhouettes.shape[0]
        h, w = self.image_size
        if tuple(silhouettes.shape[1:]) != (h, w):
            raise ValueError(f"silhouettes must be (V, {h}, {w}) for image_size {self.image_size}, got {tuple(silhouettes.shape)}")
        if anchors is None:
            lo, hi = self.bounds
            anchors = lo + (hi - lo) * torch.rand(self.n_anchors, 3, dtype=silhouettes.dtype, device=silhouettes.device)
        check_tensor(anchors, "anchors", last=(3,))
        values = evaluate(network, anchors.to(silhouettes.dtype))
        if anchors.ndim == 2:
            anchors, values = anchors[None].expand(v, -1, -1), values[None].expand(v, -1)
        cams = eyes if isinstance(eyes, Camera) else eyes.to(silhouettes.dtype)
        result = probe_view(
            cams, anchors.to(silhouettes.dtype).contiguous(), self.radius, values.contiguous(),
            (h, w), pixels=pixels, silhouettes=silhouettes, boundary_aware=self.boundary_aware,
            viewing_angle=self.viewing_angle, at=self.at, up=self.up,
        )
        target = (silhouettes > 0.5).reshape(v, h * w)
        if pixels is not None:
            target = target.gather(1, pixels.long())
        loss = silhouette_loss(result.value, target, self.loss, weights)
        probed = result.value if pixels is not None else result.value.reshape(v, h, w)
        return loss, probed


@functools.lru_cache(maxsize=1)
def _stencil() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The regularizer's stencil in steps of Δ: unique offsets ``(K, 3)`` and, for the sample and
    its 6 axis neighbours (the 7 "centres"), their index ``(7,)`` and the indices of their +Δ e_i and
    −Δ e_i points ``(7, 3)`` into the offsets."""
    unit = np.eye(3, dtype=int)
    centres = [np.zeros(3, dtype=int)] + [unit[i] * s for s in (1, -1) for i in range(3)]
    offsets = sorted({tuple(c + s * unit[i]) for c in centres for s in (1, -1) for i in range(3)} | {tuple(c) for c in centres})
    index = {o: k for k, o in enumerate(offsets)}
    centre = np.array([index[tuple(c)] for c in centres])
    plus = np.array([[index[tuple(c + unit[i])] for i in range(3)] for c in centres])
    minus = np.array([[index[tuple(c - unit[i])] for i in range(3)] for c in centres])
    return np.array(offsets), centre, plus, minus


def band_weight(phi: torch.Tensor, band: float, smooth: bool) -> torch.Tensor:
    """Importance weight W(φ) of the surface band: 1(|φ - 0.5| < band), or exp(-((φ - 0.5)/band)^2)."""
    if smooth:
        return torch.exp(-(((phi - 0.5) / band) ** 2))
    return ((phi - 0.5).abs() < band).to(phi.dtype)


def geometric_regularizer(
    network: Field, points: torch.Tensor, delta: float = 1 / 64, band: float = 0.25, p: float = 2.0, smooth: bool = False
) -> torch.Tensor:
    """L_geo of the paper: normals n = ∇φ/|∇φ| by central differences (step ``delta``) at each sample
    s and its 6 axis neighbours q_l = s ± Δ e_i;
    L = mean_s W(φ(s)) Σ_l W(φ(q_l)) ‖n(s) − n(q_l)‖_p^p / Σ_l W(φ(q_l)) (0 where no neighbour is
    in the band), W from :func:`band_weight`. points ``(P, 3)``; returns a scalar. Costs one network
    call on 25 P points.
    """
    check_tensor(points, "points", ndim=2, last=(3,))
    delta = check_positive(delta, "delta")
    band = check_positive(band, "band")
    offsets, centre, plus, minus = (torch.as_tensor(x) for x in _stencil())
    phi = evaluate(network, points[:, None, :] + offsets.to(points)[None] * delta)  # (P, K)
    grad = (phi[:, plus] - phi[:, minus]) / (2 * delta)  # (P, 7, 3)
    normals = grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    w = band_weight(phi[:, centre], band, smooth)  # (P, 7): the sample, then its neighbours
    diff = (normals[:, :1] - normals[:, 1:]).abs().pow(p).sum(-1)  # (P, 6)
    per_sample = (w[:, 1:] * diff).sum(-1) / w[:, 1:].sum(-1).clamp(min=1e-12)
    return (w[:, 0] * per_sample).mean()


@torch.no_grad()
def field_grid(network: Field, resolution: int = 64, bounds: Sequence[float] = (-0.5, 0.5), batch_points: int = 65536,
               device=None, dtype=torch.float32) -> torch.Tensor:
    """φ at the voxel centres of the cube ``bounds``: ``(res, res, res)`` indexed [x, y, z], evaluated
    in chunks of ``batch_points``."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    if batch_points < 1:
        raise ValueError(f"batch_points must be >= 1, got {batch_points!r}")
    pts = grid_points(resolution, bounds, device, dtype).reshape(-1, 3)
    values = torch.cat([evaluate(network, chunk) for chunk in pts.split(batch_points)])
    return values.reshape(resolution, resolution, resolution)


def occupancy_grid(network: Field, resolution: int = 32, bounds: Sequence[float] = (-0.5, 0.5), level: float = 0.5,
                   batch_points: int = 65536, device=None) -> torch.Tensor:
    """Voxels ``(res, res, res)`` bool ([x, y, z]) whose centre has φ > ``level``."""
    return field_grid(network, resolution, bounds, batch_points, device) > level


def extract_mesh(network: Field, resolution: int = 64, bounds: Sequence[float] = (-0.5, 0.5), level: float = 0.5,
                 batch_points: int = 65536, device=None) -> trimesh.Trimesh:
    """Marching cubes (scikit-image) of φ = ``level`` on a ``resolution``³ grid of voxel centres over
    the cube ``bounds``; vertices in world coordinates, faces wound outward (φ > level inside).
    Raises ValueError when the field does not cross ``level`` on the grid."""
    values = field_grid(network, resolution, bounds, batch_points, device).cpu().double().numpy()
    if not values.min() < level < values.max():
        raise ValueError(f"the field does not cross level {level} on the grid (range [{values.min():.3g}, {values.max():.3g}])")
    lo, hi = float(bounds[0]), float(bounds[1])
    cell = (hi - lo) / resolution
    # pad with "outside" so surfaces touching the box are closed
    padded = np.pad(values, 1, constant_values=min(values.min(), level - 1))
    verts, faces, _, _ = measure.marching_cubes(padded, level, spacing=(cell, cell, cell))
    verts = verts + (lo + cell / 2 - cell)
    # scikit-image winds faces towards increasing values (inside here): flip them to face outward
    return trimesh.Trimesh(verts, faces[:, ::-1], process=False)
