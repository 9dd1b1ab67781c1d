"""Anchor-ray probing (NeurIPS'19 "field probing"): max pooling of anchor values along rays.

``probe_rays`` takes arbitrary rays; ``probe_view`` casts the rays of a
:class:`~taichi_softras.camera.Camera` and adds boundary-aware assignment from a silhouette.
Kernels: :mod:`taichi_softras.kernels.probe`, launched by :mod:`._probe_engine` (imported at the
first call); argument checks and results: :mod:`taichi_softras.spec`; dense pure-torch statement of the same op:
:mod:`taichi_softras.reference.probe`. Gradients reach ``values`` only (at each ray's arg-max anchor,
as max pooling does), through Taichi autodiff of a gather.

Binning: when all rays of a batch element share one origin (a pinhole), anchors are binned into
tiles of a screen plane perpendicular to the mean ray direction (each anchor's sphere covers a
box of tangent coordinates), so cost follows (ray, anchor) hits; rays more than ~78 degrees off
the mean direction test every anchor of their batch element. Rays of other layouts walk a 3D grid
of cells over the anchors (a DDA), so cost follows the cells they cross and the anchors listed there.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import runtime
from ..camera import Camera, as_camera
from ..spec import ProbeResult, check_probe_args
from .checks import check_tensor

#: Rays with d . axis <= this cos (about 78 degrees off the pinhole's mean direction) skip the tiles.
_MIN_AXIS_COS = 0.2
#: Rays per screen tile aimed at by the binning (tiles per side are capped at _MAX_GRID).
_RAYS_PER_TILE = 4
_MAX_GRID = 128
#: Anchors per cell aimed at by the 3D grid of arbitrary rays (cells per side capped at _MAX_GRID_3D).
_ANCHORS_PER_CELL = 2
_MAX_GRID_3D = 64
def _tangent_frame(axis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit vectors ``(B, 3)`` completing ``axis (B, 3)`` to an orthonormal frame."""
    helper = torch.zeros_like(axis)
    helper[:, 1] = 1.0
    near_y = axis[:, 1].abs() > 0.9
    helper[near_y] = torch.tensor([1.0, 0.0, 0.0], dtype=axis.dtype, device=axis.device)
    e1 = F.normalize(torch.cross(helper, axis, dim=-1), dim=-1)
    return e1, torch.cross(axis, e1, dim=-1)


