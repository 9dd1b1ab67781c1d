"""SoftRas 1.0's renderers: lighting -> camera transform -> rasterizer, as ``nn.Module`` s.

The parts follow SoftRas's layout: :mod:`~taichi_softras.lighting` (lighting modules),
:mod:`~taichi_softras.transform` (camera modules, built on :class:`~taichi_softras.camera.Camera`),
:mod:`~taichi_softras.rasterizer` (rasterizer modules) and this module. Keywords, defaults (per class)
and semantics follow SoftRas 1.0; deliberate differences are listed in ``docs/softras_compat.md``.
Modules never modify the ``Mesh`` they are given: lighting and transforms return a new one.
Everything runs on the device of the input tensors.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from . import conventions as C
from .camera import Camera, Vec3
from .geometry import face_vertices
from .lighting import AmbientLighting, DirectionalLighting, Lighting  # noqa: F401  (SoftRas's names, re-exported)
from .mesh import Mesh
from .ops.checks import check_choice
from .rasterizer import RENDER_MODES, Rasterizer, RasterizerConfig, SoftRasterizer, _RasterizerBase  # noqa: F401
from .transform import CAMERA_MODES, Look, LookAt, Projection, Transform, default_eye  # noqa: F401


# --- renderers ------------------------------------------------------------------------------


class _RendererBase(nn.Module):
    lighting: Lighting
    transform: Transform
    rasterizer: _RasterizerBase

    def _build_scene(self, light_mode, light_args, camera_mode, camera_args) -> None:
        self.lighting = Lighting(light_mode, *light_args)
        self.transform = Transform(camera_mode, *camera_args)

    def camera(self, like: Optional[torch.Tensor] = None) -> Camera:
        """The :class:`Camera` of ``camera_mode``'s current settings (image size: the rasterizer's)."""
        return self.transform.camera(like).with_image_size(self.rasterizer.config.image_size)

    def set_texture_mode(self, mode: str) -> None:
        """Switch lighting (and a soft rasterizer) between 'surface' and 'vertex' textures."""
        check_choice(mode, "mode", C.TEXTURE_TYPES)
        self.lighting.light_mode = mode
        if isinstance(self.rasterizer, SoftRasterizer):
            self.rasterizer.texture_type = mode

    def render_mesh(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None, camera: Optional[Camera] = None):
        """Light, transform and rasterize a world-space Mesh (left unchanged). See
        :class:`SoftRasterizer` for the outputs of each ``mode`` (None | 'rgb' | 'silhouettes' | 'depth').
        ``outputs=[...]`` (e.g. ``["depth", "face_index", "normals"]``) returns a ``RasterOutputs``;
        'normals' are the mesh's world-space vertex normals, interpolated. ``camera``: a
        :class:`Camera` used instead of ``camera_mode``'s; the image then has the camera's
        ``image_size``."""
        check_choice(mode, "mode", RENDER_MODES)
        if camera is not None and not isinstance(camera, Camera):
            raise TypeError(f"camera must be a taichi_softras.Camera, got {type(camera).__name__}")
        self.set_texture_mode(mesh.texture_type)
        lit = self.lighting(mesh)
        if camera is None:
            screen, size = self.transform(lit), None
        else:
            screen = Mesh(camera.transform(lit.vertices), lit.faces, lit.textures, texture_type=lit.texture_type)
            size = camera.image_size
        if outputs is None:
            return self.rasterizer(screen, mode, image_size=size)
        vn = face_vertices(mesh.vertex_normals, mesh.faces) if "normals" in outputs else None
        return self.rasterizer(screen, mode, outputs=outputs, vertex_normals=vn, image_size=size)

    def forward(self, vertices, faces=None, textures=None, mode: Optional[str] = None, texture_type: str = "surface",
                *, camera: Optional[Camera] = None) -> torch.Tensor:
        """Render ``vertices (B, N, 3)``, ``faces (B, F, 3)`` and optional textures (white when
        None); a Mesh may be passed instead of ``vertices`` (SoftRas's ``Renderer(mesh, mode)``).
        ``camera``: as :meth:`render_mesh`."""
        if isinstance(vertices, Mesh):
            return self.render_mesh(vertices, faces if mode is None else mode, camera=camera)
        if faces is None:
            raise ValueError("faces is required when vertices is a tensor")
        return self.render_mesh(Mesh(vertices, faces, textures=textures, texture_type=texture_type), mode, camera=camera)


def _light_args(intensity_ambient, color_ambient, intensity_directionals, color_directionals, directions):
    return (intensity_ambient, color_ambient, intensity_directionals, color_directionals, directions)


class SoftRenderer(_RendererBase):
    """SoftRas's ``SoftRenderer``: lighting -> camera (``camera_mode``) -> :class:`SoftRasterizer`,
    with all of SoftRas's keywords and defaults. Outputs: see :class:`SoftRasterizer`."""

    def __init__(
        self,
        image_size=C.IMAGE_SIZE,
        background_color: Vec3 = C.BACKGROUND_COLOR,
        near: float = C.NEAR,
        far: float = C.FAR,
        anti_aliasing: bool = False,
        fill_back: bool = True,
        eps: float = C.EPS,
        sigma_val: float = C.SIGMA_VAL,
        dist_func: str = "euclidean",
        dist_eps: float = C.DIST_EPS,
        gamma_val: float = C.GAMMA_VAL,
        aggr_func_rgb: str = "softmax",
        aggr_func_alpha: str = "prod",
        texture_type: str = "surface",
        camera_mode: str = "projection",
        P=None,
        dist_coeffs=None,
        orig_size: float = 512,
        perspective: bool = True,
        viewing_angle: float = C.VIEWING_ANGLE,
        viewing_scale: float = 1.0,
        eye=None,
        camera_direction: Vec3 = (0, 0, 1),
        light_mode: str = "surface",
        light_intensity_ambient: float = C.LIGHT_INTENSITY_AMBIENT,
        light_color_ambient: Vec3 = C.LIGHT_COLOR_AMBIENT,
        light_intensity_directionals: float = C.LIGHT_INTENSITY_DIRECTIONALS,
        light_color_directionals: Vec3 = C.LIGHT_COLOR_DIRECTIONALS,
        light_directions: Vec3 = C.LIGHT_DIRECTIONS,
    ):
        super().__init__()
        self._build_scene(
            light_mode,
            _light_args(light_intensity_ambient, light_color_ambient, light_intensity_directionals, light_color_directionals, light_directions),
            camera_mode,
            (P, dist_coeffs, orig_size, perspective, viewing_angle, viewing_scale, eye, camera_direction),
        )
        self.rasterizer = SoftRasterizer(
            image_size, background_color, near, far, anti_aliasing, fill_back, eps,
            sigma_val, dist_func, dist_eps, gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type,
        )

    def set_sigma(self, sigma: float) -> None:
        """Set the coverage sharpness sigma (> 0)."""
        self.rasterizer.sigma_val = sigma

    def set_gamma(self, gamma: float) -> None:
        """Set the soft z-buffer temperature gamma (> 0)."""
        self.rasterizer.gamma_val = gamma


class Renderer(_RendererBase):
    """SoftRas's hard ``Renderer`` (keywords and defaults: ``anti_aliasing=True``, ``eps=1e-6``):
    lighting -> camera -> :class:`Rasterizer`. Outputs: see :class:`SoftRasterizer`."""

    def __init__(
        self,
        image_size=C.IMAGE_SIZE,
        background_color: Vec3 = C.BACKGROUND_COLOR,
        near: float = C.NEAR,
        far: float = C.FAR,
        anti_aliasing: bool = True,
        fill_back: bool = True,
        eps: float = 1e-6,
        camera_mode: str = "projection",
        P=None,
        dist_coeffs=None,
        orig_size: float = 512,
        perspective: bool = True,
        viewing_angle: float = C.VIEWING_ANGLE,
        viewing_scale: float = 1.0,
        eye=None,
        camera_direction: Vec3 = (0, 0, 1),
        light_mode: str = "surface",
        light_intensity_ambient: float = C.LIGHT_INTENSITY_AMBIENT,
        light_color_ambient: Vec3 = C.LIGHT_COLOR_AMBIENT,
        light_intensity_directionals: float = C.LIGHT_INTENSITY_DIRECTIONALS,
        light_color_directionals: Vec3 = C.LIGHT_COLOR_DIRECTIONALS,
        light_directions: Vec3 = C.LIGHT_DIRECTIONS,
    ):
        super().__init__()
        self._build_scene(
            light_mode,
            _light_args(light_intensity_ambient, light_color_ambient, light_intensity_directionals, light_color_directionals, light_directions),
            camera_mode,
            (P, dist_coeffs, orig_size, perspective, viewing_angle, viewing_scale, eye, camera_direction),
        )
        self.rasterizer = Rasterizer(image_size, background_color, near, far, anti_aliasing, fill_back, eps)
