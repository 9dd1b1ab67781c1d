"""Per-face (or per-vertex) ambient + directional lighting, SoftRas semantics.

Light is a multiplier computed before rasterization: ``light = ambient + sum_k directional_k`` with
``ambient = I_a * c_a`` and ``directional = I_d * c_d * relu(n . l)``; the texture colours are
multiplied by it. Normals are world-space; defaults come from :mod:`taichi_softras.conventions`.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

from . import conventions as C

Color = Union[torch.Tensor, Sequence[float]]


def _batched_rgb(value: Color, like: torch.Tensor, name: str) -> torch.Tensor:
    """(3,) or (B, 3) colour/direction -> (B or 1, 1, 3) on ``like``'s device and dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(t.shape)}")
    return t[:, None, :]


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
