"""``soft_rasterize``: the Taichi soft rasterizer as a differentiable torch op.

Forward: copy the inputs into pooled Taichi fields, bin faces into screen tiles, run the forward-only
prepass, accumulate the per-pixel sums and compose RGBA + depth (+ the auxiliary outputs asked for).
Backward: Taichi autodiff of ``auxiliary``, ``compose`` and ``accumulate`` (DESIGN.md section 3);
the gradients are copied into fresh tensors (the caller's ``.grad`` is never touched). Buffers are
shared across calls; if another forward ran in between, backward first recomputes this call's state.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import taichi as ti
import torch

from .. import conventions as C
from .. import runtime
from ..kernels import raster as K
from ._buffers import FieldPool
from .checks import check_choice, check_finite, check_tensor
from .settings import RasterSettings, parse_rasterize_args

_DIST = {"euclidean": K.DIST_EUCLIDEAN, "barycentric": K.DIST_BARYCENTRIC, "hard": K.DIST_HARD}
_ALPHA = {"prod": K.ALPHA_PROD, "sum": K.ALPHA_SUM, "hard": K.ALPHA_HARD}
_RGB = {"softmax": K.RGB_SOFTMAX, "hard": K.RGB_HARD}
_TEX = {"surface": K.TEX_SURFACE, "vertex": K.TEX_VERTEX, "uv": K.TEX_UV}
_WRAP = {"repeat": K.WRAP_REPEAT, "clamp": K.WRAP_CLAMP}
_ACC_WIDTH, _OUT_WIDTH, _AUX_WIDTH = 7, 5, 9

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


class _Engine:
    """Buffers and kernel launches for one real dtype (float32 or float64) and grad mode."""

    def __init__(self, real, grad: bool) -> None:
        self.real = real
        self.grad = grad  # False: the no-grad path allocates no grad buffers
        self.pool = FieldPool()
        self.prm = None
        self.owner = None  # id of the call whose forward state the fields hold
        self.last_pairs = 0  # face-tile pairs binned by the last forward (tests/benchmarks)
        self.lock = threading.Lock()

    def _fields(self, B, F, tex_numel, P, NT, x: _Extras, uv: bool):
        g, r, grad = self.pool.get, self.real, self.grad
        G = x.groups

        def used(flag, n):  # optional buffers stay at the pool's minimum until a call needs them
            return n if flag else 1

        return dict(
            fv=g("fv", r, B * F * 9, grad=grad),
            fbox=g("fbox", r, B * F, width=14),  # grown box, 3 edge lines, rejection threshold
            tex=g("tex", r, tex_numel, grad=grad),
            uv=g("uv", r, used(uv, B * F * 6), grad=grad),
            vn=g("vn", r, used(x.normals, B * F * 9), grad=grad),
            nfc=g("nfc", ti.i32, B),
            grp=g("grp", ti.i32, used(G, B * F)),
            box=g("box", ti.i32, B * F, width=4),
            cnt=g("cnt", ti.i32, B * NT),
            off=g("off", ti.i32, B * NT + 1),
            fill=g("fill", ti.i32, B * NT),
            pm=g("pm", r, B * P),
            psel=g("psel", ti.i32, B * P),
            phard=g("phard", r, B * P),
            acc=g("acc", r, B * P, width=_ACC_WIDTH, grad=grad),
            out=g("out", r, B * P, width=_OUT_WIDTH, grad=grad),
            aux=g("aux", r, used(x.aux, B * P), width=_AUX_WIDTH, grad=grad),
            # Group sums are 2-D even for one group (width >= 2 keeps the field's shape (n, width)).
            accg=g("accg", r, used(G, B * P), width=max(G, 2), grad=grad),
            outg=g("outg", r, used(G, B * P), width=max(G, 2), grad=grad),
        )

    def _params(self, s: RasterSettings):
        if self.prm is None:
            self.prm = ti.field(self.real, shape=K.N_PRM)
        vals = [0.0] * K.N_PRM
        vals[K.P_SIGMA], vals[K.P_GAMMA], vals[K.P_EPS] = s.sigma_val, s.gamma_val, s.eps
        vals[K.P_NEAR], vals[K.P_FAR] = s.near, s.far
        vals[K.P_THR], vals[K.P_RAD] = s.threshold, math.sqrt(s.threshold)
        vals[K.P_BG : K.P_BG + 3] = s.background_color
        self.prm.from_numpy(np.asarray(vals, dtype=np.float64 if self.real == ti.f64 else np.float32))
        return self.prm

    @staticmethod
    def _dims(fv, tex, s):
        B, F = fv.shape[:2]
        H, W = s.height, s.width
        NT = ((H + K.TILE - 1) // K.TILE) * ((W + K.TILE - 1) // K.TILE)
        TH, TW = (tex.shape[2], tex.shape[3]) if s.texture_type == "uv" else (0, 0)
        return B, F, H, W, H * W, NT, TH, TW

    def _static_modes(self, s: RasterSettings, x: _Extras):
        return dict(
            dist=_DIST[s.dist_func], rgb=_RGB[s.aggr_func_rgb], texmode=_TEX[s.texture_type], wrap=_WRAP[x.wrap],
            fill_back=s.fill_back, groups=x.groups > 0,
        )

    def _accumulate_args(self, f, lst, s, x, dims, det):
        B, F, H, W, P, NT, TH, TW = dims
        m = self._static_modes(s, x)
        return (
            f["fv"], f["fbox"], f["tex"], f["uv"], f["grp"], f["off"], lst, self.prm, f["pm"], f["psel"],
            f["acc"], f["accg"], B, F, H, W, s.texture_res, TH, TW,
            m["dist"], m["rgb"], m["texmode"], m["wrap"], m["fill_back"], m["groups"], det,
        )

    def _compose_args(self, f, s, x, dims):
        B, F, H, W, P, NT, TH, TW = dims
        m = self._static_modes(s, x)
        return (
            f["acc"], f["nfc"], f["pm"], f["psel"], f["phard"], self.prm, f["out"],
            B, F, H, W, m["dist"], _ALPHA[s.aggr_func_alpha], m["rgb"],
        )

    def _groups_args(self, f, s, x, dims):
        return (f["accg"], f["outg"], dims[0] * dims[4], x.groups, _DIST[s.dist_func])

    def _aux_args(self, f, x, dims):
        B, F, H, W = dims[:4]
        return (f["fv"], f["vn"], f["psel"], self.prm, f["aux"], B, F, H, W, x.normals)

    def forward(self, ins: dict, s: RasterSettings, x: _Extras, owner, det: bool):
        """Run the forward pass on ``ins`` (fv, tex, uv, vn, nfc, grp tensors or None).

        Returns image (B, 4, H, W), depth (B, 1, H, W), aux (B, 9, H, W) or None, group masks
        (B, G, H, W) or None, face index (B, H, W) or None."""
        fv, tex = ins["fv"], ins["tex"]
        dims = self._dims(fv, tex, s)
        B, F, H, W, P, NT, TH, TW = dims
        prm = self._params(s)
        f = self._fields(B, F, tex.numel(), P, NT, x, s.texture_type == "uv")
        K.zero(f["cnt"], B * NT)
        for name in ("fv", "tex", "uv", "vn", "nfc", "grp"):
            t = ins.get(name)
            if t is not None and t.numel() > 0:
                K.load(t.reshape(-1), f[name], t.numel())
        if B * F > 0:
            K.bin_count(f["fv"], f["nfc"], f["box"], f["fbox"], f["cnt"], prm, B, F, H, W, det)
        K.bin_offsets(f["cnt"], f["off"], f["fill"], B * NT)
        pairs = int(f["off"][B * NT])
        self.last_pairs = pairs
        lst = self.pool.get("lst", ti.i32, max(pairs, 1))
        if B * F > 0:
            # Sorted tile lists make the forward bit-repeatable: a serial fill on CPU, a sort on GPU.
            serial = det or runtime.active_arch() == "cpu"
            K.bin_fill(f["box"], f["off"], f["fill"], lst, B, F, H, W, serial)
            if not serial:
                K.sort_tiles(f["off"], lst, B * NT)
        modes = self._static_modes(s, x)
        K.prepass(
            f["fv"], f["fbox"], f["off"], lst, prm, f["pm"], f["psel"], f["phard"], B, F, H, W,
            modes["dist"], modes["rgb"], modes["fill_back"], det,
        )
        K.zero2(f["acc"], B * P)
        if x.groups:
            K.zero2(f["accg"], B * P)
        K.accumulate(*self._accumulate_args(f, lst, s, x, dims, det))
        K.compose(*self._compose_args(f, s, x, dims))
        if x.groups:
            K.compose_groups(*self._groups_args(f, s, x, dims))
        if x.aux:
            K.zero2(f["aux"], B * P)
            K.auxiliary(*self._aux_args(f, x, dims))
        self.owner = owner
        image = torch.empty(B, 4, P, dtype=fv.dtype, device=fv.device)
        depth = torch.empty(B, 1, P, dtype=fv.dtype, device=fv.device)
        K.store_image(f["out"], image, P, 0)
        K.store_image(f["out"], depth, P, 4)
        aux = gmask = face_index = None
        if x.aux:
            aux = torch.empty(B, _AUX_WIDTH, P, dtype=fv.dtype, device=fv.device)
            K.store_image(f["aux"], aux, P, 0)
            face_index = torch.empty(B * P, dtype=torch.int32, device=fv.device)
            K.store(f["psel"], face_index, B * P)
            face_index = face_index.reshape(B, H, W).long()
            aux = aux.reshape(B, _AUX_WIDTH, H, W)
        if x.groups:
            gmask = torch.empty(B, x.groups, P, dtype=fv.dtype, device=fv.device)
            K.store_image(f["outg"], gmask, P, 0)
            gmask = gmask.reshape(B, x.groups, H, W)
        return image.reshape(B, 4, H, W), depth.reshape(B, 1, H, W), aux, gmask, face_index

    def backward(self, ins: dict, s: RasterSettings, x: _Extras, grads: dict, det: bool) -> dict:
        """Gradients of sum(grad * output) w.r.t. the float inputs via Taichi autodiff."""
        fv, tex = ins["fv"], ins["tex"]
        dims = self._dims(fv, tex, s)
        B, F, H, W, P, NT, TH, TW = dims
        f = self._fields(B, F, tex.numel(), P, NT, x, s.texture_type == "uv")
        lst = self.pool.get("lst", ti.i32, max(self.last_pairs, 1))
        diff = [n for n in ("fv", "tex", "uv", "vn") if ins.get(n) is not None]
        for n in diff:
            K.zero(f[n].grad, ins[n].numel())
        K.zero2(f["acc"].grad, B * P)
        K.load_image(grads["image"].reshape(B, 4, P).contiguous(), f["out"].grad, P, 0)
        K.load_image(grads["depth"].reshape(B, 1, P).contiguous(), f["out"].grad, P, 4)
        if x.groups:
            K.zero2(f["accg"].grad, B * P)
            K.load_image(grads["gmask"].reshape(B, x.groups, P).contiguous(), f["outg"].grad, P, 0)
        if x.aux:
            K.load_image(grads["aux"].reshape(B, _AUX_WIDTH, P).contiguous(), f["aux"].grad, P, 0)
            K.auxiliary.grad(*self._aux_args(f, x, dims))
        K.compose.grad(*self._compose_args(f, s, x, dims))
        if x.groups:
            K.compose_groups.grad(*self._groups_args(f, s, x, dims))
        K.accumulate.grad(*self._accumulate_args(f, lst, s, x, dims, det))
        out = {}
        for n in diff:
            g = torch.empty_like(ins[n])
            if g.numel() > 0:
                K.store(f[n].grad, g.reshape(-1), g.numel())
            out[n] = g
        return out


_engines: dict = {}
_call_ids = itertools.count()


def engine_for(dtype: torch.dtype, grad: bool = True) -> _Engine:
    """The (lazily created) engine for a torch float dtype; ``grad=False``: the no-grad path's."""
    key = (dtype, grad)
    if key not in _engines:
        _engines[key] = _Engine(ti.f64 if dtype == torch.float64 else ti.f32, grad)
    return _engines[key]