def _cone_interval(q_side: torch.Tensor, q_axis: torch.Tensor, radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Range of side/axis slopes of a sphere seen from the origin (needs q_axis > radius): the
    tangents of the two lines from the origin touching the disk (q_side, q_axis), radius r."""
    centre = torch.atan2(q_side, q_axis)
    half = torch.asin((radius / torch.sqrt(q_side**2 + q_axis**2)).clamp(max=1.0))
    return torch.tan(centre - half), torch.tan(centre + half)


def _bin_pinhole(origins, directions, anchors, radius):
    """Screen-tile binning for pinhole rays (torch, float64 geometry; integer work in Taichi).

    Returns ``(ray_tile (B*R,) int32, tile_box (B*N, 6) int32, grid)`` (grid x grid tiles, boxes
    with z0 = z1 = 0) or None when some batch element's rays do not share one origin.
    """
    b, r = origins.shape[:2]
    eye = origins[:, :1]
    if not bool((origins == eye).all()):
        return None
    d = directions.double()
    axis = d.sum(1)
    degenerate = axis.norm(dim=-1) < 1e-6 * r
    axis[degenerate] = d[degenerate, 0]
    axis = F.normalize(axis, dim=-1)
    e1, e2 = _tangent_frame(axis)
    frame = torch.stack((e1, e2, axis), dim=1)  # rows: world -> (side u, side v, axis)
    dl = torch.einsum("brk,bjk->brj", d, frame)
    fast = dl[..., 2] > _MIN_AXIS_COS
    u = dl[..., 0] / dl[..., 2].clamp(min=_MIN_AXIS_COS)
    v = dl[..., 1] / dl[..., 2].clamp(min=_MIN_AXIS_COS)
    inf = torch.tensor(math.inf, dtype=torch.float64, device=d.device)
    lo_u, hi_u = torch.where(fast, u, inf).amin(1), torch.where(fast, u, -inf).amax(1)
    lo_v, hi_v = torch.where(fast, v, inf).amin(1), torch.where(fast, v, -inf).amax(1)
    any_fast = fast.any(1)
    lo_u, hi_u = torch.where(any_fast, lo_u, 0), torch.where(any_fast, hi_u, 1)
    lo_v, hi_v = torch.where(any_fast, lo_v, 0), torch.where(any_fast, hi_v, 1)
    grid = max(1, min(_MAX_GRID, int(math.sqrt(r / _RAYS_PER_TILE))))
    size_u = ((hi_u - lo_u) / grid).clamp(min=1e-12)[:, None]
    size_v = ((hi_v - lo_v) / grid).clamp(min=1e-12)[:, None]
    lo_u, hi_u, lo_v, hi_v = lo_u[:, None], hi_u[:, None], lo_v[:, None], hi_v[:, None]

    def cell(x, lo, size):
        return torch.floor((x - lo) / size).clamp(0, grid - 1).long()

    ray_tile = torch.where(fast, cell(v, lo_v, size_v) * grid + cell(u, lo_u, size_u), -1)

    q = torch.einsum("bnk,bjk->bnj", anchors.double() - eye.double(), frame)
    rad = radius.double()
    in_front = q[..., 2] > rad * (1 + 1e-6) + 1e-12
    behind = q[..., 2] <= -rad * (1 + 1e-6) - 1e-12  # no ray with d . axis > 0 reaches these
    qz = torch.where(in_front, q[..., 2], rad * 2 + 1)  # keep the cone maths finite where unused
    u0, u1 = _cone_interval(q[..., 0], qz, rad)
    v0, v1 = _cone_interval(q[..., 1], qz, rad)
    pad = 1e-5  # float32 hit tests may accept a ray ~1e-7 outside the exact cone
    u0, u1 = u0 - pad * (1 + u0.abs()), u1 + pad * (1 + u1.abs())
    v0, v1 = v0 - pad * (1 + v0.abs()), v1 + pad * (1 + v1.abs())
    misses = (u1 < lo_u) | (u0 > hi_u) | (v1 < lo_v) | (v0 > hi_v)
    zero = torch.zeros_like(ray_tile[:1, :1]).expand_as(u0)
    box = torch.stack((cell(u0, lo_u, size_u), cell(u1, lo_u, size_u), cell(v0, lo_v, size_v), cell(v1, lo_v, size_v), zero, zero), -1)
    straddles = ~in_front & ~behind  # the sphere contains points on both sides of the eye plane
    box[straddles] = torch.tensor([0, grid - 1, 0, grid - 1, 0, 0], device=box.device)
    box[behind | (in_front & misses)] = torch.tensor([1, 0, 1, 0, 0, 0], device=box.device)  # empty
    return ray_tile.reshape(-1).int().contiguous(), box.reshape(-1, 6).int().contiguous(), grid


def _bin_grid(anchors, radius):
    """Cubic 3D grid per batch element over the anchors' spheres, for arbitrary rays: its corner
    ``(B, 3)``, cell side ``(B,)`` (both in the anchors' dtype), cells per side and the cell box
    ``(B*N, 6)`` int32 of each anchor's sphere (padded so rounding never drops a cell)."""
    b, n = anchors.shape[:2]
    c, rad = anchors.double(), radius.double()[..., None]
    lo, hi = (c - rad).amin(1), (c + rad).amax(1)
    extent = (hi - lo).amax(1).clamp(min=1e-9)
    lo = lo - 1e-4 * extent[:, None]
    extent = extent * (1 + 2e-4)
    grid = max(1, min(_MAX_GRID_3D, round((n / _ANCHORS_PER_CELL) ** (1 / 3))))
    size = extent / grid
    pad = 1e-4 * size[:, None, None]
    lo_cell = torch.floor((c - rad - lo[:, None] - pad) / size[:, None, None]).clamp(0, grid - 1)
    hi_cell = torch.floor((c + rad - lo[:, None] + pad) / size[:, None, None]).clamp(0, grid - 1)
    box = torch.stack((lo_cell, hi_cell), -1).reshape(b * n, 6).int().contiguous()
    return lo.to(anchors.dtype).contiguous(), size.to(anchors.dtype).contiguous(), grid, box


def engine():
    """The probe's buffers and launches (:mod:`._probe_engine`); importing it imports Taichi, so
    this happens at the first call, not at ``import taichi_softras``."""
    from . import _probe_engine

    return _probe_engine


def _find_argmax(origins, directions, anchors, radius, values, ray_labels, anchor_labels):
    """Forward-only search: flat arg-max ``(B*R,)`` int32 (flat anchor index or -1) and counts.
    Call with ``runtime.launch`` held."""
    eng = engine()
    b, r = origins.shape[:2]
    n = anchors.shape[1]
    i32 = dict(dtype=torch.int32, device=origins.device)
    use_labels = ray_labels is not None
    if use_labels:
        ray_labels = ray_labels.reshape(-1).to(torch.int32).contiguous()
        anchor_labels = anchor_labels.reshape(-1).to(torch.int32).contiguous()
    else:
        ray_labels = anchor_labels = torch.zeros(1, **i32)
    out = dict(argmax=torch.empty(b * r, **i32), count=torch.empty(b * r, **i32))
    flat = dict(origins=origins.reshape(-1, 3).contiguous(), directions=directions.reshape(-1, 3).contiguous(),
                anchors=anchors.reshape(-1, 3).contiguous(), radius=radius.reshape(-1).contiguous(),
                values=values.detach().reshape(-1).contiguous())
    labels = dict(ray_label=ray_labels, anchor_label=anchor_labels, use_labels=use_labels)
    binned = _bin_pinhole(origins, directions, anchors, radius)
    if binned is not None:
        ray_tile, tile_box, grid = binned
        bins = eng.bin_anchors(tile_box, n, (grid, grid, 1), b)
        eng.find_argmax(flat, bins, labels, out, r, n, ray_tile=ray_tile, tiles_per_batch=grid * grid)
    else:
        grid_lo, cell, grid, tile_box = _bin_grid(anchors, radius)
        bins = eng.bin_anchors(tile_box, n, (grid, grid, grid), b)
        eng.find_argmax(flat, bins, labels, out, r, n, grid_lo=grid_lo, cell=cell, grid=grid)
    return out["argmax"], out["count"]


class _Gather(torch.autograd.Function):
    """value[i] = values[argmax[i]] through Taichi's ``gather`` kernel and its autodiff adjoint."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, argmax: torch.Tensor) -> torch.Tensor:
        out = torch.empty(argmax.numel(), dtype=values.dtype, device=values.device)
        with runtime.launch(values.device):
            engine().gather(values.detach().reshape(-1).contiguous(), argmax, out)
        ctx.save_for_backward(argmax)
        ctx.values_shape = values.shape
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (argmax,) = ctx.saved_tensors
        grad_values = torch.empty(math.prod(ctx.values_shape), dtype=grad_out.dtype, device=grad_out.device)
        with runtime.launch(grad_out.device):
            # reshape(-1).contiguous(): e.g. the stride-0 grad of out.sum()
            engine().gather_grad(grad_out.reshape(-1).contiguous(), argmax, grad_values)
        return grad_values.reshape(ctx.values_shape), None


def probe_rays(
    origins: torch.Tensor,
    directions: torch.Tensor,
    anchors: torch.Tensor,
    radius: float | torch.Tensor,
    values: torch.Tensor,
    *,
    ray_labels: torch.Tensor | None = None,
    anchor_labels: torch.Tensor | None = None,
) -> ProbeResult:
    """Max-pool anchor values along rays.

    origins, directions: ``(B, R, 3)`` (unit directions); anchors ``(B, N, 3)``; radius: the anchors'
    spherical support, a number or ``(N,)``/``(B, N)``; values ``(B, N)`` (φ at the anchors,
    differentiable). Boundary-aware assignment: ``ray_labels (B, R)`` and ``anchor_labels (B, N)``
    (bool or int, e.g. inside the silhouette); a ray then only probes anchors with its label.
    Returns :class:`ProbeResult` ``(value, index, count)``, each ``(B, R)``.
    """
    radius = check_probe_args(origins, directions, anchors, radius, values, ray_labels, anchor_labels)
    b, r = origins.shape[:2]
    n = anchors.shape[1]
    dev = origins.device
    if b * r == 0 or n == 0:
        zeros = torch.zeros(b, r, dtype=torch.int64, device=dev)
        return ProbeResult(values.new_zeros(b, r) + 0 * values.sum(), zeros - 1, zeros)
    runtime.ensure_initialized(dev)
    if origins.dtype == torch.float64:
        runtime.require_float64("float64 inputs to probe_rays")
    with runtime.launch(dev):
        argmax, count = _find_argmax(origins, directions, anchors, radius, values, ray_labels, anchor_labels)
    value = _Gather.apply(values, argmax).reshape(b, r)
    index = argmax.long().reshape(b, r)
    index = torch.where(index >= 0, index - torch.arange(b, device=dev)[:, None] * n, -1)
    return ProbeResult(value, index, count.long().reshape(b, r))


def project_to_pixels(points: torch.Tensor, eye, image_size=None, viewing_angle: float = 30.0,
                      at: Sequence[float] = (0, 0, 0), up: Sequence[float] = (0, 1, 0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest pixel ``(row, col)`` of world points ``(B, N, 3)`` seen by a :class:`Camera` or by the
    look_at cameras of ``eye (B, 3)``, each ``(B, N)`` int64, and whether it lies in the image and in
    front of the camera ``(B, N)`` bool (:meth:`Camera.to_pixels`)."""
    return as_camera(eye, image_size, viewing_angle, at, up, dtype=points.dtype).to_pixels(points)


def probe_view(
    camera,
    anchors: torch.Tensor,
    radius: float | torch.Tensor,
    values: torch.Tensor,
    image_size: int | tuple[int, int] | None = None,
    *,
    pixels: torch.Tensor | None = None,
    silhouettes: torch.Tensor | None = None,
    boundary_aware: bool = False,
    viewing_angle: float = 30.0,
    at: Sequence[float] = (0, 0, 0),
    up: Sequence[float] = (0, 1, 0),
) -> ProbeResult:
    """Probe the rays of a :class:`~taichi_softras.camera.Camera` (one per batch element), or of the
    look_at perspective cameras of eyes ``(B, 3)`` (with ``image_size``, ``viewing_angle``, ``at``,
    ``up``).

    anchors ``(B, N, 3)``; values ``(B, N)``; pixels: flat pixel indices ``(B, R)`` (row * W + col)
    of the rays to cast, default every pixel (R = H * W, row-major).
    With ``boundary_aware=True``, ``silhouettes (B, H, W)`` (inside > 0.5) label each ray by its
    pixel and each anchor by the pixel its centre projects to (outside the image: outside), and an
    anchor is dropped from a ray whose label differs. Returns :class:`ProbeResult` over the rays.
    """
    check_tensor(anchors, "anchors", ndim=3, last=(3,))
    b = anchors.shape[0]
    if not isinstance(camera, Camera):
        check_tensor(camera, "eye", ndim=2, last=(3,))
        if camera.shape[0] != b:
            raise ValueError(f"eye must have shape (B, 3) = ({b}, 3) like anchors, got {tuple(camera.shape)}")
    cam = as_camera(camera, image_size, viewing_angle, at, up, dtype=anchors.dtype)
    if cam.batch_size not in (1, b):
        raise ValueError(f"the camera has batch {cam.batch_size} but anchors have batch {b}")
    h, w = cam.image_size
    origins, directions = cam.rays()
    if origins.shape[0] != b:
        origins, directions = origins.expand(b, -1, -1), directions.expand(b, -1, -1)
    if pixels is not None:
        check_tensor(pixels, "pixels", ndim=2, floating=False)
        if pixels.shape[0] != b or (pixels.numel() and (int(pixels.min()) < 0 or int(pixels.max()) >= h * w)):
            raise ValueError(f"pixels must be (B, R) = ({b}, R) indices in [0, {h * w}), got shape {tuple(pixels.shape)}")
        idx = pixels.long()[..., None].expand(-1, -1, 3)
        origins, directions = origins.gather(1, idx), directions.gather(1, idx)
    origins, directions = origins.contiguous(), directions.contiguous()
    ray_labels = anchor_labels = None
    if boundary_aware:
        if silhouettes is None:
            raise ValueError("boundary_aware=True needs silhouettes (B, H, W)")
        check_tensor(silhouettes, "silhouettes", ndim=3)
        if tuple(silhouettes.shape) != (b, h, w):
            raise ValueError(f"silhouettes must have shape (B, H, W) = ({b}, {h}, {w}), got {tuple(silhouettes.shape)}")
        inside = (silhouettes > 0.5).reshape(b, h * w)
        ray_labels = inside if pixels is None else inside.gather(1, pixels.long())
        row, col, valid = cam.to_pixels(anchors.detach())
        anchor_labels = inside.gather(1, row * w + col) & valid
    return probe_rays(origins, directions, anchors, radius, values, ray_labels=ray_labels, anchor_labels=anchor_labels)
