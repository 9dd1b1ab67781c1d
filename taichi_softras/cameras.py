"""SoftRas-style camera functions: they transform vertices ``(B, N, 3)`` (world -> camera -> NDC).

Frame and formulas: :mod:`taichi_softras.conventions` (SoftRas's left-handed frame).
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import conventions as C
from .ops.checks import check_device_type, check_in_range

Vec3 = Union[torch.Tensor, Sequence[float]]


def check_vertices(vertices: torch.Tensor) -> None:
    if not isinstance(vertices, torch.Tensor):
        raise TypeError(f"vertices must be a torch.Tensor, got {type(vertices).__name__}")
    check_device_type(vertices, "vertices")
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, N, 3), got {tuple(vertices.shape)}")


def camera_rotation(
    z_axis: torch.Tensor, up: torch.Tensor, direction: str = "direction", zero_hint: str = "pass a non-zero direction"
) -> torch.Tensor:
    """Rows x, y, z of the world -> camera rotation ``(B, 3, 3)`` for a viewing direction z_axis.

    Raises ValueError where no frame exists: a zero z_axis (the message names it ``direction`` and
    adds ``zero_hint``) or an ``up`` parallel to it. SoftRas normalizes with eps = 1e-5, which
    silently collapses the image there (a zero x axis), and also when up is only nearly parallel
    (elevation 90 degrees); here the axes are unit vectors wherever they are defined (nearly
    parallel gives the frame's limit) and an error says what to change where they are not.
    """
    tiny = torch.finfo(z_axis.dtype).tiny
    z_axis = F.normalize(z_axis, eps=tiny)
    x_axis = F.normalize(torch.cross(up, z_axis, dim=-1), eps=tiny)
    y_axis = torch.cross(z_axis, x_axis, dim=-1)

    def first_bad(axis):
        bad = ((axis.detach().norm(dim=-1) - 1).abs() > 1e-3).nonzero()
        return int(bad[0, 0]) if bad.numel() else None

    i = first_bad(z_axis)
    if i is not None:
        raise ValueError(f"{direction} is zero at batch item {i}: {zero_hint}")
    i = first_bad(x_axis)
    if i is not None:
        raise ValueError(
            f"up = {up[i].tolist()} is parallel to the viewing direction {direction} = {z_axis[i].tolist()} at batch "
            f"item {i}; pass an up vector that is not (e.g. up=(0, 0, 1) to look straight down the y axis)"
        )
    return torch.stack((x_axis, y_axis, z_axis), dim=1)


#: What camera_rotation says when a look_at eye sits on its target.
EYE_AT_TARGET = ("at - eye", "eye equals at; move the eye away from its target")


def tan_viewing_angle(angle) -> float:
    """tan of the viewing angle (degrees, the half-angle across the shorter image side)."""
    return math.tan(math.radians(check_in_range(angle, "viewing_angle", 0.0, 90.0, "a half-angle in (0, 90) degrees")))


def look_at(vertices: torch.Tensor, eye: Vec3, at: Vec3 = (0, 0, 0), up: Vec3 = (0, 1, 0)) -> torch.Tensor:
    """World ``(B, N, 3)`` -> camera coordinates for an eye looking at ``at``. eye/at/up: (3,) or (B, 3)."""
    from .camera import Camera

    check_vertices(vertices)
    return Camera.look_at(eye, at, up, dtype=vertices.dtype, device=vertices.device).to_camera(vertices)


def look(vertices: torch.Tensor, eye: Vec3, direction: Vec3 = (0, 0, 1), up: Vec3 = (0, 1, 0)) -> torch.Tensor:
    """World ``(B, N, 3)`` -> camera coordinates for an eye looking along ``direction``."""
    from .camera import Camera

    check_vertices(vertices)
    return Camera.look(eye, direction, up, dtype=vertices.dtype, device=vertices.device).to_camera(vertices)


def perspective(vertices: torch.Tensor, angle: float = C.VIEWING_ANGLE) -> torch.Tensor:
    """Camera ``(B, N, 3)`` -> NDC x, y with camera depth z kept: x / (z tan(angle)). angle in degrees."""
    check_vertices(vertices)
    width = tan_viewing_angle(angle)
    z = vertices[..., 2]
    return torch.stack((vertices[..., 0] / z / width, vertices[..., 1] / z / width, z), dim=-1)


def orthogonal(vertices: torch.Tensor, scale: float) -> torch.Tensor:
    """Camera ``(B, N, 3)`` -> NDC by scaling x, y (z kept)."""
    check_vertices(vertices)
    return torch.stack((vertices[..., 0] * scale, vertices[..., 1] * scale, vertices[..., 2]), dim=-1)


def projection(
    vertices: torch.Tensor, P: torch.Tensor, dist_coeffs: torch.Tensor | None = None, orig_size: float = 512
) -> torch.Tensor:
    """Project world vertices ``(B, N, 3)`` with a 3x4 matrix ``P (B, 3, 4)`` (or (3, 4)) and
    OpenCV distortion coefficients ``(B, 5)`` (k1, k2, p1, p2, k3) into NDC, keeping depth."""
    check_vertices(vertices)
    P = torch.as_tensor(P, dtype=vertices.dtype, device=vertices.device)
    if P.ndim == 2:
        P = P[None]
    if P.shape[-2:] != (3, 4):
        raise ValueError(f"P must have shape (3, 4) or (B, 3, 4), got {tuple(P.shape)}")
    P = P.expand(vertices.shape[0], 3, 4)
    if dist_coeffs is None:
        dist_coeffs = torch.zeros(vertices.shape[0], 5, dtype=vertices.dtype, device=vertices.device)
    dist_coeffs = torch.as_tensor(dist_coeffs, dtype=vertices.dtype, device=vertices.device)
    if dist_coeffs.ndim == 1:
        dist_coeffs = dist_coeffs[None]
    if dist_coeffs.shape[-1] != 5:
        raise ValueError(f"dist_coeffs must have shape (5,) or (B, 5), got {tuple(dist_coeffs.shape)}")
    dist_coeffs = dist_coeffs.expand(vertices.shape[0], 5)
    homog = torch.cat([vertices, torch.ones_like(vertices[..., :1])], dim=-1)
    v = torch.bmm(homog, P.transpose(2, 1))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    x_ = x / (z + 1e-5)
    y_ = y / (z + 1e-5)
    k1, k2, p1, p2, k3 = (dist_coeffs[:, None, i] for i in range(5))
    r2 = x_**2 + y_**2
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r2 + 2 * x_**2)
    y__ = y_ * radial + p1 * (r2 + 2 * y_**2) + 2 * p2 * x_ * y_
    x__ = 2 * (x__ - orig_size / 2.0) / orig_size
    y__ = 2 * (y__ - orig_size / 2.0) / orig_size
    return torch.stack([x__, y__, z], dim=-1)


def get_points_from_angles(distance, elevation, azimuth, degrees: bool = True):
    """Eye position(s) from spherical angles: (d cos e sin a, d sin e, -d cos e cos a).

    Scalars (Python or numpy numbers) give a tuple of three floats; tensors, numpy arrays or lists
    ``(B,)`` (broadcastable against each other) give a ``(B, 3)`` tensor (the dtype and device of the
    first tensor given, else float32 on the CPU).
    """
    args = (distance, elevation, azimuth)
    if all(isinstance(a, numbers.Real) for a in args):
        distance, elevation, azimuth = (float(a) for a in args)
        if degrees:
            elevation, azimuth = math.radians(elevation), math.radians(azimuth)
        return (
            distance * math.cos(elevation) * math.sin(azimuth),
            distance * math.sin(elevation),
            -distance * math.cos(elevation) * math.cos(azimuth),
        )
    ref = next((a for a in args if isinstance(a, torch.Tensor)), None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    device = ref.device if ref is not None else None
    distance, elevation, azimuth = (torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=dtype, device=device) for a in args)
    distance, elevation, azimuth = torch.broadcast_tensors(distance, elevation, azimuth)
    if degrees:
        elevation = elevation * (math.pi / 180.0)
        azimuth = azimuth * (math.pi / 180.0)
    return torch.stack(
        [
            distance * torch.cos(elevation) * torch.sin(azimuth),
            distance * torch.sin(elevation),
            -distance * torch.cos(elevation) * torch.cos(azimuth),
        ],
        dim=-1,
    ).reshape(-1, 3)


def pixel_rays(
    eye,
    at: Vec3 = (0, 0, 0),
    up: Vec3 = (0, 1, 0),
    viewing_angle: float = C.VIEWING_ANGLE,
    image_size: int | tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space rays through the pixel centres of a :class:`~taichi_softras.camera.Camera`, or of
    the look_at perspective cameras of eye(s) ``(3,)``/``(B, 3)`` (``image_size`` default 256).

    Returns origins and unit directions, each ``(B, H*W, 3)``, pixels in row-major order (row 0 =
    top), matching the rasterizer's images.
    """
    from .camera import Camera, as_camera

    if not isinstance(eye, Camera) and image_size is None:
        image_size = C.IMAGE_SIZE
    return as_camera(eye, image_size, viewing_angle, at, up).rays()
