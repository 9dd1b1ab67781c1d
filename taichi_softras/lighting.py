"""Per-face (or per-vertex) ambient + directional lighting, SoftRas semantics: the functions and the
modules (:class:`AmbientLighting`, :class:`DirectionalLighting`, :class:`Lighting`).

Light is a multiplier computed before rasterization: ``light = ambient + sum_k directional_k`` with
``ambient = I_a * c_a`` and ``directional = I_d * c_d * relu(n . l)``; the texture colours are
multiplied by it. Normals are world-space; defaults come from :mod:`taichi_softras.conventions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import conventions as C
from .configured import Configured
from .mesh import Mesh
from .ops.checks import batched, check_choice, check_vec3

Color = Union[torch.Tensor, Sequence[float]]
Vec3 = Color


def _batched_rgb(value: Color, like: torch.Tensor, name: str) -> torch.Tensor:
    """(3,) or (B, 3) colour/direction -> (B or 1, 1, 3) on ``like``'s device and dtype."""
    return batched(value, name, like, finite=False)[:, None, :]


def ambient_lighting(
    light: torch.Tensor, light_intensity: float = C.LIGHT_INTENSITY_AMBIENT, light_color: Color = C.LIGHT_COLOR_AMBIENT
) -> torch.Tensor:
    """Add ambient light to ``light (B, K, 3)`` (K faces or vertices); returns a new tensor."""
    return light + light_intensity * _batched_rgb(light_color, light, "light_color")


def directional_lighting(
    light: torch.Tensor,
    normals: torch.Tensor,
    light_intensity: float = C.LIGHT_INTENSITY_DIRECTIONALS,
    light_color: Color = C.LIGHT_COLOR_DIRECTIONALS,
    light_direction: Color = C.LIGHT_DIRECTIONS,
) -> torch.Tensor:
    """Add ``I * color * relu(n . direction)`` to ``light (B, K, 3)`` for unit ``normals (B, K, 3)``.

    The direction is used as given (SoftRas does not normalize it either)."""
    if normals.shape != light.shape:
        raise ValueError(f"normals must have the shape of light {tuple(light.shape)}, got {tuple(normals.shape)}")
    direction = _batched_rgb(light_direction, light, "light_direction")
    cosine = F.relu((normals * direction).sum(dim=-1, keepdim=True))  # (B, K, 1)
    return light + light_intensity * _batched_rgb(light_color, light, "light_color") * cosine


# --- modules (SoftRas's soft_renderer/lighting.py) ----------------------------------------------


@dataclass(frozen=True)
class AmbientConfig:
    light_intensity: float = C.LIGHT_INTENSITY_AMBIENT
    light_color: Vec3 = C.LIGHT_COLOR_AMBIENT

    def __post_init__(self):
        object.__setattr__(self, "light_color", check_vec3(self.light_color, "light_color"))


@dataclass(frozen=True)
class DirectionalConfig:
    light_intensity: float = C.LIGHT_INTENSITY_DIRECTIONALS
    light_color: Vec3 = C.LIGHT_COLOR_DIRECTIONALS
    light_direction: Vec3 = C.LIGHT_DIRECTIONS

    def __post_init__(self):
        object.__setattr__(self, "light_color", check_vec3(self.light_color, "light_color"))
        object.__setattr__(self, "light_direction", check_vec3(self.light_direction, "light_direction"))


class AmbientLighting(Configured):
    """``forward(light (B, K, 3)) -> light + intensity * color``."""

    def __init__(self, light_intensity: float = C.LIGHT_INTENSITY_AMBIENT, light_color: Vec3 = C.LIGHT_COLOR_AMBIENT):
        super().__init__()
        self.config = AmbientConfig(light_intensity, light_color)

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        return ambient_lighting(light, self.light_intensity, self.light_color)


class DirectionalLighting(Configured):
    """``forward(light (B, K, 3), normals (B, K, 3)) -> light + intensity * color * relu(n . direction)``."""

    def __init__(
        self,
        light_intensity: float = C.LIGHT_INTENSITY_DIRECTIONALS,
        light_color: Vec3 = C.LIGHT_COLOR_DIRECTIONALS,
        light_direction: Vec3 = C.LIGHT_DIRECTIONS,
    ):
        super().__init__()
        self.config = DirectionalConfig(light_intensity, light_color, light_direction)

    def forward(self, light: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        return directional_lighting(light, normals, self.light_intensity, self.light_color, self.light_direction)


class Lighting(nn.Module):
    """Ambient + one directional light, per face (``light_mode='surface'``, face normals) or per
    vertex (``'vertex'``, vertex normals). ``forward(mesh)`` returns a new Mesh with lit textures."""

    def __init__(
        self,
        light_mode: str = "surface",
        intensity_ambient: float = C.LIGHT_INTENSITY_AMBIENT,
        color_ambient: Vec3 = C.LIGHT_COLOR_AMBIENT,
        intensity_directionals: float = C.LIGHT_INTENSITY_DIRECTIONALS,
        color_directionals: Vec3 = C.LIGHT_COLOR_DIRECTIONALS,
        directions: Vec3 = C.LIGHT_DIRECTIONS,
    ):
        super().__init__()
        self.light_mode = light_mode
        self.ambient = AmbientLighting(intensity_ambient, color_ambient)
        self.directionals = nn.ModuleList([DirectionalLighting(intensity_directionals, color_directionals, directions)])

    @property
    def light_mode(self) -> str:
        return self._light_mode

    @light_mode.setter
    def light_mode(self, mode: str) -> None:
        check_choice(mode, "light_mode", C.TEXTURE_TYPES)
        self._light_mode = mode

    def forward(self, mesh: Mesh) -> Mesh:
        if self.light_mode == "surface":
            normals = mesh.surface_normals  # (B, F, 3)
        else:
            normals = mesh.vertex_normals  # (B, N, 3)
        light = self.ambient(torch.zeros_like(normals))
        for directional in self.directionals:
            light = directional(light, normals)
        if mesh.texture_type != self.light_mode:
            raise ValueError(f"light_mode {self.light_mode!r} does not match the mesh's texture_type {mesh.texture_type!r}")
        textures = mesh.textures * (light[:, :, None, :] if self.light_mode == "surface" else light)
        return Mesh(mesh.vertices, mesh.faces, textures, texture_type=mesh.texture_type)
