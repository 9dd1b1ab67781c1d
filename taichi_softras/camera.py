"""One camera value for every consumer: :class:`Camera`.

A camera is batched (one per batch element, or one for all), immutable and holds torch tensors. It
maps world points to the rasterizer's screen space (x, y in NDC, y up; z = camera depth: see
:mod:`taichi_softras.conventions`), to pixels, and gives the ray through every pixel. The renderer
(``render_mesh(mesh, camera=cam)``), ``probe_view``, ``pixel_rays``, ``visual_hull`` and
``FieldProber`` all take it; SoftRas's camera modes (``Transform``) are built on it.

Models: SoftRas's ``look_at`` / ``look`` (perspective or orthographic), SoftRas's 3x4 ``P`` matrix
(``from_projection``) and OpenCV's pinhole ``K [R | t]`` (``from_opencv``). Internally a pinhole
camera is a world -> camera rotation (rows x, y, z of SoftRas's frame: x right, y up, z forward), the
eye, and per axis a divisor and an offset: x_ndc = x / z / tan_x + c_x (orthographic:
x * scale_x + c_x). Adding a camera model: docs/design.md, "How to add ...".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from . import cameras
from . import conventions as C
from .ops.checks import batched as _batched
from .ops.checks import check_choice, check_number, check_positive, check_tensor, image_hw

Vec3 = Union[torch.Tensor, Sequence[float]]
PROJECTIONS = ("perspective", "orthographic", "matrix")


def _float_dtype(*values, dtype=None) -> torch.dtype:
    if dtype is not None:
        return dtype
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.dtype
    return torch.float32


def _device(*values, device=None):
    if device is not None:
        return torch.device(device)
    return next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))


def _batch_of(*tensors: torch.Tensor) -> int:
    sizes = {t.shape[0] for t in tensors if t is not None} - {1}
    if len(sizes) > 1:
        raise ValueError(f"the camera's tensors have different batch sizes {sorted(sizes)}")
    return sizes.pop() if sizes else 1


@dataclass(frozen=True, eq=False)
class Camera:
    """A batch of cameras (build one with :meth:`look_at`, :meth:`look`, :meth:`from_projection`
    or :meth:`from_opencv`). Fields (B = 1 serves any batch):

    * ``rotation (B, 3, 3)``: world -> camera rows (x right, y up, z forward); ``eye (B, 3)``;
    * ``intrinsics (B, 4)``: perspective (tan_x, tan_y, c_x, c_y), x_ndc = x / z / tan_x + c_x;
      orthographic (scale_x, scale_y, c_x, c_y), x_ndc = x * scale_x + c_x;
    * ``image_size (H, W)``; ``projection``: 'perspective' | 'orthographic' | 'matrix';
    * for 'matrix' (SoftRas's ``P``): ``P (B, 3, 4)``, ``dist_coeffs (B, 5)`` or None, ``orig_size``.
    """

    rotation: Optional[torch.Tensor]
    eye: Optional[torch.Tensor]
    intrinsics: Optional[torch.Tensor]
    image_size: tuple
    projection: str = "perspective"
    P: Optional[torch.Tensor] = None
    dist_coeffs: Optional[torch.Tensor] = None
    orig_size: float = 512.0

    def __post_init__(self):
        object.__setattr__(self, "image_size", image_hw(self.image_size))
        check_choice(self.projection, "projection", PROJECTIONS)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def look_at(cls, eye: Vec3, at: Vec3 = (0, 0, 0), up: Vec3 = (0, 1, 0), viewing_angle: float = C.VIEWING_ANGLE,
                image_size=C.IMAGE_SIZE, *, perspective: bool = True, viewing_scale: float = 1.0,
                dtype: Optional[torch.dtype] = None, device=None) -> "Camera":
        """SoftRas's ``look_at``: eye(s) ``(3,)``/``(B, 3)`` looking at ``at``, ``up`` the image's up;
        ``viewing_angle`` (degrees) is the half-angle across the shorter image side (perspective),
        ``viewing_scale`` the NDC per world unit (``perspective=False``). dtype/device: of ``eye``
        when it is a tensor, else float32 on the CPU unless given."""
        like = torch.empty(0, dtype=_float_dtype(eye, at, up, dtype=dtype), device=_device(eye, at, up, device=device))
        eye_t, at_t, up_t = (_batched(v, n, like, (3,)) for v, n in ((eye, "eye"), (at, "at"), (up, "up")))
        b = _batch_of(eye_t, at_t, up_t)
        eye_t, at_t, up_t = (t.expand(b, 3) for t in (eye_t, at_t, up_t))
        rotation = cameras.camera_rotation(at_t - eye_t, up_t, *cameras.EYE_AT_TARGET)
        return cls._pinhole(rotation, eye_t, viewing_angle, image_size, perspective, viewing_scale)

    @classmethod
    def look(cls, eye: Vec3, direction: Vec3 = (0, 0, 1), up: Vec3 = (0, 1, 0), viewing_angle: float = C.VIEWING_ANGLE,
             image_size=C.IMAGE_SIZE, *, perspective: bool = True, viewing_scale: float = 1.0,
             dtype: Optional[torch.dtype] = None, device=None) -> "Camera":
        """SoftRas's ``look``: eye(s) looking along ``direction``; otherwise as :meth:`look_at`."""
        like = torch.empty(0, dtype=_float_dtype(eye, direction, up, dtype=dtype), device=_device(eye, direction, up, device=device))
        eye_t, dir_t, up_t = (_batched(v, n, like, (3,)) for v, n in ((eye, "eye"), (direction, "direction"), (up, "up")))
        b = _batch_of(eye_t, dir_t, up_t)
        eye_t, dir_t, up_t = (t.expand(b, 3) for t in (eye_t, dir_t, up_t))
        rotation = cameras.camera_rotation(dir_t, up_t)
        return cls._pinhole(rotation, eye_t, viewing_angle, image_size, perspective, viewing_scale)

    @classmethod
    def _pinhole(cls, rotation, eye, viewing_angle, image_size, perspective: bool, viewing_scale) -> "Camera":
        if perspective:
            a = cameras.tan_viewing_angle(viewing_angle)
            projection = "perspective"
        else:
            a = check_number(viewing_scale, "viewing_scale")
            projection = "orthographic"
        intr = torch.tensor([[a, a, 0.0, 0.0]], dtype=eye.dtype, device=eye.device)
        return cls(rotation, eye, intr, image_size, projection)

    @classmethod
    def from_projection(cls, P, image_size=512, dist_coeffs=None, orig_size: Optional[float] = None) -> "Camera":
        """SoftRas's ``projection`` mode: a 3x4 matrix ``P (3, 4)``/``(B, 3, 4)`` to the pixels of an
        ``orig_size`` image (default: ``image_size``, which must then be square) and OpenCV distortion
        ``dist_coeffs (5,)``/``(B, 5)``; x_ndc = 2 (x - orig_size / 2) / orig_size, likewise y."""
        P = torch.as_tensor(P)
        if not P.is_floating_point():
            P = P.float()
        P = _batched(P, "P", P, (3, 4))
        if dist_coeffs is not None:
            dist_coeffs = _batched(dist_coeffs, "dist_coeffs", P, (5,))
        h, w = image_hw(image_size)
        if orig_size is None:
            if h != w:
                raise ValueError(f"from_projection needs orig_size for a non-square image_size {(h, w)}")
            orig_size = h
        return cls(None, None, None, (h, w), "matrix", P, dist_coeffs, check_positive(orig_size, "orig_size"))

    @classmethod
    def from_opencv(cls, K, R, t, image_size) -> "Camera":
        """OpenCV's pinhole: intrinsics ``K (3, 3)``/``(B, 3, 3)`` (fx, fy, cx, cy in pixels; no
        skew), world -> camera ``R (3, 3)``/``(B, 3, 3)`` and ``t (3,)``/``(B, 3)`` (x_cam = R x + t;
        camera x right, y down, z forward), ``image_size (H, W)``. Pixel (0, 0) is the centre of
        the top-left pixel: u = fx x_cam / z + cx lands on column u (no distortion)."""
        K = torch.as_tensor(K)
        like = torch.empty(0, dtype=_float_dtype(K, R, t), device=_device(K, R, t))
        K, R = _batched(K, "K", like, (3, 3)), _batched(R, "R", like, (3, 3))
        t = torch.as_tensor(t)
        t = _batched(t[..., 0] if t.ndim >= 2 and t.shape[-1] == 1 else t, "t", like, (3,))  # (3, 1) as OpenCV gives it
        if bool((K[:, 0, 1] != 0).any()) or bool((K[:, 2] != torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)).any()):
            raise ValueError("K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
        if not bool(((K[:, 0, 0] > 0) & (K[:, 1, 1] > 0)).all()):
            raise ValueError("K's focal lengths fx, fy must be > 0")
        b = _batch_of(K, R, t)
        K, R, t = K.expand(b, 3, 3), R.expand(b, 3, 3), t.expand(b, 3)
        h, w = image_hw(image_size)
        s = min(h, w)
        flip = torch.tensor([1.0, -1.0, 1.0], dtype=like.dtype, device=like.device)
        rotation = R * flip[None, :, None]  # OpenCV's y down -> SoftRas's y up
        eye = -torch.einsum("bji,bj->bi", R, t)  # -R^T t
        fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
        # column u has x_ndc = (2u + 1 - W) / S, row v has y_ndc = (H - 1 - 2v) / S (conventions)
        intr = torch.stack((s / (2 * fx), s / (2 * fy), (2 * cx + 1 - w) / s, (h - 1 - 2 * cy) / s), -1)
        return cls(rotation, eye, intr, (h, w), "perspective")

    # -- batch -------------------------------------------------------------------------------

    def _tensors(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}

    @property
    def batch_size(self) -> int:
        return _batch_of(*self._tensors().values())

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index) -> "Camera":
        """The cameras ``index`` (an int or a slice) of the batch; a batch-1 camera serves every index."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return dataclasses.replace(self, **{k: (v if v.shape[0] == 1 else v[index]) for k, v in self._tensors().items()})

    def to(self, *args, **kwargs) -> "Camera":
        """The camera with its tensors moved/cast like ``torch.Tensor.to``."""
        return dataclasses.replace(self, **{k: v.to(*args, **kwargs) for k, v in self._tensors().items()})

    def with_image_size(self, image_size) -> "Camera":
        return dataclasses.replace(self, image_size=image_hw(image_size))

    def _expanded(self, b: int, like: torch.Tensor):
        """rotation (b, 3, 3), eye (b, 3), intrinsics (b, 4) on ``like``'s dtype and device."""
        own = self.batch_size
        if own not in (1, b):
            raise ValueError(f"the camera has batch {own} but the points have batch {b}")
        cast = lambda t, *shape: t.to(dtype=like.dtype, device=like.device).expand(b, *shape)  # noqa: E731
        return cast(self.rotation, 3, 3), cast(self.eye, 3), cast(self.intrinsics, 4)

    # -- points ------------------------------------------------------------------------------

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``(B, N, 3)`` -> camera coordinates (x right, y up, z forward)."""
        cameras.check_vertices(points)
        if self.projection == "matrix":
            raise ValueError("a projection-matrix camera has no camera frame; use transform()")
        b = max(points.shape[0], self.batch_size)
        rotation, eye, _ = self._expanded(b, points)
        return torch.matmul(points.expand(b, -1, 3) - eye[:, None, :], rotation.transpose(1, 2))

    def transform(self, vertices: torch.Tensor) -> torch.Tensor:
        """World vertices ``(B, N, 3)`` -> the rasterizer's screen space: x, y in NDC and z = depth."""
        cameras.check_vertices(vertices)
        if self.projection == "matrix":
            P = self.P.to(dtype=vertices.dtype, device=vertices.device)
            return cameras.projection(vertices, P, self.dist_coeffs, self.orig_size)
        v = self.to_camera(vertices)
        _, _, k = self._expanded(v.shape[0], v)
        x, y, z = v[..., 0], v[..., 1], v[..., 2]
        if self.projection == "perspective":
            xn, yn = x / z / k[:, None, 0], y / z / k[:, None, 1]
        else:
            xn, yn = x * k[:, None, 0], y * k[:, None, 1]
        if bool((k[:, 2:] != 0).any()):
            xn, yn = xn + k[:, None, 2], yn + k[:, None, 3]
        return torch.stack((xn, yn, z), dim=-1)

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World points ``(B, N, 3)`` -> pixel coordinates ``(B, N, 2)`` (u = column, v = row,
        (0, 0) the centre of the top-left pixel) and depth ``(B, N)``."""
        h, w = self.image_size
        s = min(h, w)
        ndc = self.transform(points)
        u = (ndc[..., 0] * s + w - 1) / 2  # inverse of x_k = (2k + 1 - W) / S
        v = (h - 1 - ndc[..., 1] * s) / 2
        return torch.stack((u, v), -1), ndc[..., 2]

    def to_pixels(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Nearest pixel ``(row, col)`` of world points ``(B, N, 3)``, each ``(B, N)`` int64, and
        whether it lies in the image and in front of the camera ``(B, N)`` bool."""
        h, w = self.image_size
        uv, depth = self.project(points)
        col, row = torch.round(uv[..., 0]), torch.round(uv[..., 1])
        valid = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        return row.clamp(0, h - 1).long(), col.clamp(0, w - 1).long(), valid

    # -- rays --------------------------------------------------------------------------------

    def rays(self, dtype: Optional[torch.dtype] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """World-space rays through the pixel centres: origins and unit directions, each
        ``(B, H*W, 3)``, pixels row-major (row 0 = top), as the rasterizer's images."""
        h, w = self.image_size
        like = next(iter(self._tensors().values()))
        like = like.to(dtype) if dtype is not None else like
        xs, ys = C.pixel_centres(h, w)
        xs_t = torch.tensor(xs, dtype=like.dtype, device=like.device)
        ys_t = torch.tensor(ys, dtype=like.dtype, device=like.device)
        if self.projection == "matrix":
            return self._matrix_rays(xs_t, ys_t)
        b = self.batch_size
        rotation, eye, k = self._expanded(b, like)
        if bool((k[:, 2:] != 0).any()):
            xs_t, ys_t = xs_t[None] - k[:, 2:3], ys_t[None] - k[:, 3:4]  # (B, W), (B, H)
        else:
            xs_t, ys_t = xs_t[None].expand(b, w), ys_t[None].expand(b, h)
        if self.projection == "perspective":
            xx, yy = (xs_t * k[:, 0:1])[:, None, :].expand(b, h, w), (ys_t * k[:, 1:2])[:, :, None].expand(b, h, w)
            d_cam = torch.stack((xx, yy, torch.ones_like(xx)), dim=-1).reshape(b, h * w, 3)
            directions = F.normalize(torch.matmul(d_cam, rotation), dim=-1)  # camera -> world is R^T
            origins = eye[:, None, :].expand(b, h * w, 3)
        else:
            xx, yy = (xs_t / k[:, 0:1])[:, None, :].expand(b, h, w), (ys_t / k[:, 1:2])[:, :, None].expand(b, h, w)
            offset = torch.stack((xx, yy, torch.zeros_like(xx)), dim=-1).reshape(b, h * w, 3)
            origins = eye[:, None, :] + torch.matmul(offset, rotation)
            directions = rotation[:, None, 2, :].expand(b, h * w, 3)
        return origins.contiguous(), directions.contiguous()

    def _matrix_rays(self, xs_t, ys_t):
        if self.dist_coeffs is not None and bool((self.dist_coeffs != 0).any()):
            raise ValueError("rays of a projection-matrix camera with lens distortion (dist_coeffs) are not supported")
        P = self.P.to(xs_t.dtype)
        b, (h, w), o = P.shape[0], self.image_size, self.orig_size
        inv = torch.linalg.inv(P[:, :, :3])  # pixel (u, v, 1) -> world direction
        u = (xs_t * o / 2 + o / 2)[None, :].expand(h, w)
        v = (ys_t * o / 2 + o / 2)[:, None].expand(h, w)
        pix = torch.stack((u, v, torch.ones_like(u)), -1).reshape(1, h * w, 3)
        directions = F.normalize(torch.matmul(pix, inv.transpose(1, 2)), dim=-1)
        origins = -torch.einsum("bij,bj->bi", inv, P[:, :, 3])[:, None, :].expand(b, h * w, 3)
        return origins.contiguous(), directions.contiguous()


def as_camera(camera_or_eye, image_size=None, viewing_angle: float = C.VIEWING_ANGLE, at: Vec3 = (0, 0, 0),
              up: Vec3 = (0, 1, 0), dtype: Optional[torch.dtype] = None, name: str = "eye") -> Camera:
    """A :class:`Camera` as given, or the look_at perspective cameras of eye(s) ``(3,)``/``(B, 3)``
    (what the functions taking ``eye`` and ``viewing_angle`` did before cameras were values).
    ``image_size`` None keeps a camera's own; else it must match (or sets the eyes' cameras')."""
    if isinstance(camera_or_eye, Camera):
        cam = camera_or_eye
        if image_size is not None and image_hw(image_size) != cam.image_size:
            raise ValueError(f"image_size {image_hw(image_size)} differs from the camera's image_size {cam.image_size}")
        return cam.to(dtype) if dtype is not None else cam
    if image_size is None:
        raise ValueError(f"image_size is required when {name} is not a Camera")
    if isinstance(camera_or_eye, torch.Tensor):
        check_tensor(camera_or_eye, name, floating=False)
        if not camera_or_eye.is_floating_point():
            camera_or_eye = camera_or_eye.float()
    return Camera.look_at(camera_or_eye, at, up, viewing_angle, image_size, dtype=dtype)
