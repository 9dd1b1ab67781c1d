"""SoftRas 1.0's ``nn.Module`` surface: lighting, camera transforms, rasterizers and renderers.

Keywords, defaults (per class) and semantics follow SoftRas 1.0; deliberate differences are listed
in ``docs/softras_compat.md``. Each module keeps its settings in a frozen dataclass (``.config``);
SoftRas-style attribute access (``renderer.rasterizer.sigma_val = 1e-4``) reads and replaces it,
re-validating. Modules never modify the ``Mesh`` they are given: lighting and transforms return a new
one. Everything runs on the device of the input tensors.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import cameras
from . import conventions as C
from .geometry import face_vertices
from .lighting import ambient_lighting, directional_lighting
from .mesh import Mesh
from .ops.checks import check_choice, check_positive, image_hw
from .ops.rasterize import soft_rasterize

Vec3 = Union[torch.Tensor, np.ndarray, Sequence[float]]

CAMERA_MODES = ("projection", "look", "look_at")
LIGHT_MODES = C.TEXTURE_TYPES
RENDER_MODES = (None, "rgb", "silhouettes", "depth")


def _vec3(value: Vec3, name: str) -> Union[tuple, torch.Tensor]:
    """A (3,) or (B, 3) vector kept as a tuple (constants) or a tensor (per batch)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if isinstance(value, torch.Tensor):
        if value.shape[-1:] != (3,) or value.ndim > 2:
            raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(value.shape)}")
        return value
    value = tuple(float(v) for v in value)
    if len(value) != 3:
        raise ValueError(f"{name} must have 3 components, got {value!r}")
    return value


class _Configured(nn.Module):
    """A module whose settings live in a frozen dataclass ``self.config``; its fields read and write
    like plain attributes (SoftRas style), each write re-validated by the dataclass."""

    def __getattr__(self, name):
        config = self.__dict__.get("config")
        if config is not None and name in config.__dataclass_fields__:
            return getattr(config, name)
        return super().__getattr__(name)

    def __setattr__(self, name, value):
        config = self.__dict__.get("config")
        if config is not None and name in config.__dataclass_fields__:
            object.__setattr__(self, "config", dataclasses.replace(config, **{name: value}))
        else:
            super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))


# --- lighting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmbientConfig:
    light_intensity: float = C.LIGHT_INTENSITY_AMBIENT
    light_color: Vec3 = C.LIGHT_COLOR_AMBIENT

    def __post_init__(self):
        object.__setattr__(self, "light_color", _vec3(self.light_color, "light_color"))


@dataclass(frozen=True)
class DirectionalConfig:
    light_intensity: float = C.LIGHT_INTENSITY_DIRECTIONALS
    light_color: Vec3 = C.LIGHT_COLOR_DIRECTIONALS
    light_direction: Vec3 = C.LIGHT_DIRECTIONS

    def __post_init__(self):
        object.__setattr__(self, "light_color", _vec3(self.light_color, "light_color"))
        object.__setattr__(self, "light_direction", _vec3(self.light_direction, "light_direction"))


class AmbientLighting(_Configured):
    """``forward(light (B, K, 3)) -> light + intensity * color``."""

    def __init__(self, light_intensity: float = C.LIGHT_INTENSITY_AMBIENT, light_color: Vec3 = C.LIGHT_COLOR_AMBIENT):
        super().__init__()
        self.config = AmbientConfig(light_intensity, light_color)

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        return ambient_lighting(light, self.light_intensity, self.light_color)


class DirectionalLighting(_Configured):
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
        check_choice(mode, "light_mode", LIGHT_MODES)
        self._light_mode = mode

    def forward(self, mesh: Mesh) -> Mesh:
        if self.light_mode == "surface":
            normals = mesh.surface_normals  # (B, F, 3)
        else:
            normals = mesh.vertex_normals  # (B, N, 3)
        light = self.ambient(torch.zeros_like(normals))
        for directional in self.directionals:
            light = directional(light, normals)
        if mesh.texture_type == "surface" and self.light_mode == "surface":
            textures = mesh.textures * light[:, :, None, :]
        elif mesh.texture_type == "vertex" and self.light_mode == "vertex":
            textures = mesh.textures * light
        else:
            raise ValueError(f"light_mode {self.light_mode!r} does not match the mesh's texture_type {mesh.texture_type!r}")
        return Mesh(mesh.vertices, mesh.faces, textures, texture_type=mesh.texture_type)


# --- camera transforms ----------------------------------------------------------------------


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

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        return cameras.projection(vertices, self.P, self.dist_coeffs, self.orig_size)


