"""SoftRas's camera modules (``Projection``, ``LookAt``, ``Look``, ``Transform``), each a thin
``nn.Module`` around a :class:`~taichi_softras.camera.Camera`: ``module.camera(like)`` is the camera
value of its current settings, ``forward(vertices (B, N, 3))`` its screen space (NDC x, y, depth)."""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch
import torch.nn as nn

from . import cameras
from . import conventions as C
from .camera import Camera, Vec3
from .mesh import Mesh
from .ops.checks import check_choice, check_positive, check_vec3

CAMERA_MODES = ("projection", "look", "look_at")


def default_eye(viewing_angle: float) -> tuple[float, float, float]:
    """SoftRas's default eye ``(0, 0, -(1 / tan(angle) + 1))``: the unit cube just fills the view."""
    return (0.0, 0.0, -(1.0 / math.tan(math.radians(viewing_angle)) + 1.0))


def _check_P(P) -> torch.Tensor:
    if P is None:
        raise ValueError(
            "P must be a (3, 4) or (B, 3, 4) projection matrix when camera_mode='projection' "
            "(got None); use camera_mode='look_at' or 'look' for an eye-based camera"
        )
    P = torch.from_numpy(P) if isinstance(P, np.ndarray) else torch.as_tensor(P)
    if P.ndim not in (2, 3) or tuple(P.shape[-2:]) != (3, 4):
        raise ValueError(f"P must have shape (3, 4) or (B, 3, 4), got {tuple(P.shape)}")
    return P


class Projection(nn.Module):
    """Camera from a 3x4 projection matrix ``P`` (pixels of an ``orig_size`` image) with OpenCV
    distortion ``dist_coeffs (B, 5)``; ``forward(vertices (B, N, 3))`` -> NDC x, y and depth."""

    def __init__(self, P, dist_coeffs=None, orig_size: float = 512):
        super().__init__()
        self.P = _check_P(P)
        if dist_coeffs is not None:
            dist_coeffs = torch.as_tensor(dist_coeffs)
            if dist_coeffs.shape[-1:] != (5,) or dist_coeffs.ndim > 2:
                raise ValueError(f"dist_coeffs must have shape (5,) or (B, 5), got {tuple(dist_coeffs.shape)}")
        self.dist_coeffs = dist_coeffs
        self.orig_size = orig_size

    def camera(self, like: Optional[torch.Tensor] = None) -> Camera:
        size = max(1, round(float(self.orig_size)))
        return Camera.from_projection(self.P, size, self.dist_coeffs, self.orig_size)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        return self.camera(vertices).transform(vertices)


class _EyeCamera(nn.Module):
    """Shared part of LookAt/Look: the eye(s) and the perspective/orthogonal projection."""

    def __init__(self, perspective: bool, viewing_angle: float, viewing_scale: float, eye):
        super().__init__()
        self.perspective = perspective
        self.viewing_angle = check_positive(viewing_angle, "viewing_angle")
        self.viewing_scale = viewing_scale
        self._eye = check_vec3(eye if eye is not None else default_eye(self.viewing_angle), "eye")

    @property
    def eye(self):
        """The eye position(s): a 3-tuple or a ``(B, 3)`` tensor."""
        return self._eye

    @eye.setter
    def eye(self, value) -> None:
        self._eye = check_vec3(value, "eye")

    def _options(self, like: Optional[torch.Tensor]) -> dict:
        where = dict(dtype=like.dtype, device=like.device) if like is not None else {}
        return dict(viewing_angle=self.viewing_angle, perspective=self.perspective, viewing_scale=self.viewing_scale, **where)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        cameras.check_vertices(vertices)
        return self.camera(vertices).transform(vertices)


class LookAt(_EyeCamera):
    """Camera at ``eye`` looking at the origin (SoftRas's ``look_at``), then perspective
    (``viewing_angle``, degrees) or orthogonal (``viewing_scale``). ``forward((B, N, 3)) -> (B, N, 3)``."""

    def __init__(self, perspective: bool = True, viewing_angle: float = C.VIEWING_ANGLE, viewing_scale: float = 1.0, eye=None):
        super().__init__(perspective, viewing_angle, viewing_scale, eye)

    def camera(self, like: Optional[torch.Tensor] = None) -> Camera:
        """The :class:`Camera` of the current eye(s), in ``like``'s dtype and device."""
        return Camera.look_at(self._eye, **self._options(like))


class Look(_EyeCamera):
    """Camera at ``eye`` looking along ``camera_direction`` (SoftRas's ``look``), then perspective or
    orthogonal. ``forward((B, N, 3)) -> (B, N, 3)``."""

    def __init__(
        self,
        camera_direction: Vec3 = (0, 0, 1),
        perspective: bool = True,
        viewing_angle: float = C.VIEWING_ANGLE,
        viewing_scale: float = 1.0,
        eye=None,
    ):
        super().__init__(perspective, viewing_angle, viewing_scale, eye)
        self.camera_direction = check_vec3(camera_direction, "camera_direction")

    def camera(self, like: Optional[torch.Tensor] = None) -> Camera:
        """The :class:`Camera` of the current eye(s) and direction, in ``like``'s dtype and device."""
        return Camera.look(self._eye, self.camera_direction, **self._options(like))


class Transform(nn.Module):
    """World -> screen transform chosen by ``camera_mode`` ('projection' | 'look' | 'look_at').

    ``forward(mesh)`` returns a new Mesh with screen-space vertices (``forward(vertices)`` a tensor);
    ``camera(like)`` the :class:`Camera` it applies."""

    def __init__(
        self,
        camera_mode: str = "projection",
        P=None,
        dist_coeffs=None,
        orig_size: float = 512,
        perspective: bool = True,
        viewing_angle: float = C.VIEWING_ANGLE,
        viewing_scale: float = 1.0,
        eye=None,
        camera_direction: Vec3 = (0, 0, 1),
    ):
        super().__init__()
        check_choice(camera_mode, "camera_mode", CAMERA_MODES)
        self.camera_mode = camera_mode
        if camera_mode == "projection":
            self.transformer = Projection(P, dist_coeffs, orig_size)
        elif camera_mode == "look":
            self.transformer = Look(camera_direction, perspective, viewing_angle, viewing_scale, eye)
        else:
            self.transformer = LookAt(perspective, viewing_angle, viewing_scale, eye)

    def camera(self, like: Optional[torch.Tensor] = None) -> Camera:
        return self.transformer.camera(like)

    def forward(self, mesh: Union[Mesh, torch.Tensor]) -> Union[Mesh, torch.Tensor]:
        if isinstance(mesh, torch.Tensor):
            return self.transformer(mesh)
        return Mesh(self.transformer(mesh.vertices), mesh.faces, mesh.textures, texture_type=mesh.texture_type)

    def _require_eye(self) -> None:
        if self.camera_mode not in ("look", "look_at"):
            raise ValueError(f"camera_mode {self.camera_mode!r} has no eye; eyes exist for camera_mode 'look' and 'look_at'")

    def set_eyes_from_angles(self, distances, elevations, azimuths) -> None:
        """Eyes from (distance, elevation, azimuth) in degrees: scalars (one eye) or ``(B,)`` tensors."""
        self._require_eye()
        self.transformer.eye = cameras.get_points_from_angles(distances, elevations, azimuths)

    def set_eyes(self, eyes) -> None:
        """Eyes as ``(3,)`` or ``(B, 3)``."""
        self._require_eye()
        self.transformer.eye = eyes

    @property
    def eyes(self):
        """The current eye(s) (3-tuple or ``(B, 3)``)."""
        self._require_eye()
        return self.transformer.eye
