"""``soft_rasterize``: the Taichi soft rasterizer as a differentiable torch op.

Forward: copy the inputs into pooled Taichi fields, set up and bin the faces into screen tiles,
rasterize (per-pixel sums, forward only) and compose RGBA + depth (+ the auxiliary outputs asked
for). Backward: Taichi autodiff of ``auxiliary``, ``compose`` and ``accumulate`` (docs/design.md);
the gradients are copied into fresh tensors (the caller's ``.grad`` is never touched). Buffers are
shared across calls; if another forward ran in between, backward first recomputes this call's state.
This module imports no Taichi: the engine (:mod:`._raster_engine`) is imported at the first call.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

from .. import conventions as C
from .. import runtime
from .checks import check_choice, check_finite, check_tensor
from .settings import parse_rasterize_args

#: Names accepted by ``outputs=``.
OUTPUTS = ("depth", "face_index", "barycentrics", "normals", "screen_normals", "group_masks")


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


@dataclass(frozen=True)
class _Extras:
    """Static (non-differentiable) extras of a call."""

    wrap: str = "repeat"
    groups: int = 0  # number of face groups (0: none)
    aux: bool = False  # run the auxiliary pass (face index, barycentrics, normals)
    normals: bool = False  # vertex normals given


_call_ids = itertools.count()


def engine_for(dtype: torch.dtype, grad: bool = True):
    """The engine (buffers + launches, :mod:`._raster_engine`) for a float dtype; importing it
    imports Taichi, so this happens at the first call, not at ``import taichi_softras``."""
    from ._raster_engine import engine_for as _engine_for

    return _engine_for(dtype, grad)


def _inputs(fv, tex, uvs, vn, nfc, grp):
    return dict(fv=fv, tex=tex, uv=uvs, vn=vn, nfc=nfc, grp=grp)


class _SoftRasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fv, tex, uvs, vn, nfc, grp, settings, extras, det):
        ins = _inputs(fv, tex, uvs, vn, nfc, grp)
        owner = next(_call_ids)
        with runtime.launch(fv.device):
            image, depth, aux, gmask, face_index = engine_for(fv.dtype).forward(ins, settings, extras, owner, det)
        ctx.save_for_backward(fv, tex, uvs, vn, nfc, grp)
        ctx.settings, ctx.extras, ctx.owner, ctx.det = settings, extras, owner, det
        if face_index is not None:
            ctx.mark_non_differentiable(face_index)
        return image, depth, aux, gmask, face_index

    @staticmethod
    def backward(ctx, g_image, g_depth, g_aux, g_gmask, _g_face_index):
        if torch.is_grad_enabled():
            raise RuntimeError("soft_rasterize does not support double backward (create_graph=True)")
        ins = _inputs(*ctx.saved_tensors)
        grads = dict(image=g_image, depth=g_depth, aux=g_aux, gmask=g_gmask)
        with runtime.launch(ins["fv"].device):
            eng = engine_for(ins["fv"].dtype)
            # Another call ran since (or the Taichi runtime was replaced): restore this call's state.
            if eng.owner != ctx.owner:
                eng.forward(ins, ctx.settings, ctx.extras, ctx.owner, ctx.det)
            g = eng.backward(ins, ctx.settings, ctx.extras, grads, ctx.det)
        need = ctx.needs_input_grad
        return tuple(g.get(n) if need[i] else None for i, n in enumerate(("fv", "tex", "uv", "vn"))) + (None,) * 5


def check_extras(fv, texture_type, uvs, texture_wrap, num_faces, face_groups, vertex_normals, outputs):
    """Validate the keyword-only extras; return the tensors made contiguous and the static extras."""
    b, f = fv.shape[:2]
    check_choice(texture_wrap, "texture_wrap", C.TEXTURE_WRAPS)
    if texture_type == "uv":
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
    aux = bool(wanted & {"face_index", "barycentrics", "normals", "screen_normals"})
    extras = _Extras(wrap=texture_wrap, groups=groups, aux=aux, normals=vertex_normals is not None and aux)
    return uvs, nfc, grp, vertex_normals, extras


def _soft_rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    image_size=C.IMAGE_SIZE,
    background_color=C.BACKGROUND_COLOR,
    near=C.NEAR,
    far=C.FAR,
    fill_back=True,
    eps=C.EPS,
    sigma_val=C.SIGMA_VAL,
    dist_func="euclidean",
    dist_eps=C.DIST_EPS,
    gamma_val=C.GAMMA_VAL,
    aggr_func_rgb="softmax",
    aggr_func_alpha="prod",
    texture_type="surface",
    *,
    return_depth: bool = False,
    deterministic: bool = False,
    uvs: Optional[torch.Tensor] = None,
    texture_wrap: str = "repeat",
    num_faces: Optional[torch.Tensor] = None,
    face_groups: Optional[torch.Tensor] = None,
    vertex_normals: Optional[torch.Tensor] = None,
    outputs: Optional[Iterable[str]] = None,
):
    """Soft-rasterize faces into RGBA images (SoftRas, Liu et al. 2019), differentiably.

    Args:
        face_vertices: ``(B, F, 3, 3)`` float32/float64; per face three vertices (x, y in NDC, y up;
            z = camera depth > 0).
        textures: ``(B, F, R*R, 3)`` surface texels (``texture_type='surface'``), ``(B, F, 3, 3)``
            per-corner colours (``'vertex'``) or an image ``(B, 3, TH, TW)`` (``'uv'``); same
            dtype/device as ``face_vertices``.
        image_size: int or ``(H, W)``; pixels are square, the shorter side spans [-1, 1].
        background_color, near, far, fill_back, eps, sigma_val, dist_func ('euclidean' |
            'barycentric' | 'hard'), dist_eps, gamma_val, aggr_func_rgb ('softmax' | 'hard'),
            aggr_func_alpha ('prod' | 'sum' | 'hard'), texture_type: as SoftRas; the exact
            conventions are in :mod:`taichi_softras.conventions`.
        return_depth: also return the soft depth ``(B, 1, H, W)`` (SoftRas-style tuple).
        deterministic: serialize the kernels so repeated calls give bit-identical results and
            gradients (one thread).
        uvs: ``(B, F, 3, 2)`` per-corner UVs for ``texture_type='uv'`` (differentiable).
        texture_wrap: 'repeat' or 'clamp' for UVs outside [0, 1].
        num_faces: ``(B,)`` ints: ragged batches padded to F faces; faces ``>= num_faces[b]`` render
            nothing and get zero gradient ('sum' alpha divides by the mesh's own count).
        face_groups: ``(B, F)`` ints: group id per face, for the ``group_masks`` output.
        vertex_normals: ``(B, F, 3, 3)`` per-corner normals, for the ``normals`` output.
        outputs: names from :data:`OUTPUTS`; then a :class:`RasterOutputs` is returned.

    Returns:
        ``(B, 4, H, W)`` RGBA; ``(rgba, depth)`` with ``return_depth=True``; a
        :class:`RasterOutputs` when ``outputs`` is given. Gradients flow to ``face_vertices``,
        ``textures``, ``uvs`` and ``vertex_normals`` (Taichi autodiff).

    Example:
        >>> fv = torch.tensor([[[[0., 0., 2.], [1., 0., 2.], [0., 1., 2.]]]])
        >>> rgba = soft_rasterize(fv, torch.ones(1, 1, 1, 3), image_size=64)
        >>> out = soft_rasterize(fv, torch.ones(1, 1, 1, 3), image_size=64, outputs=["depth", "face_index"])
    """
    s = parse_rasterize_args(
        face_vertices, textures, image_size, background_color, near, far, fill_back, eps, sigma_val,
        dist_func, dist_eps, gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type,
    )
    uvs, nfc, grp, vn, extras = check_extras(
        face_vertices, texture_type, uvs, texture_wrap, num_faces, face_groups, vertex_normals, outputs
    )
    runtime.ensure_initialized(face_vertices.device)
    if face_vertices.dtype == torch.float64:
        runtime.require_float64("float64 inputs to soft_rasterize", transcendentals=True)
    fv, tex = face_vertices.contiguous(), textures.contiguous()
    det = bool(deterministic)
    diff = [t for t in (fv, tex, uvs, vn) if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in diff):
        image, depth, aux, gmask, face_index = _SoftRasterize.apply(fv, tex, uvs, vn, nfc, grp, s, extras, det)
    else:
        ins = _inputs(*(t.detach() if t is not None else None for t in (fv, tex, uvs, vn, nfc, grp)))
        with runtime.launch(fv.device):
            image, depth, aux, gmask, face_index = engine_for(fv.dtype, grad=False).forward(ins, s, extras, next(_call_ids), det)
    if outputs is None:
        return (image, depth) if return_depth else image
    wanted = set(outputs)
    pick = lambda name, value: value if name in wanted else None  # noqa: E731
    return RasterOutputs(
        rgba=image,
        depth=pick("depth", depth),
        face_index=pick("face_index", face_index),
        barycentrics=pick("barycentrics", aux[:, 0:3] if aux is not None else None),
        normals=pick("normals", aux[:, 3:6] if aux is not None else None),
        screen_normals=pick("screen_normals", aux[:, 6:9] if aux is not None else None),
        group_masks=pick("group_masks", gmask),
    )


_dynamo_safe = None


@functools.wraps(_soft_rasterize)
def soft_rasterize(*args, **kwargs):
    # Taichi kernels are opaque to TorchDynamo: torch.compile must graph-break around the op, not
    # trace into it. torch.compiler.disable imports TorchDynamo (seconds), so it is applied at the
    # first call rather than at import.
    global _dynamo_safe
    if _dynamo_safe is None:
        _dynamo_safe = torch.compiler.disable(_soft_rasterize)
    return _dynamo_safe(*args, **kwargs)