class _EyeCamera(nn.Module):
    """Shared part of LookAt/Look: the eye(s) and the perspective/orthogonal projection."""

    def __init__(self, perspective: bool, viewing_angle: float, viewing_scale: float, eye):
        super().__init__()
        self.perspective = perspective
        self.viewing_angle = check_positive(viewing_angle, "viewing_angle")
        self.viewing_scale = viewing_scale
        self._eye = _vec3(eye if eye is not None else default_eye(self.viewing_angle), "eye")

    @property
    def eye(self):
        """The eye position(s): a 3-tuple or a ``(B, 3)`` tensor."""
        return self._eye

    @eye.setter
    def eye(self, value) -> None:
        self._eye = _vec3(value, "eye")

    def _project(self, vertices: torch.Tensor) -> torch.Tensor:
        if self.perspective:
            return cameras.perspective(vertices, angle=self.viewing_angle)
        return cameras.orthogonal(vertices, scale=self.viewing_scale)


class LookAt(_EyeCamera):
    """Camera at ``eye`` looking at the origin (SoftRas's ``look_at``), then perspective
    (``viewing_angle``, degrees) or orthogonal (``viewing_scale``). ``forward((B, N, 3)) -> (B, N, 3)``."""

    def __init__(self, perspective: bool = True, viewing_angle: float = C.VIEWING_ANGLE, viewing_scale: float = 1.0, eye=None):
        super().__init__(perspective, viewing_angle, viewing_scale, eye)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        return self._project(cameras.look_at(vertices, self._eye))


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
        self.camera_direction = _vec3(camera_direction, "camera_direction")

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        return self._project(cameras.look(vertices, self._eye, self.camera_direction))


class Transform(nn.Module):
    """World -> screen transform chosen by ``camera_mode`` ('projection' | 'look' | 'look_at').

    ``forward(mesh)`` returns a new Mesh with screen-space vertices (``forward(vertices)`` a tensor)."""

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


# --- rasterizers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RasterizerConfig:
    """Settings of the hard :class:`Rasterizer` (SoftRas's keywords and defaults)."""

    image_size: Union[int, tuple] = C.IMAGE_SIZE
    background_color: Vec3 = C.BACKGROUND_COLOR
    near: float = C.NEAR
    far: float = C.FAR
    anti_aliasing: bool = False
    fill_back: bool = False
    eps: float = 1e-6

    def __post_init__(self):
        image_hw(self.image_size)
        object.__setattr__(self, "background_color", _vec3(self.background_color, "background_color"))
        if not 0 < float(self.near) < float(self.far):
            raise ValueError(f"near and far must satisfy 0 < near < far, got near={self.near}, far={self.far}")


@dataclass(frozen=True)
class SoftRasterizerConfig(RasterizerConfig):
    """Settings of :class:`SoftRasterizer` (SoftRas's keywords and defaults)."""

    eps: float = C.EPS
    sigma_val: float = C.SIGMA_VAL
    dist_func: str = "euclidean"
    dist_eps: float = C.DIST_EPS
    gamma_val: float = C.GAMMA_VAL
    aggr_func_rgb: str = "softmax"
    aggr_func_alpha: str = "prod"
    texture_type: str = "surface"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.dist_func, "dist_func", C.DIST_FUNCS)
        check_choice(self.aggr_func_rgb, "aggr_func_rgb", C.AGGR_FUNCS_RGB)
        check_choice(self.aggr_func_alpha, "aggr_func_alpha", C.AGGR_FUNCS_ALPHA)
        check_choice(self.texture_type, "texture_type", C.TEXTURE_TYPES)
        check_positive(self.sigma_val, "sigma_val")
        check_positive(self.gamma_val, "gamma_val")


def _select(images: torch.Tensor, depth: Optional[torch.Tensor], mode: Optional[str]) -> torch.Tensor:
    """RGBA ``(B, 4, H, W)`` -> what ``mode`` asks for."""
    if mode is None:
        return images
    if mode == "rgb":
        return images[:, :3]
    if mode == "silhouettes":
        return images[:, 3]
    return depth[:, 0]


