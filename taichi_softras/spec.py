"""The argument specification of the ops, in torch only (no Taichi): what the Taichi ops and their
dense references (:mod:`taichi_softras.reference`) both accept and return.

* :class:`RasterSettings`: every setting of one ``soft_rasterize`` call, validated once when built;
  modules build it from SoftRas's keywords and pass it whole to the op, the engine and the kernels.
* :func:`check_inputs` / :func:`check_extras`: the tensors of a call (shapes, dtypes, devices).
* :data:`OUTPUTS`, :class:`RasterOutputs`, :data:`AUX_CHANNELS`: the per-pixel outputs and the
  layout of the auxiliary buffer (stated in :mod:`~taichi_softras.conventions`, which the kernels read).
* :class:`ProbeResult`, :func:`check_probe_args`: anchor-ray probing.

The kernels' integer codes of the mode names live in one table, :data:`conventions.MODE_TABLES`
(re-exported here as :data:`MODE_TABLES`, :func:`code`). See docs/design.md, "The spec".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

import torch

from . import conventions
from . import conventions as C
from .conventions import AUX_CHANNELS, AUX_WIDTH, MODE_TABLES, code
from .ops.checks import (
    check_choice,
    check_color,
    check_finite,
    check_in_range,
    check_integer,
    check_number,
    check_positive,
    check_same_device,
    check_tensor,
    image_hw,
)

__all__ = [
    "conventions", "MODE_TABLES", "code", "RasterSettings", "Extras", "check_inputs", "check_extras",
    "split_softras_args", "OUTPUTS", "AUX_CHANNELS", "AUX_WIDTH", "RasterOutputs", "raster_outputs",
    "ProbeResult", "check_probe_args",
]


# --- rasterizer settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class RasterSettings:
    """Every setting of one soft rasterization (PyTorch3D's ``RasterizationSettings`` is the model).

    Fields, order and defaults are ``soft_rasterize``'s SoftRas keywords; semantics in
    :mod:`taichi_softras.conventions`. Validated when built (each error names the field); numbers
    are stored as floats, ``background_color`` as a tuple. ``replace(**changes)`` gives a new,
    re-validated value. ``image_size`` is kept as given (int or (H, W)); see :attr:`height`/:attr:`width`.
    """

    image_size: Union[int, tuple] = C.IMAGE_SIZE
    background_color: tuple = C.BACKGROUND_COLOR
    near: float = C.NEAR
    far: float = C.FAR
    fill_back: bool = True
    eps: float = C.EPS
    sigma_val: float = C.SIGMA_VAL
    dist_func: str = "euclidean"
    dist_eps: float = C.DIST_EPS
    gamma_val: float = C.GAMMA_VAL
    aggr_func_rgb: str = "softmax"
    aggr_func_alpha: str = "prod"
    texture_type: str = "surface"

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        hw = image_hw(self.image_size)
        put("_hw", hw)
        check_choice(self.dist_func, "dist_func", C.DIST_FUNCS)
        check_choice(self.aggr_func_rgb, "aggr_func_rgb", C.AGGR_FUNCS_RGB)
        check_choice(self.aggr_func_alpha, "aggr_func_alpha", C.AGGR_FUNCS_ALPHA)
        check_choice(self.texture_type, "texture_type", C.RASTER_TEXTURE_TYPES)
        put("background_color", check_color(self.background_color, "background_color"))
        put("sigma_val", check_positive(self.sigma_val, "sigma_val"))
        put("gamma_val", check_positive(self.gamma_val, "gamma_val"))
        put("near", check_positive(self.near, "near"))
        put("far", check_number(self.far, "far", "a finite number > near"))
        if not self.far > self.near:
            raise ValueError(f"far must be > near, got near={self.near}, far={self.far}")
        # eps is the background's normalized depth z_n; faces between near and far have z_n in [0, 1].
        put("eps", check_in_range(self.eps, "eps", 0.0, 1.0, "a finite number in (0, 1) (the background's normalized depth)"))
        put("dist_eps", check_in_range(self.dist_eps, "dist_eps", 0.0, 0.5))
        put("fill_back", bool(self.fill_back))

    @property
    def height(self) -> int:
        return self._hw[0]

    @property
    def width(self) -> int:
        return self._hw[1]

    @property
    def threshold(self) -> float:
        """Squared NDC distance beyond which an outside face is skipped."""
        return C.dist_threshold(self.sigma_val, self.dist_eps)

    def replace(self, **changes) -> "RasterSettings":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes) if changes else self


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(RasterSettings))


def split_softras_args(args: tuple, kwargs: dict) -> tuple[RasterSettings, dict]:
    """``soft_rasterize``'s SoftRas arguments after the two tensors (positional in
    :class:`RasterSettings` order, or by name) -> the settings and the remaining keywords."""
    if len(args) > len(_SETTING_NAMES):
        raise TypeError(f"soft_rasterize takes at most {2 + len(_SETTING_NAMES)} positional arguments, got {2 + len(args)}")
    named = dict(zip(_SETTING_NAMES, args))
    for name in _SETTING_NAMES:
        if name in kwargs:
            if name in named:
                raise TypeError(f"soft_rasterize got multiple values for argument {name!r}")
            named[name] = kwargs.pop(name)
    return RasterSettings(**named), kwargs


# --- the tensors of a call --------------------------------------------------------------------


def check_inputs(face_vertices, textures, s: RasterSettings) -> int:
    """Validate the two tensors against ``s``; return R for surface textures (R*R texels), else 0.
    Raises ValueError/TypeError naming the argument."""
    check_tensor(face_vertices, "face_vertices", ndim=4, last=(3, 3))
    uv = s.texture_type == "uv"
    check_tensor(textures, "textures", ndim=4, last=(3, None, None) if uv else (3,))
    if textures.dtype != face_vertices.dtype:
        raise TypeError(f"textures dtype {textures.dtype} differs from face_vertices dtype {face_vertices.dtype}")
    check_same_device(face_vertices, textures, "face_vertices", "textures")
    b, f = face_vertices.shape[:2]
    res = 0
    if uv:
        if textures.shape[0] != b or textures.shape[2] == 0 or textures.shape[3] == 0:
            raise ValueError(f"uv textures must be images (B, 3, TH, TW) with B = {b} and TH, TW >= 1, got {tuple(textures.shape)}")
    elif textures.shape[0] != b or textures.shape[1] != f:
        raise ValueError(
            f"textures must have batch and face dims (B, F) = ({b}, {f}) like face_vertices, got {tuple(textures.shape)}"
        )
    elif s.texture_type == "vertex":
        if textures.shape[2] != 3:
            raise ValueError(f"vertex textures must have shape (B, F, 3, 3), got {tuple(textures.shape)}")
    else:
        res = math.isqrt(textures.shape[2])
        if res * res != textures.shape[2] or res == 0:
            raise ValueError(f"surface textures must have shape (B, F, R*R, 3), got {tuple(textures.shape)}")
    check_finite(face_vertices, "face_vertices")
    check_finite(textures, "textures")
    return res


#: Names accepted by ``outputs=``.
OUTPUTS = ("depth", "face_index", "barycentrics", "normals", "screen_normals", "group_masks")
assert C.AUX_WIDTH == sum(n for _, n in C.AUX_CHANNELS.values())


@dataclass(frozen=True)
class Extras:
    """Static (non-differentiable) facts of a call besides its settings."""

    texture_res: int = 0  # R of surface textures (R*R texels), 0 otherwise
    wrap: str = "repeat"
    groups: int = 0  # number of face groups (0: none)
    aux: bool = False  # run the auxiliary pass (face index, barycentrics, normals)
    normals: bool = False  # vertex normals given


def check_extras(fv, s: RasterSettings, texture_res, uvs, texture_wrap, num_faces, face_groups, vertex_normals, outputs):
    """Validate the keyword-only extras; return the tensors made contiguous (uvs, num_faces as int32,
    face groups as int32, vertex normals) and the :class:`Extras`."""
    b, f = fv.shape[:2]
    check_choice(texture_wrap, "texture_wrap", C.TEXTURE_WRAPS)
    if s.texture_type == "uv":
        if uvs is None:
            raise ValueError("texture_type='uv' needs uvs=(B, F, 3, 2) per-corner texture coordinates")
        check_tensor(uvs, "uvs", ndim=4, last=(3, 2))
        if uvs.shape[:2] != (b, f) or uvs.dtype != fv.dtype or uvs.device != fv.device:
            raise ValueError(f"uvs must be (B, F, 3, 2) = ({b}, {f}, 3, 2) with face_vertices' dtype/device, got {tuple(uvs.shape)} {uvs.dtype}")
        check_finite(uvs, "uvs")
        uvs = uvs.contiguous()
    elif uvs is not None:
        raise ValueError("uvs is only used with texture_type='uv'")
    if num_faces is None:
        nfc = torch.full((b,), f, dtype=torch.int32, device=fv.device)
    else:
        check_tensor(num_faces, "num_faces", ndim=1, floating=False)
        if num_faces.shape[0] != b or num_faces.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"num_faces must be an integer tensor (B,) = ({b},), got {tuple(num_faces.shape)} {num_faces.dtype}")
        if bool(((num_faces < 0) | (num_faces > f)).any()):
            raise ValueError(f"num_faces must lie in [0, F={f}], got {num_faces.tolist()}")
        nfc = num_faces.to(device=fv.device, dtype=torch.int32).contiguous()
    wanted = set(outputs or ())
    unknown = wanted - set(OUTPUTS)
    if unknown:
        raise ValueError(f"outputs must be a subset of {OUTPUTS}, got unknown {sorted(unknown)}")
    groups, grp = 0, None
    if face_groups is not None:
        check_tensor(face_groups, "face_groups", ndim=2, floating=False)
        if face_groups.shape != (b, f) or face_groups.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"face_groups must be an integer tensor (B, F) = ({b}, {f}), got {tuple(face_groups.shape)} {face_groups.dtype}")
        if face_groups.numel() and int(face_groups.min()) < 0:
            raise ValueError("face_groups must be >= 0")
        groups = int(face_groups.max()) + 1 if face_groups.numel() else 1
        grp = face_groups.to(device=fv.device, dtype=torch.int32).contiguous()
    elif "group_masks" in wanted:
        raise ValueError("outputs 'group_masks' needs face_groups=(B, F) group ids")
    if vertex_normals is not None:
        check_tensor(vertex_normals, "vertex_normals", ndim=4, last=(3, 3))
        if vertex_normals.shape[:2] != (b, f) or vertex_normals.dtype != fv.dtype:
            raise ValueError(f"vertex_normals must be (B, F, 3, 3) = ({b}, {f}, 3, 3) with face_vertices' dtype, got {tuple(vertex_normals.shape)}")
        check_finite(vertex_normals, "vertex_normals")
        vertex_normals = vertex_normals.contiguous()
    elif "normals" in wanted:
        raise ValueError("outputs 'normals' needs vertex_normals=(B, F, 3, 3)")
    aux = bool(wanted & set(AUX_CHANNELS) | wanted & {"face_index"})
    extras = Extras(texture_res=texture_res, wrap=texture_wrap, groups=groups, aux=aux, normals=vertex_normals is not None and aux)
    return uvs, nfc, grp, vertex_normals, extras


# --- outputs ----------------------------------------------------------------------------------


@dataclass
class RasterOutputs:
    """What ``soft_rasterize(..., outputs=[...])`` returns; fields not asked for are None.

    rgba (B, 4, H, W); depth (B, 1, H, W) soft depth; face_index (B, H, W) int64, the nearest face
    whose interior holds the pixel centre and that may colour it (-1: none); barycentrics
    (B, 3, H, W) its perspective-correct barycentrics; normals (B, 3, H, W) interpolated unit
    ``vertex_normals``; screen_normals (B, 3, H, W) its unit normal in (x_ndc, y_ndc, z) space;
    group_masks (B, G, H, W) the soft silhouette of each face group (``face_groups``). All but
    face_index are differentiable.
    """

    rgba: torch.Tensor
    depth: Optional[torch.Tensor] = None
    face_index: Optional[torch.Tensor] = None
    barycentrics: Optional[torch.Tensor] = None
    normals: Optional[torch.Tensor] = None
    screen_normals: Optional[torch.Tensor] = None
    group_masks: Optional[torch.Tensor] = None


def raster_outputs(outputs, rgba, depth, face_index=None, aux=None, group_masks=None) -> RasterOutputs:
    """The :class:`RasterOutputs` of the names in ``outputs``; ``aux (B, AUX_WIDTH, H, W)`` is
    split by :data:`AUX_CHANNELS`."""
    wanted = set(outputs)
    fields = dict(depth=depth, face_index=face_index, group_masks=group_masks)
    for name, (first, n) in AUX_CHANNELS.items():
        fields[name] = aux[:, first : first + n] if aux is not None else None
    return RasterOutputs(rgba=rgba, **{k: (v if k in wanted else None) for k, v in fields.items()})


# --- probing ----------------------------------------------------------------------------------

#: Probe directions must have | |d| - 1 | <= this.
UNIT_TOL = 1e-4


class ProbeResult(NamedTuple):
    """Per-ray results, each ``(B, R)``: the max-pooled value (0 without probes; differentiable
    w.r.t. the anchor values), the arg-max anchor index in ``[0, N)`` or -1 (int64) and the probe
    count (int64)."""

    value: torch.Tensor
    index: torch.Tensor
    count: torch.Tensor


def check_probe_args(origins, directions, anchors, radius, values, ray_labels=None, anchor_labels=None):
    """Validate ``probe_rays``' arguments; returns radius as ``(B, N)``."""
    check_tensor(origins, "origins", ndim=3, last=(3,))
    check_tensor(directions, "directions", ndim=3, last=(3,))
    check_tensor(anchors, "anchors", ndim=3, last=(3,))
    check_tensor(values, "values", ndim=2)
    if directions.shape != origins.shape:
        raise ValueError(f"directions must have the shape of origins {tuple(origins.shape)}, got {tuple(directions.shape)}")
    b, n = anchors.shape[:2]
    if origins.shape[0] != b:
        raise ValueError(f"anchors must have the batch size of origins ({origins.shape[0]}), got {tuple(anchors.shape)}")
    if values.shape != (b, n):
        raise ValueError(f"values must have shape (B, N) = ({b}, {n}) like anchors, got {tuple(values.shape)}")
    for name, t in (("directions", directions), ("anchors", anchors), ("values", values)):
        if t.dtype != origins.dtype:
            raise TypeError(f"{name} must have the dtype of origins ({origins.dtype}), got {t.dtype}")
        check_same_device(origins, t, "origins", name)
    for name, t in (("origins", origins), ("directions", directions), ("anchors", anchors), ("values", values)):
        check_finite(t, name)
    if directions.numel():
        norms = directions.norm(dim=-1)
        if bool((norms == 0).any()):
            raise ValueError("directions must be unit vectors, got a zero-length direction")
        worst = float((norms - 1).abs().max())
        if worst > UNIT_TOL:
            raise ValueError(f"directions must be unit vectors (| |d| - 1 | <= {UNIT_TOL}), got a deviation of {worst:.3g}")
    if isinstance(radius, torch.Tensor) and radius.ndim > 0:
        check_tensor(radius, "radius")
        check_same_device(origins, radius, "origins", "radius")
        if radius.shape not in ((n,), (b, n)):
            raise ValueError(f"radius must be a number or have shape (N,) or (B, N) = ({b}, {n}), got {tuple(radius.shape)}")
        check_finite(radius, "radius")
        if n and not bool((radius > 0).all()):
            raise ValueError(f"radius must be > 0, got a minimum of {float(radius.min()):.3g}")
        radius = radius.to(origins.dtype).expand(b, n)
    else:
        r = check_positive(radius, "radius")
        radius = torch.full((b, n), r, dtype=origins.dtype, device=origins.device)
    if (ray_labels is None) != (anchor_labels is None):
        raise ValueError("ray_labels and anchor_labels must be given together (boundary-aware assignment) or not at all")
    if ray_labels is not None:
        for name, t, shape in (("ray_labels", ray_labels, origins.shape[:2]), ("anchor_labels", anchor_labels, (b, n))):
            check_tensor(t, name, floating=False)
            check_integer(t, name, allow_bool=True)
            check_same_device(origins, t, "origins", name)
            if t.shape != shape:
                raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return radius
