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
import inspect
import itertools
import sys
from typing import Iterable, Optional

import torch

from .. import conventions as C
from .. import runtime
from ..spec import OUTPUTS, RasterOutputs, RasterSettings, check_extras, check_inputs, raster_outputs  # noqa: F401

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
    def forward(ctx, fv, tex, uvs, vn, nfc, grp, settings, extras, serial):
        ins = _inputs(fv, tex, uvs, vn, nfc, grp)
        owner = next(_call_ids)
        with runtime.launch(fv.device):
            image, depth, aux, gmask, face_index = engine_for(fv.dtype).forward(ins, settings, extras, owner, serial)
        ctx.save_for_backward(fv, tex, uvs, vn, nfc, grp)
        ctx.settings, ctx.extras, ctx.owner, ctx.serial = settings, extras, owner, serial
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
                eng.forward(ins, ctx.settings, ctx.extras, ctx.owner, ctx.serial)
            g = eng.backward(ins, ctx.settings, ctx.extras, grads, ctx.serial)
        need = ctx.needs_input_grad
        return tuple(g.get(n) if need[i] else None for i, n in enumerate(("fv", "tex", "uv", "vn"))) + (None,) * 5


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
    **extras,
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
            conventions are in :mod:`taichi_softras.conventions`. They make one
            :class:`~taichi_softras.spec.RasterSettings`, validated once; :func:`rasterize` takes it whole.
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
    settings = RasterSettings(image_size, background_color, near, far, fill_back, eps, sigma_val, dist_func, dist_eps,
                              gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type)
    return _rasterize(face_vertices, textures, settings, **extras)


def _rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings = RasterSettings(),
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
    """:func:`soft_rasterize` with its settings as one validated :class:`~taichi_softras.spec.RasterSettings`
    (what the modules call); the keyword-only extras and the returns are ``soft_rasterize``'s."""
    if not isinstance(settings, RasterSettings):
        raise TypeError(f"settings must be a RasterSettings, got {type(settings).__name__}")
    res = check_inputs(face_vertices, textures, settings)
    uvs, nfc, grp, vn, extras = check_extras(
        face_vertices, settings, res, uvs, texture_wrap, num_faces, face_groups, vertex_normals, outputs
    )
    runtime.ensure_initialized(face_vertices.device)
    if face_vertices.dtype == torch.float64:
        runtime.require_float64("float64 inputs to soft_rasterize", transcendentals=True)
    fv, tex = face_vertices.contiguous(), textures.contiguous()
    serial = bool(deterministic)
    diff = [t for t in (fv, tex, uvs, vn) if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in diff):
        image, depth, aux, gmask, face_index = _SoftRasterize.apply(fv, tex, uvs, vn, nfc, grp, settings, extras, serial)
    else:
        ins = _inputs(*(t.detach() if t is not None else None for t in (fv, tex, uvs, vn, nfc, grp)))
        with runtime.launch(fv.device):
            image, depth, aux, gmask, face_index = engine_for(fv.dtype, grad=False).forward(ins, settings, extras, next(_call_ids), serial)
    if outputs is None:
        return (image, depth) if return_depth else image
    return raster_outputs(outputs, image, depth, face_index, aux, gmask)


def _with_extras(fn, extras_of):
    """``fn``'s signature with ``**extras`` replaced by the keyword-only parameters of ``extras_of``:
    the extras are written once (``_rasterize``), yet ``help()``, ``inspect.signature`` and
    docs/api.md show every keyword of ``soft_rasterize`` by name."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]
    kw = [p for p in inspect.signature(extras_of).parameters.values() if p.kind == p.KEYWORD_ONLY]
    fn.__signature__ = inspect.signature(fn).replace(parameters=own + kw)
    return fn


_with_extras(_soft_rasterize, _rasterize)


def _graph_break(fn):
    """``fn`` run under ``torch.compiler.disable`` once TorchDynamo is loaded: Taichi kernels are
    opaque to it, so torch.compile must graph-break around the op, not trace into it. Disabling
    imports TorchDynamo (1.4 s, more than the rest of a first call), and only TorchDynamo can be
    tracing a call: while ``torch._dynamo`` is not imported (torch.compile imports it), ``fn`` is
    called directly."""
    disabled = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal disabled
        if "torch._dynamo" not in sys.modules:
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)

    return call


soft_rasterize = _graph_break(_soft_rasterize)
rasterize = _graph_break(_rasterize)
