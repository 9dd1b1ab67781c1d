"""``soft_rasterize``: the Taichi soft rasterizer as a differentiable torch op.

Forward: copy the inputs into pooled Taichi fields, bin faces into screen tiles, run the forward-only
prepass, accumulate the per-pixel sums and compose RGBA + depth. Backward: Taichi autodiff of
``compose`` then ``accumulate`` (DESIGN.md section 3); the gradients are copied into fresh tensors
(the caller's ``.grad`` is never touched). The buffers are shared across calls; if another forward ran
in between, backward first recomputes this call's forward state.
"""

from __future__ import annotations

import itertools
import math
import threading

import taichi as ti
import torch

from .. import conventions as C
from .. import runtime
from ..kernels import raster as K
from ._buffers import FieldPool
from .settings import RasterSettings, parse_rasterize_args

_DIST = {"euclidean": K.DIST_EUCLIDEAN, "barycentric": K.DIST_BARYCENTRIC, "hard": K.DIST_HARD}
_ALPHA = {"prod": K.ALPHA_PROD, "sum": K.ALPHA_SUM, "hard": K.ALPHA_HARD}
_RGB = {"softmax": K.RGB_SOFTMAX, "hard": K.RGB_HARD}
_TEX = {"surface": K.TEX_SURFACE, "vertex": K.TEX_VERTEX}
_ACC_WIDTH, _OUT_WIDTH = 7, 5