class _RasterizerBase(_Configured):
    def _rasterize(self, mesh: Mesh, mode: Optional[str], outputs=None, vertex_normals=None, **modes):
        check_choice(mode, "mode", RENDER_MODES)
        c = self.config
        h, w = image_hw(c.image_size)
        if outputs is not None:
            if c.anti_aliasing:
                raise ValueError("outputs= needs anti_aliasing=False (face indices cannot be averaged)")
            return soft_rasterize(
                mesh.face_vertices, mesh.face_textures, (h, w), c.background_color, c.near, c.far, c.fill_back,
                c.eps, texture_type=mesh.texture_type, outputs=outputs, vertex_normals=vertex_normals, **modes,
            )
        scale = 2 if c.anti_aliasing else 1
        out = soft_rasterize(
            mesh.face_vertices,
            mesh.face_textures,
            (h * scale, w * scale),
            c.background_color,
            c.near,
            c.far,
            c.fill_back,
            c.eps,
            texture_type=mesh.texture_type,
            return_depth=mode == "depth",
            **modes,
        )
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
        background_color: Vec3 = C.BACKGROUND_COLOR,
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
        self.config = SoftRasterizerConfig(
            image_size, background_color, near, far, anti_aliasing, fill_back, eps,
            sigma_val, dist_func, dist_eps, gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type,
        )

    def forward(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None, vertex_normals=None):
        """``outputs``: names from :data:`taichi_softras.ops.rasterize.OUTPUTS`; then a
        :class:`~taichi_softras.ops.rasterize.RasterOutputs` is returned instead of ``mode``'s image."""
        c = self.config
        if mesh.texture_type != c.texture_type:
            raise ValueError(f"the mesh's texture_type {mesh.texture_type!r} differs from the rasterizer's texture_type {c.texture_type!r}")
        return self._rasterize(
            mesh, mode, outputs, vertex_normals, sigma_val=c.sigma_val, dist_func=c.dist_func, dist_eps=c.dist_eps, gamma_val=c.gamma_val,
            aggr_func_rgb=c.aggr_func_rgb, aggr_func_alpha=c.aggr_func_alpha,
        )


class Rasterizer(_RasterizerBase):
    """Hard rasterizer (nearest face, binary coverage) with SoftRas's keywords; same outputs as
    :class:`SoftRasterizer`. Gradients flow to textures only (coverage is a step function)."""

    def __init__(
        self,
        image_size=C.IMAGE_SIZE,
        background_color: Vec3 = C.BACKGROUND_COLOR,
        near: float = C.NEAR,
        far: float = C.FAR,
        anti_aliasing: bool = False,
        fill_back: bool = False,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.config = RasterizerConfig(image_size, background_color, near, far, anti_aliasing, fill_back, eps)

    def forward(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None, vertex_normals=None):
        return self._rasterize(mesh, mode, outputs, vertex_normals, dist_func="hard", aggr_func_rgb="hard", aggr_func_alpha="hard")


# --- renderers ------------------------------------------------------------------------------


class _RendererBase(nn.Module):
    lighting: Lighting
    transform: Transform
    rasterizer: _RasterizerBase

    def _build_scene(self, light_mode, light_args, camera_mode, camera_args) -> None:
        self.lighting = Lighting(light_mode, *light_args)
        self.transform = Transform(camera_mode, *camera_args)

    def set_texture_mode(self, mode: str) -> None:
        """Switch lighting (and a soft rasterizer) between 'surface' and 'vertex' textures."""
        check_choice(mode, "mode", C.TEXTURE_TYPES)
        self.lighting.light_mode = mode
        if isinstance(self.rasterizer, SoftRasterizer):
            self.rasterizer.texture_type = mode

    def render_mesh(self, mesh: Mesh, mode: Optional[str] = None, *, outputs=None):
        """Light, transform and rasterize a world-space Mesh (left unchanged). See
        :class:`SoftRasterizer` for the outputs of each ``mode`` (None | 'rgb' | 'silhouettes' | 'depth').
        ``outputs=[...]`` (e.g. ``["depth", "face_index", "normals"]``) returns a ``RasterOutputs``;
        'normals' are the mesh's world-space vertex normals, interpolated."""
        check_choice(mode, "mode", RENDER_MODES)
        self.set_texture_mode(mesh.texture_type)
        screen = self.transform(self.lighting(mesh))
        if outputs is None:
            return self.rasterizer(screen, mode)
        vn = face_vertices(mesh.vertex_normals, mesh.faces) if "normals" in outputs else None
        return self.rasterizer(screen, mode, outputs=outputs, vertex_normals=vn)

    def forward(self, vertices, faces=None, textures=None, mode: Optional[str] = None, texture_type: str = "surface") -> torch.Tensor:
        """Render ``vertices (B, N, 3)``, ``faces (B, F, 3)`` and optional textures (white when
        None); a Mesh may be passed instead of ``vertices`` (SoftRas's ``Renderer(mesh, mode)``)."""
        if isinstance(vertices, Mesh):
            return self.render_mesh(vertices, faces if mode is None else mode)
        if faces is None:
            raise ValueError("faces is required when vertices is a tensor")
        return self.render_mesh(Mesh(vertices, faces, textures=textures, texture_type=texture_type), mode)


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