def _inputs(fv, tex, uvs, vn, nfc, grp):
    return dict(fv=fv, tex=tex, uv=uvs, vn=vn, nfc=nfc, grp=grp)


class _SoftRasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fv, tex, uvs, vn, nfc, grp, settings, extras, det):
        ins = _inputs(fv, tex, uvs, vn, nfc, grp)
        eng = engine_for(fv.dtype)
        owner = next(_call_ids)
        with eng.lock:
            runtime.torch_to_taichi_sync(fv.device)
            image, depth, aux, gmask, face_index = eng.forward(ins, settings, extras, owner, det)
            runtime.taichi_to_torch_sync(fv.device)
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
        eng = engine_for(ins["fv"].dtype)
        grads = dict(image=g_image, depth=g_depth, aux=g_aux, gmask=g_gmask)
        with eng.lock:
            runtime.torch_to_taichi_sync(ins["fv"].device)
            if eng.owner != ctx.owner:  # another call ran since: restore this call's forward state
                eng.forward(ins, ctx.settings, ctx.extras, ctx.owner, ctx.det)
            g = eng.backward(ins, ctx.settings, ctx.extras, grads, ctx.det)
            runtime.taichi_to_torch_sync(ins["fv"].device)
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


@torch.compiler.disable  # Taichi kernels are opaque to TorchDynamo: a clean graph break, not a crash
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
    fv, tex = face_vertices.contiguous(), textures.contiguous()
    det = bool(deterministic)
    diff = [t for t in (fv, tex, uvs, vn) if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in diff):
        image, depth, aux, gmask, face_index = _SoftRasterize.apply(fv, tex, uvs, vn, nfc, grp, s, extras, det)
    else:
        eng = engine_for(fv.dtype, grad=False)
        with eng.lock:
            runtime.torch_to_taichi_sync(fv.device)
            ins = _inputs(*(t.detach() if t is not None else None for t in (fv, tex, uvs, vn, nfc, grp)))
            image, depth, aux, gmask, face_index = eng.forward(ins, s, extras, next(_call_ids), det)
            runtime.taichi_to_torch_sync(fv.device)
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