class _Engine:
    """Buffers and kernel launches for one real dtype (float32 or float64)."""

    def __init__(self, real) -> None:
        self.real = real
        self.pool = FieldPool()
        self.prm = None
        self.owner = None  # id of the call whose forward state the fields hold
        self.last_pairs = 0  # face-tile pairs binned by the last forward (for tests/benchmarks)
        self.lock = threading.Lock()

    def _fields(self, B, F, T, P, NT, pairs=1):
        g = self.pool.get
        return dict(
            fv=g("fv", self.real, B * F * 9, grad=True),
            fvc=g("fvc", self.real, B * F * 9),
            fbox=g("fbox", self.real, B * F, width=4),
            tex=g("tex", self.real, B * F * T * 3, grad=True),
            box=g("box", ti.i32, B * F, width=4),
            cnt=g("cnt", ti.i32, B * NT),
            off=g("off", ti.i32, B * NT + 1),
            fill=g("fill", ti.i32, B * NT),
            lst=g("lst", ti.i32, pairs),
            pm=g("pm", self.real, B * P),
            psel=g("psel", ti.i32, B * P),
            phard=g("phard", self.real, B * P),
            acc=g("acc", self.real, B * P, width=_ACC_WIDTH, grad=True),
            out=g("out", self.real, B * P, width=_OUT_WIDTH, grad=True),
        )

    def _params(self, s: RasterSettings):
        if self.prm is None:
            self.prm = ti.field(self.real, shape=K.N_PRM)
        vals = [0.0] * K.N_PRM
        vals[K.P_SIGMA], vals[K.P_GAMMA], vals[K.P_EPS] = s.sigma_val, s.gamma_val, s.eps
        vals[K.P_NEAR], vals[K.P_FAR] = s.near, s.far
        vals[K.P_THR], vals[K.P_RAD] = s.threshold, math.sqrt(s.threshold)
        vals[K.P_BG : K.P_BG + 3] = s.background_color
        import numpy as np

        self.prm.from_numpy(np.asarray(vals, dtype=np.float64 if self.real == ti.f64 else np.float32))
        return self.prm

    def forward(self, fv: torch.Tensor, tex: torch.Tensor, s: RasterSettings, owner, det: bool):
        """Run the forward pass; return (image (B, 4, H, W), depth (B, 1, H, W))."""
        B, F = fv.shape[:2]
        T = tex.shape[2]
        H, W = s.height, s.width
        P = H * W
        NT = ((H + K.TILE - 1) // K.TILE) * ((W + K.TILE - 1) // K.TILE)
        prm = self._params(s)
        f = self._fields(B, F, T, P, NT)
        modes = (_DIST[s.dist_func], _RGB[s.aggr_func_rgb], _TEX[s.texture_type], s.fill_back)
        dist, rgb, texmode, fill_back = modes
        K.zero(f["cnt"], B * NT)
        if B * F > 0:
            K.load(fv.reshape(-1), f["fv"], B * F * 9)
            K.load(fv.reshape(-1), f["fvc"], B * F * 9)
            K.load(tex.reshape(-1), f["tex"], B * F * T * 3)
            K.bin_count(f["fv"], f["box"], f["fbox"], f["cnt"], prm, B, F, H, W, det)
        K.bin_offsets(f["cnt"], f["off"], f["fill"], B * NT)
        pairs = int(f["off"][B * NT])
        self.last_pairs = pairs
        lst = self.pool.get("lst", ti.i32, max(pairs, 1))
        if B * F > 0:
            K.bin_fill(f["box"], f["off"], f["fill"], lst, B, F, H, W, det)
        K.prepass(f["fv"], f["fbox"], f["off"], lst, prm, f["pm"], f["psel"], f["phard"], B, F, H, W, dist, fill_back, det)
        K.zero2(f["acc"], B * P)
        K.accumulate(
            f["fv"], f["fvc"], f["fbox"], f["tex"], f["off"], lst, prm, f["pm"], f["psel"], f["acc"], B, F, H, W, s.texture_res, *modes, det
        )
        K.compose(f["acc"], f["pm"], f["psel"], f["phard"], prm, f["out"], B, F, H, W, dist, _ALPHA[s.aggr_func_alpha], rgb)
        self.owner = owner
        image = torch.empty(B, 4, P, dtype=fv.dtype, device=fv.device)
        depth = torch.empty(B, 1, P, dtype=fv.dtype, device=fv.device)
        K.store_image(f["out"], image, P, 0)
        K.store_image(f["out"], depth, P, 4)
        return image.reshape(B, 4, H, W), depth.reshape(B, 1, H, W)

    def backward(self, fv, tex, s: RasterSettings, g_image, g_depth, det: bool):
        """Gradients (d fv, d tex) of <g_image, image> + <g_depth, depth> via Taichi autodiff."""
        B, F = fv.shape[:2]
        T = tex.shape[2]
        H, W = s.height, s.width
        P = H * W
        NT = ((H + K.TILE - 1) // K.TILE) * ((W + K.TILE - 1) // K.TILE)
        f = self._fields(B, F, T, P, NT)
        lst = self.pool.get("lst", ti.i32, max(self.last_pairs, 1))
        modes = (_DIST[s.dist_func], _RGB[s.aggr_func_rgb], _TEX[s.texture_type], s.fill_back)
        dist, rgb = modes[0], modes[1]
        K.zero(f["fv"].grad, B * F * 9)
        K.zero(f["tex"].grad, B * F * T * 3)
        K.zero2(f["acc"].grad, B * P)
        K.load_image(g_image.reshape(B, 4, P).contiguous(), f["out"].grad, P, 0)
        K.load_image(g_depth.reshape(B, 1, P).contiguous(), f["out"].grad, P, 4)
        prm = self.prm
        K.compose.grad(
            f["acc"], f["pm"], f["psel"], f["phard"], prm, f["out"], B, F, H, W, dist, _ALPHA[s.aggr_func_alpha], rgb
        )
        K.accumulate.grad(
            f["fv"], f["fvc"], f["fbox"], f["tex"], f["off"], lst, prm, f["pm"], f["psel"], f["acc"], B, F, H, W, s.texture_res, *modes, det
        )
        g_fv = torch.empty_like(fv)
        g_tex = torch.empty_like(tex)
        if B * F > 0:
            K.store(f["fv"].grad, g_fv.reshape(-1), B * F * 9)
            K.store(f["tex"].grad, g_tex.reshape(-1), B * F * T * 3)
        return g_fv, g_tex


_engines: dict = {}
_call_ids = itertools.count()


def engine_for(dtype: torch.dtype) -> _Engine:
    """The (lazily created) engine for a torch float dtype."""
    if dtype not in _engines:
        _engines[dtype] = _Engine(ti.f64 if dtype == torch.float64 else ti.f32)
    return _engines[dtype]


class _SoftRasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fv, tex, settings, det):
        eng = engine_for(fv.dtype)
        owner = next(_call_ids)
        with eng.lock:
            runtime.torch_to_taichi_sync(fv.device)
            image, depth = eng.forward(fv, tex, settings, owner, det)
            runtime.taichi_to_torch_sync(fv.device)
        ctx.save_for_backward(fv, tex)
        ctx.settings, ctx.owner, ctx.det = settings, owner, det
        return image, depth

    @staticmethod
    def backward(ctx, g_image, g_depth):
        if torch.is_grad_enabled():
            raise RuntimeError("soft_rasterize does not support double backward (create_graph=True)")
        fv, tex = ctx.saved_tensors
        eng = engine_for(fv.dtype)
        with eng.lock:
            runtime.torch_to_taichi_sync(fv.device)
            if eng.owner != ctx.owner:  # another call ran since: restore this call's forward state
                eng.forward(fv, tex, ctx.settings, ctx.owner, ctx.det)
            g_fv, g_tex = eng.backward(fv, tex, ctx.settings, g_image, g_depth, ctx.det)
            runtime.taichi_to_torch_sync(fv.device)
        return (
            g_fv if ctx.needs_input_grad[0] else None,
            g_tex if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def soft_rasterize(
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
):
    """Soft-rasterize faces into RGBA images (SoftRas, Liu et al. 2019), differentiably.

    Args:
        face_vertices: ``(B, F, 3, 3)`` float32/float64; per face three vertices (x, y in NDC, y up;
            z = camera depth > 0).
        textures: ``(B, F, R*R, 3)`` surface texels (``texture_type='surface'``) or ``(B, F, 3, 3)``
            per-corner colours (``'vertex'``), same dtype/device as ``face_vertices``.
        image_size: int or ``(H, W)``; pixels are square, the shorter side spans [-1, 1].
        background_color, near, far, fill_back, eps, sigma_val, dist_func ('euclidean' |
            'barycentric' | 'hard'), dist_eps, gamma_val, aggr_func_rgb ('softmax' | 'hard'),
            aggr_func_alpha ('prod' | 'sum' | 'hard'), texture_type: as SoftRas; the exact
            conventions are in :mod:`taichi_softras.conventions`.
        return_depth: also return the soft depth ``(B, 1, H, W)``.
        deterministic: serialize the kernels so repeated calls give bit-identical results and
            gradients (slower: one thread).

    Returns:
        ``(B, 4, H, W)`` RGBA, or ``(rgba, depth)`` with ``return_depth=True``. Gradients flow to
        ``face_vertices`` and ``textures`` (Taichi autodiff).

    Example:
        >>> fv = torch.tensor([[[[0., 0., 2.], [1., 0., 2.], [0., 1., 2.]]]])
        >>> rgba = soft_rasterize(fv, torch.ones(1, 1, 1, 3), image_size=64)
    """
    s = parse_rasterize_args(
        face_vertices, textures, image_size, background_color, near, far, fill_back, eps, sigma_val,
        dist_func, dist_eps, gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type,
    )
    runtime.ensure_initialized(face_vertices.device)
    fv, tex = face_vertices.contiguous(), textures.contiguous()
    if torch.is_grad_enabled() and (fv.requires_grad or tex.requires_grad):
        image, depth = _SoftRasterize.apply(fv, tex, s, bool(deterministic))
    else:
        eng = engine_for(fv.dtype)
        with eng.lock:
            runtime.torch_to_taichi_sync(fv.device)
            image, depth = eng.forward(fv.detach(), tex.detach(), s, next(_call_ids), bool(deterministic))
            runtime.taichi_to_torch_sync(fv.device)
    return (image, depth) if return_depth else image
