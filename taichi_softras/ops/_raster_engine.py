"""Buffers and kernel launches of ``soft_rasterize`` (imported at the first call: it imports Taichi).

One :class:`Engine` per (real dtype, grad mode) holds a grow-only :class:`FieldPool`; engines are
dropped when the runtime adopts a new Taichi runtime (``runtime.on_reset``). Callers hold
``runtime.LOCK`` (``runtime.launch``) around every method.
"""

from __future__ import annotations

import math

import taichi as ti
import torch

from .. import conventions as C
from .. import runtime
from ..kernels import raster as K
from ..kernels import raster_layout as L
from ..kernels.common import load, load_image, load_rgba_depth, store, store_image, store_rgba_depth, zero, zero2, zero_each
from ._binning import bin_items, count_field
from ..spec import AUX_WIDTH, Extras, RasterSettings
from ._buffers import FieldPool, check_budget

ACC_WIDTH, OUT_WIDTH = 7, 5


#: The argument named when the tile-face pairs exceed the budget (binning and the backward's copies).
_PAIRS_ARG = "sigma_val (the cut-off radius) with image_size and the face sizes"


class Engine:
    """Buffers and kernel launches for one real dtype (float32 or float64) and grad mode."""

    def __init__(self, real, grad: bool) -> None:
        self.real = real
        self.grad = grad  # False: the no-grad path allocates no grad buffers
        self.pool = FieldPool()
        self.owner = None  # id of the call whose forward state the fields hold
        self.last_pairs = 0  # tile-face pairs binned by the last forward (tests/benchmarks)
        self._n_pairs = 0
        self._params_key = None  # settings last written to the prm/dims fields

    # -- buffers ---------------------------------------------------------------------------

    @property
    def _real_bytes(self) -> int:
        return 8 if self.real == ti.f64 else 4

    def _plan(self, B, F, tex_numel, P, x, uv: bool) -> None:
        """Refuse calls whose buffers exceed the budget (before anything is allocated)."""
        real = self._real_bytes
        g = 2 if self.grad else 1
        pix = B * P
        needs = {
            "image_size=(H, W) with the batch size": (pix * (real * ((ACC_WIDTH + OUT_WIDTH) * g + 2) + 4), pix * ACC_WIDTH),
            "face_vertices (B, F)": (B * F * (real * (9 * g + L.NS + (6 * g if uv else 0)) + 4 * 12), B * F * L.NS),
            "textures": (tex_numel * real * g, tex_numel),
        }
        if x.groups:
            needs["face_groups (number of groups) with image_size"] = (pix * x.groups * real * 2 * g, pix * x.groups)
        if x.aux:
            needs["outputs (auxiliary channels) with image_size"] = (pix * AUX_WIDTH * real * g, pix * AUX_WIDTH)
        check_budget(needs, "soft_rasterize")

    def _fields(self, B, F, tex_numel, P, x, uv: bool) -> L.Fields:
        g, r, grad = self.pool.get, self.real, self.grad
        G = x.groups

        def used(flag, n):  # optional buffers stay at the pool's minimum until a call needs them
            return n if flag else 1

        return L.Fields(
            fv=g("fv", r, B * F * 9, grad=grad),
            tex=g("tex", r, tex_numel, grad=grad),
            uv=g("uv", r, used(uv, B * F * 6), grad=grad),
            vn=g("vn", r, used(x.normals, B * F * 9), grad=grad),
            nfc=g("nfc", ti.i32, B),
            grp=g("grp", ti.i32, used(G, B * F)),
            fs=g("fs", r, B * F, width=L.NS),
            box=g("box", ti.i32, B * F, width=6),
            pbox=g("pbox", ti.i32, B * F, width=4),
            pm=g("pm", r, B * P),
            psel=g("psel", ti.i32, B * P),
            phard=g("phard", r, B * P),
            pinv=g("pinv", r, B * P),
            acc=g("acc", r, B * P, width=ACC_WIDTH, grad=grad),
            # Group sums are 2-D even for one group (width >= 2 keeps the field's shape (n, width)).
            accg=g("accg", r, used(G, B * P), width=max(G, 2), grad=grad),
            out=g("out", r, B * P, width=OUT_WIDTH, grad=grad),
            outg=g("outg", r, used(G, B * P), width=max(G, 2), grad=grad),
            aux=g("aux", r, used(x.aux, B * P), width=AUX_WIDTH, grad=grad),
            prm=g("prm", r, L.N_PRM),
            dims=g("dims", ti.i32, L.N_DIMS),
        )

    def _set_params(self, f: L.Fields, s: RasterSettings, dims: L.Dims) -> None:
        vals = [0.0] * L.N_PRM
        vals[L.P_SIGMA], vals[L.P_GAMMA], vals[L.P_EPS] = s.sigma_val, s.gamma_val, s.eps
        vals[L.P_NEAR], vals[L.P_FAR] = s.near, s.far
        vals[L.P_THR], vals[L.P_RAD] = s.threshold, math.sqrt(s.threshold)
        vals[L.P_INV_S] = 1.0 / min(s.height, s.width)
        vals[L.P_BG : L.P_BG + 3] = s.background_color
        ints = list(dims)  # L.Dims is laid out like the dims field
        key = (f.prm, f.dims, tuple(vals), tuple(ints))
        if key == self._params_key:  # a training loop repeats its settings: skip two launches
            return
        load(torch.tensor(vals, dtype=torch.float64 if self.real == ti.f64 else torch.float32), f.prm, L.N_PRM)
        load(torch.tensor(ints, dtype=torch.int32), f.dims, L.N_DIMS)
        self._params_key = key

    @staticmethod
    def modes(s: RasterSettings, x: Extras, serial: bool) -> L.Modes:
        return L.Modes(
            dist=C.code("dist_func", s.dist_func), alpha=C.code("aggr_func_alpha", s.aggr_func_alpha),
            rgb=C.code("aggr_func_rgb", s.aggr_func_rgb), texmode=C.code("texture_type", s.texture_type),
            wrap=C.code("texture_wrap", x.wrap), fill_back=s.fill_back, groups=x.groups > 0,
            normals=x.normals, serial=serial,
        )

    @staticmethod
    def _dims(fv, tex, s: RasterSettings, x: Extras) -> L.Dims:
        B, F = fv.shape[:2]
        TH, TW = (tex.shape[2], tex.shape[3]) if s.texture_type == "uv" else (0, 0)
        lgx, lgy = L.tile_grid(s.height, s.width)
        return L.Dims(B, F, s.height, s.width, x.texture_res, TH, TW, lgx, lgy)

    # -- passes ----------------------------------------------------------------------------

    def forward(self, ins: dict, s: RasterSettings, x: Extras, owner, serial: bool):
        """Run the forward pass on ``ins`` (fv, tex, uv, vn, nfc, grp tensors or None).

        Returns image (B, 4, H, W), depth (B, 1, H, W), aux (B, 9, H, W) or None, group masks
        (B, G, H, W) or None, face index (B, H, W) or None."""
        fv, tex = ins["fv"], ins["tex"]
        dims = self._dims(fv, tex, s, x)
        B, F, P, lgx, lgy = dims.B, dims.F, dims.H * dims.W, dims.log_gx, dims.log_gy
        uv = s.texture_type == "uv"
        self._plan(B, F, tex.numel(), P, x, uv)
        f = self._fields(B, F, tex.numel(), P, x, uv)
        self._set_params(f, s, dims)
        for name in ("fv", "tex", "uv", "vn", "nfc", "grp"):
            t = ins.get(name)
            if t is not None and t.numel() > 0:
                load(t.reshape(-1), getattr(f, name), t.numel())
        if B * F > 0:
            K.setup(f, count_field(self.pool, B * F), B * F)
        # Sorted tile lists make the forward bit-repeatable: a serial fill on CPU, a sort on GPUs.
        order_kept = serial or runtime.active_arch() == "cpu"
        bins = bin_items(self.pool, f.box, B * F, F, (1 << lgx, 1 << lgy, 1),
                         B, order_kept, _PAIRS_ARG, counted=True)
        self.last_pairs = self._n_pairs = bins.n_pairs
        lists = L.Lists(bins.off, bins.lst, bins.cell)
        m = self.modes(s, x, serial)
        if x.groups:
            zero2(f.accg, B * P)
        K.rasterize(f, lists, m, B << (lgx + lgy))
        K.compose(f, m, B * P)
        if x.groups:
            K.compose_groups(f, m, B * P, x.groups)
        if x.aux:
            zero2(f.aux, B * P)
            K.auxiliary(f, m, B * P)
        self.owner = owner
        image = torch.empty(B, 4, P, dtype=fv.dtype, device=fv.device)
        depth = torch.empty(B, 1, P, dtype=fv.dtype, device=fv.device)
        store_rgba_depth(f.out, image, depth, P)
        aux = gmask = face_index = None
        H, W = s.height, s.width
        if x.aux:
            aux = torch.empty(B, AUX_WIDTH, P, dtype=fv.dtype, device=fv.device)
            store_image(f.aux, aux, P, 0)
            face_index = torch.empty(B * P, dtype=torch.int32, device=fv.device)
            store(f.psel, face_index, B * P)
            face_index = face_index.reshape(B, H, W).long()
            aux = aux.reshape(B, AUX_WIDTH, H, W)
        if x.groups:
            gmask = torch.empty(B, x.groups, P, dtype=fv.dtype, device=fv.device)
            store_image(f.outg, gmask, P, 0)
            gmask = gmask.reshape(B, x.groups, H, W)
        self._last = f, lists
        return image.reshape(B, 4, H, W), depth.reshape(B, 1, H, W), aux, gmask, face_index

    def backward(self, ins: dict, s: RasterSettings, x: Extras, grads: dict, serial: bool) -> dict:
        """Gradients of sum(grad * output) w.r.t. the float inputs via Taichi autodiff."""
        fv = ins["fv"]
        dims = self._dims(fv, ins["tex"], s, x)
        B, P = dims.B, dims.H * dims.W
        f, lists = self._last
        m = self.modes(s, x, serial)
        diff = [n for n in ("fv", "tex", "uv", "vn") if ins.get(n) is not None]
        for n in diff:
            zero(getattr(f, n).grad, ins[n].numel())
        zero2(f.acc.grad, B * P)
        load_rgba_depth(grads["image"].reshape(B, 4, P).contiguous(), grads["depth"].reshape(B, 1, P).contiguous(), f.out.grad, P)
        if x.groups:
            zero2(f.accg.grad, B * P)
            load_image(grads["gmask"].reshape(B, x.groups, P).contiguous(), f.outg.grad, P, 0)
        if x.aux:
            load_image(grads["aux"].reshape(B, AUX_WIDTH, P).contiguous(), f.aux.grad, P, 0)
            K.auxiliary.grad(f, m, B * P)
        K.compose.grad(f, m, B * P)
        if x.groups:
            K.compose_groups.grad(f, m, B * P, x.groups)
        if self._n_pairs:
            n = self._n_pairs
            check_budget({_PAIRS_ARG: (n * 9 * 2 * self._real_bytes, n)}, "soft_rasterize's backward")
            pv = tuple(self.pool.get(f"pv{j}", self.real, n, grad=True) for j in range(9))
            K.gather_corners(f, lists, pv, n)
            zero_each(tuple(v.grad for v in pv), n)
            K.accumulate.grad(f, lists, pv, m, n)
            K.gather_corners.grad(f, lists, pv, n)
        if s.aggr_func_rgb == "hard":
            K.accumulate_chosen.grad(f, m, B * P)
        out = {}
        for n in diff:
            g = torch.empty_like(ins[n])
            if g.numel() > 0:
                store(getattr(f, n).grad, g.reshape(-1), g.numel())
            out[n] = g
        return out


_engines: dict = {}
runtime.on_reset(_engines.clear)


def engine_for(dtype: torch.dtype, grad: bool = True) -> Engine:
    """The (lazily created) engine for a torch float dtype; ``grad=False``: the no-grad path's."""
    key = (dtype, grad)
    if key not in _engines:
        _engines[key] = Engine(ti.f64 if dtype == torch.float64 else ti.f32, grad)
    return _engines[key]
