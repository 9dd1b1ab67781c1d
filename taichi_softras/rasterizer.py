"""SoftRas's rasterizer modules: :class:`SoftRasterizer` and the hard :class:`Rasterizer`.

Each keeps its settings in a frozen :class:`RasterizerConfig` (``.config``): the op's
:class:`~taichi_softras.spec.RasterSettings` plus ``anti_aliasing``, validated once when built or
changed (``rasterizer.sigma_val = 1e-4`` replaces it), and handed whole to the op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from . import conventions as C
from .configured import Configured
from .mesh import Mesh
from .ops.checks import check_choice, image_hw
from .ops.rasterize import rasterize
from .spec import RasterSettings

RENDER_MODES = (None, "rgb", "silhouettes", "depth")


@dataclass(frozen=True)
class RasterizerConfig(RasterSettings):
    """A rasterizer module's settings: :class:`RasterSettings` (meshes' texture types: 'surface' or
    'vertex') and ``anti_aliasing`` (render at 2x and average-pool)."""

    anti_aliasing: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.texture_type, "texture_type", C.TEXTURE_TYPES)
        object.__setattr__(self, "anti_aliasing", bool(self.anti_aliasing))
        object.__setattr__(self, "_ops", {})

    def op_settings(self, texture_type: str, image_size=None) -> RasterSettings:
        """The op's settings for a mesh with ``texture_type`` at ``image_size`` (default: the
        config's), doubled with anti-aliasing; built once per (texture type, size)."""
        key = (texture_type, image_size)
        if key not in self._ops:
            h, w = (self.height, self.width) if image_size is None else image_hw(image_size)
            scale = 2 if self.anti_aliasing else 1
            fields = {f: getattr(self, f) for f in RasterSettings.__dataclass_fields__}
            self._ops[key] = RasterSettings(**dict(fields, image_size=(h * scale, w * scale), texture_type=texture_type))
        return self._ops[key]


def _select(images: torch.Tensor, depth: Optional[torch.Tensor], mode: Optional[str]) -> torch.Tensor:
    """RGBA ``(B, 4, H, W)`` -> what ``mode`` asks for."""
    if mode is None:
        return images
    if mode == "rgb":
        return images[:, :3]
    if mode == "silhouettes":
        return images[:, 3]
    return depth[:, 0]


class _RasterizerBase(Configured):
    config: RasterizerConfig

    def _rasterize(self, mesh: Mesh, mode: Optional[str], outputs=None, vertex_normals=None, image_size=None):
        check_choice(mode, "mode", RENDER_MODES)
        c = self.config
        if outputs is not None:
            if c.anti_aliasing:
                raise ValueError("outputs= needs anti_aliasing=False (face indices cannot be averaged)")
            return rasterize(mesh.face_vertices, mesh.face_textures, c.op_settings(mesh.texture_type, image_size),
                             outputs=outputs, vertex_normals=vertex_normals)
        s = c.op_settings(mesh.texture_type, image_size)
        out = rasterize(mesh.face_vertices, mesh.face_textures, s, return_depth=mode == "depth")
        images, depth = out if mode == "depth" else (out, None)
        if c.anti_aliasing:
            images = F.avg_pool2d(images, kernel_size=2, stride=2)
            depth = F.avg_pool2d(depth, kernel_size=2, stride=2) if depth is not None else None
        return _select(images, depth, mode)


class SoftRasterizer(_RasterizerBase):
    """SoftRas's soft rasterizer as a module: ``forward(mesh, mode=None)`` with screen-space
    ``mesh`` -> RGBA ``(B, 4, H, W)``; ``mode`` 'rgb' ``(B, 3, H, W)``, 'silhouettes' ``(B, H, W)``,
    'depth' ``(B, H, W)`` (soft depth). ``anti_aliasing`` renders at 2x and average-pools."""

    def __init__(
        self,
        image_size=C.IMAGE_SIZE,
        background_color=C.BACKGROUND_COLOR,
        near: float = C.NEAR,
        far: float = C.FAR,
        anti_aliasing: bool = False,
        fill_back: bool = False,
        eps: float = C.EPS,
        sigma_val: float = C.SIGMA_VAL,
        dist_func: str = "euclidean",
        dist_eps: float = C.DIST_EPS,
        gamma_val: float = C.GAMMA_VAL,
        aggr_func_rgb: str = "softmax",
        aggr_func_alpha: str = "prod",
        texture_type: str = "surface",
    ):
        super().__init__()
        self.config = RasterizerConfig(
            image_size, background_color, near, far, fill_back, eps, sigma_val, dist_func, dist_eps, gamma_val,
            aggr_func_rgb, aggr_func_alpha, texture_type, anti_aliasing,
        )

    def forward(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None, vertex_normals=None, image_size=None):
        """``outputs``: names from :data:`taichi_softras.spec.OUTPUTS`; then a
        :class:`~taichi_softras.spec.RasterOutputs` is returned instead of ``mode``'s image.
        ``image_size``: render at this size instead of the config's (a camera's own size)."""
        if mesh.texture_type != self.config.texture_type:
            raise ValueError(f"the mesh's texture_type {mesh.texture_type!r} differs from the rasterizer's texture_type {self.config.texture_type!r}")
        return self._rasterize(mesh, mode, outputs, vertex_normals, image_size)


class Rasterizer(_RasterizerBase):
    """Hard rasterizer (nearest face, binary coverage) with SoftRas's keywords; same outputs as
    :class:`SoftRasterizer`. Gradients flow to textures only (coverage is a step function). Its
    config has the hard modes (``dist_func``, ``aggr_func_*`` = 'hard'); textures follow the mesh."""

    def __init__(
        self,
        image_size=C.IMAGE_SIZE,
        background_color=C.BACKGROUND_COLOR,
        near: float = C.NEAR,
        far: float = C.FAR,
        anti_aliasing: bool = False,
        fill_back: bool = False,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.config = RasterizerConfig(
            image_size, background_color, near, far, fill_back, eps, dist_func="hard", aggr_func_rgb="hard",
            aggr_func_alpha="hard", anti_aliasing=anti_aliasing,
        )

    def forward(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None, vertex_normals=None, image_size=None):
        return self._rasterize(mesh, mode, outputs, vertex_normals, image_size)
