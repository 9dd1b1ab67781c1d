"""Seeded property-based fuzz of ``soft_rasterize`` against the dense reference.

Cases: 0-6 faces per mesh (batch 1 or 2, sometimes ragged) of these kinds: generic, collinear,
zero-area (one point), two coincident vertices, z within 1e-6 of ``near`` or a few float32 ulps
around it (straddling it), z within 1e-6 * far of ``far``, one or more vertices at or behind the eye,
huge (x, y up to ~1e7) and tiny (sizes down to 1e-12) faces, vertices snapped onto pixel centres
(edges through pixel centres); coordinates both from hypothesis's boundary-seeking floats and spread
evenly;
sigma and gamma log-uniform in [1e-12, 1]; every dist_func, aggr_func_alpha, aggr_func_rgb,
texture_type (surface, vertex, uv) and fill_back; float32 and float64; image sizes 1-10 per side.

Property, per case:
* finite: every output and gradient element the float64 reference gives finite is finite;
* agreement: on the elements where the reference is well conditioned (below), the op matches the
  float64 reference within the project's tolerances (float64: 1e-9; float32: alpha 1e-5, RGB and
  depth 1e-3; depth relative to max(1, |depth|)); float64 gradients, where well conditioned, within
  a relative 1e-3 (the agreement tests' bound).

Conditioning (how an element is judged well conditioned, i.e. compared):
* ensemble: the float64 reference is evaluated again on ``JITTERS`` copies of the case whose inputs
  are moved by up to ``JITTER_ULPS`` units of the tested dtype's rounding (x, y by that times
  max(|x|, the largest pixel coordinate); z relatively; four copies translate x, y by +-1 unit
  along each axis and scale every z by -+1 unit, the rest move each coordinate at random), and with
  sigma and gamma moved up and down; with hard alpha also with dist_func='hard' (D > 0.5 exactly
  inside, which the sigmoid in float64 no longer resolves within 1e-16 of an edge). An element is
  compared only where every evaluation stays within a quarter of its tolerance of the reference.
  This excludes what no implementation in that dtype can resolve: a pixel centre on an edge in a
  hard mode, d^2 / sigma with sigma = 1e-12, the skip threshold's step of dist_eps in D, depths on
  near or far.
* degenerate faces: a face whose determinant is within JITTER_ULPS units of rounding of zero
  (collinear, two coincident corners) has barycentrics that rounding decides, so the pixels in its
  grown box are not compared (finiteness still is).
* softmax colours carry z_n's rounding amplified by 1 / gamma, which moving the inputs does not
  model: RGB and depth are compared only where that bound, 4 ulp * (far + 3 z_max) / (far - near) /
  gamma, is within a quarter of the RGB tolerance.
* gradients (per input) are compared where the reference's is finite and non-zero and every
  ensemble member's is within a relative 1e-4 of it.

The kernel defects the fuzz found (near/far-plane NaN, NaN gradients of short edges and of faint
faces, precision lost on long edges, hard alpha just inside an edge) are fixed; each keeps a
regression test below.

Running this file as a script fuzzes ``--cases`` cases without stopping at the first failure and
prints the failures by kind: the fuzz figures.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from taichi_softras import conventions as C
from taichi_softras import soft_rasterize
from taichi_softras.reference.rasterize import soft_rasterize as reference

#: Absolute tolerances per dtype and output (depth: relative to max(1, |depth|)).
TOLERANCES = {
    torch.float64: dict(alpha=1e-9, rgb=1e-9, depth=1e-9),
    torch.float32: dict(alpha=1e-5, rgb=1e-3, depth=1e-3),
}
#: Relative gradient tolerance, and the jittered copies' spread below which gradients are compared.
GRAD_TOL, GRAD_SPREAD = 1e-3, 1e-4
JITTERS = 12
#: The full fuzz's seed (shared by the test and the counting script).
FUZZ_SEED = 13
JITTER_ULPS = 16.0

MODES = list(
    itertools.product(C.DIST_FUNCS, C.AGGR_FUNCS_ALPHA, C.AGGR_FUNCS_RGB, C.RASTER_TEXTURE_TYPES, (True, False))
)
#: The default slice's modes: every pair of values of two mode arguments appears (compiling all of
#: MODES' kernel variants takes minutes; the slow suite runs them all).
PAIRWISE_MODES = [
    ("euclidean", "prod", "softmax", "surface", True),
    ("euclidean", "sum", "softmax", "vertex", False),
    ("euclidean", "hard", "hard", "uv", True),
    ("barycentric", "prod", "hard", "vertex", True),
    ("barycentric", "sum", "softmax", "uv", True),
    ("barycentric", "hard", "softmax", "surface", False),
    ("hard", "prod", "softmax", "uv", False),
    ("hard", "sum", "hard", "surface", False),
    ("hard", "hard", "softmax", "vertex", True),
]
FACE_KINDS = (
    "generic", "collinear", "point", "coincident", "near_plane", "near_plane_ulps", "far_plane", "behind", "huge", "tiny",
    "on_pixels",
)


@dataclass
class Case:
    """One fuzz case; ``repr`` is a runnable reproducer."""

    fv: list  # (B, F, 3, 3) nested floats (rounded to ``dtype`` on use)
    dtype: str  # "float32" | "float64"
    kw: dict  # soft_rasterize keywords (modes, sizes, sigma, gamma, ...)
    seed: int  # textures, UVs and loss weights
    ragged: list | None = None  # num_faces

    def __repr__(self) -> str:
        return f"Case(fv={self.fv!r}, dtype={self.dtype!r}, kw={self.kw!r}, seed={self.seed}, ragged={self.ragged!r})"


@dataclass
class Report:
    """What one case found: failures (empty: it holds) and how much of it could be compared."""

    failures: list = field(default_factory=list)
    compared: int = 0
    elements: int = 0
    grads_compared: int = 0  # inputs whose gradients were compared


# --- cases ---------------------------------------------------------------------------------------
def real(lo: float, hi: float):
    """Floats in [lo, hi]: hypothesis's (biased to boundaries, tiny and 'nasty' values) or evenly spread."""
    return st.floats(lo, hi) | st.integers(0, 2**20).map(lambda k: lo + (hi - lo) * k / 2**20)


coord = real(-1.6, 1.6)
depth = real(0.2, 8.0)  # near is 1 or 0.1, far 100 or 5: some faces cross near or far


@st.composite
def faces(draw, near: float, far: float, height: int, width: int):
    """One face (3 vertices [x, y, z]) of a random kind."""
    kind = draw(st.sampled_from(FACE_KINDS + ("near_plane_ulps",) * 2))  # the NaN: drawn 3x as often
    v = [[draw(coord), draw(coord), draw(depth)] for _ in range(3)]
    if kind == "collinear":
        t = draw(real(-1.0, 2.0))
        v[2][:2] = [v[0][i] + t * (v[1][i] - v[0][i]) for i in range(2)]
    elif kind == "point":
        v[1][:2] = v[2][:2] = v[0][:2]
    elif kind == "coincident":
        v[1] = list(v[0])
    elif kind == "near_plane":
        for c in v:
            c[2] = near + draw(real(-1e-6, 1e-6))
    elif kind == "near_plane_ulps":  # a few float32 ulps around near, like the NaN of test_depth_bound_examples
        for c in v:
            c[2] = near * (1.0 + draw(st.integers(-8, 8)) * 2.0**-23)
    elif kind == "far_plane":
        for c in v:
            c[2] = far * (1.0 + draw(real(-1e-6, 1e-6)))
    elif kind == "behind":
        for i in draw(st.sets(st.integers(0, 2), min_size=1)):
            v[i][2] = draw(st.sampled_from([0.0, C.Z_CULL, -1.0]) | real(-3.0, 2e-6))
    elif kind == "huge":
        s = 10.0 ** draw(real(2.0, 7.0))
        for c in v:
            c[0], c[1] = c[0] * s, c[1] * s
            if draw(st.booleans()):
                c[2] *= s
    elif kind == "tiny":
        s = 10.0 ** -draw(real(3.0, 12.0))
        for c in v[1:]:
            c[0], c[1] = v[0][0] + s * c[0], v[0][1] + s * c[1]
    elif kind == "on_pixels":  # vertices on pixel centres (or corners): edges run through centres
        n = min(height, width)
        for c in v:
            c[0] = (draw(st.integers(-2, 2 * width + 1)) - width) / n
            c[1] = (height - draw(st.integers(-2, 2 * height + 1))) / n
    return v


@st.composite
def cases(draw, modes=st.sampled_from(MODES)):
    dist, alpha, rgb, texture_type, fill_back = draw(modes)
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    near, far = draw(st.sampled_from([(1.0, 100.0), (1.0, 5.0), (0.1, 100.0)]))
    b, f = draw(st.integers(1, 2)), draw(st.integers(0, 6))
    fv = [[draw(faces(near, far, h, w)) for _ in range(f)] for _ in range(b)]
    kw = dict(
        image_size=(h, w),
        near=near,
        far=far,
        fill_back=fill_back,
        sigma_val=10.0 ** draw(real(-12.0, 0.0)),
        gamma_val=10.0 ** draw(real(-12.0, 0.0)),
        dist_func=dist,
        aggr_func_alpha=alpha,
        aggr_func_rgb=rgb,
        texture_type=texture_type,
    )
    if texture_type == "surface":
        kw["texture_res"] = draw(st.integers(1, 3))
    elif texture_type == "uv":
        kw["texture_hw"] = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        kw["texture_wrap"] = draw(st.sampled_from(C.TEXTURE_WRAPS))
    ragged = [f, draw(st.integers(0, f))] if b == 2 and draw(st.booleans()) else None
    return Case(fv=fv, dtype=draw(st.sampled_from(["float32", "float64"])), kw=kw, seed=draw(st.integers(0, 2**31 - 1)), ragged=ragged)


# --- running a case ------------------------------------------------------------------------------
def materialize(case: Case):
    """The case's tensors in its dtype: ``(fv, textures, kwargs, weights)`` (UVs in kwargs).

    kwargs are soft_rasterize's (with return_depth=True); weights ``(B, 5, H, W)`` multiply rgba and
    depth in the loss whose gradients are checked."""
    dtype = getattr(torch, case.dtype)
    g = torch.Generator().manual_seed(case.seed)
    b, f = len(case.fv), len(case.fv[0])
    fv = torch.tensor(case.fv, dtype=torch.float64).reshape(b, f, 3, 3).to(dtype)
    kw = dict(case.kw)
    texture_type = kw["texture_type"]
    res, hw = kw.pop("texture_res", 1), kw.pop("texture_hw", None)
    uvs = None
    if texture_type == "uv":
        tex = torch.rand(b, 3, *hw, generator=g, dtype=torch.float64)
        uvs = (torch.rand(b, f, 3, 2, generator=g, dtype=torch.float64) * 2 - 0.5).to(dtype)
    else:
        tex = torch.rand(b, f, 3 if texture_type == "vertex" else res * res, 3, generator=g, dtype=torch.float64)
    h, w = kw["image_size"]
    weights = torch.rand(b, 5, h, w, generator=g, dtype=torch.float64)
    weights[:, 4] /= kw["far"]
    kw["background_color"] = tuple(torch.rand(3, generator=g, dtype=torch.float64).tolist())
    kw["return_depth"] = True
    if uvs is not None:
        kw["uvs"] = uvs
    if case.ragged is not None:
        kw["num_faces"] = torch.tensor(case.ragged)
    return fv, tex.to(dtype), kw, weights


class _Run:
    """One forward of ``fn`` (kept for backward): ``out`` (B, 5, H, W) = rgba and depth, float64.

    ``copies`` > 1 stacks that many copies of the batch (the jittered ensemble); ``jitter`` maps
    the stacked float64 face vertices to the moved ones."""

    def __init__(self, fn, fv, tex, kw, grad: bool = True, copies: int = 1, jitter=None):
        kw = dict(kw)
        self.copies = copies
        tile = lambda t: t.repeat(copies, *([1] * (t.ndim - 1)))  # noqa: E731
        self.leaves = dict(fv=tile(fv).requires_grad_(grad), textures=tile(tex).requires_grad_(grad))
        if "uvs" in kw:
            self.leaves["uvs"] = kw["uvs"] = tile(kw["uvs"]).requires_grad_(grad)
        if "num_faces" in kw:
            kw["num_faces"] = tile(kw["num_faces"])
        moved = self.leaves["fv"] if jitter is None else jitter(self.leaves["fv"])
        img, dep = fn(moved, self.leaves["textures"], **kw)
        self.raw = torch.cat([img, dep], dim=1)
        self.out = self.raw.detach().double()

    def grads(self, weights: torch.Tensor, retain: bool = False) -> dict:
        """Gradients of sum(weights * out) (non-finite outputs left out of the sum) per input."""
        loss = (self.raw * weights.to(self.raw.dtype).repeat(self.copies, 1, 1, 1)).nansum()
        if not loss.requires_grad:  # no faces: the reference's output is a constant
            return {n: torch.zeros_like(t) for n, t in self.leaves.items()}
        gs = torch.autograd.grad(loss, list(self.leaves.values()), retain_graph=retain, allow_unused=True)
        return {n: torch.zeros_like(self.leaves[n]) if g is None else g for n, g in zip(self.leaves, gs)}

    def copy_grads(self, weights: torch.Tensor) -> list:
        """``grads`` split into one dict per copy."""
        g = self.grads(weights)
        return [{n: t.reshape(self.copies, t.shape[0] // self.copies, *t.shape[1:])[i] for n, t in g.items()} for i in range(self.copies)]


def _jitter(case: Case, b: int):
    """The ensemble's move of stacked face vertices (JITTERS * B, F, 3, 3), by up to JITTER_ULPS
    units of the case dtype's rounding: x, y times max(|x|, the largest pixel coordinate), z
    relatively. Copies 0-3 translate x, y by +-1 unit along each axis and scale every z by 1 -+ 1
    unit (decisions on z against near and far); the rest move each coordinate at random."""
    eps = torch.finfo(getattr(torch, case.dtype)).eps * JITTER_ULPS
    h, w = case.kw["image_size"]
    span = max(h, w) / min(h, w)
    f = len(case.fv[0])
    g = torch.Generator().manual_seed(case.seed)
    u = torch.rand(JITTERS, b, f, 3, 3, generator=g, dtype=torch.float64) * 2 - 1
    structured = torch.tensor([[1, 0, -1], [-1, 0, 1], [0, 1, 1], [0, -1, -1]], dtype=torch.float64)
    u[:4] = structured.view(4, 1, 1, 1, 3)
    u = u.reshape(JITTERS * b, f, 3, 3)

    def move(fv):
        xy = fv[..., :2] + u[..., :2] * eps * fv[..., :2].detach().abs().clamp(min=span)
        return torch.cat([xy, fv[..., 2:] * (1 + u[..., 2:] * eps)], dim=-1)

    return move


def _where(mask: torch.Tensor) -> str:
    idx = mask.nonzero()
    return f"{idx.shape[0]} elements, first at {tuple(idx[0].tolist())}" if idx.numel() else "none"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b).norm() / b.norm().clamp(min=1e-300))


def _limits(case: Case, ref: _Run) -> torch.Tensor:
    """Per output element (B, 5, H, W), its tolerance."""
    tol = TOLERANCES[getattr(torch, case.dtype)]
    limit = torch.tensor([tol["rgb"]] * 3 + [tol["alpha"], tol["depth"]], dtype=torch.float64).view(1, 5, 1, 1)
    limit = limit.expand_as(ref.out).clone()
    limit[:, 4] *= ref.out[:, 4].abs().clamp(min=1.0)
    return limit


def _near_degenerate_faces(case: Case, fv64: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H, W) True at pixels in the grown box of a face whose determinant rounding decides."""
    eps = torch.finfo(getattr(torch, case.dtype)).eps * JITTER_ULPS
    x, y = fv64[..., 0], fv64[..., 1]  # (B, F, 3)
    a = (y[..., 1] - y[..., 2]) * (x[..., 0] - x[..., 2])
    b = (x[..., 2] - x[..., 1]) * (y[..., 0] - y[..., 2])
    scale = a.abs() + b.abs()
    degenerate = (scale > 0) & ((a + b).abs() <= eps * scale)  # (B, F); one point (scale 0) is exact
    span = max(h, w) / min(h, w)
    grow = C.dist_threshold(case.kw["sigma_val"], C.DIST_EPS) ** 0.5 * 1.01 + eps * max(span, float(fv64[..., :2].abs().max()) if fv64.numel() else 0.0)
    xs, ys = (torch.tensor(v, dtype=torch.float64) for v in C.pixel_centres(h, w))
    in_x = (xs.view(1, 1, 1, w) >= x.amin(-1)[..., None, None] - grow) & (xs.view(1, 1, 1, w) <= x.amax(-1)[..., None, None] + grow)
    in_y = (ys.view(1, 1, h, 1) >= y.amin(-1)[..., None, None] - grow) & (ys.view(1, 1, h, 1) <= y.amax(-1)[..., None, None] + grow)
    return (in_x & in_y & degenerate[..., None, None]).any(1)


def _on_an_edge(case: Case, fv64: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H, W) True at pixels some face's edge passes within rounding of: a barycentric whose
    magnitude is below the rounding of the terms it is computed from, so any two correct
    implementations may disagree on inside (moving the inputs by ulps does not show it: the
    rounding of 1 - w0 - w1 does not move with them)."""
    eps = torch.finfo(getattr(torch, case.dtype)).eps * JITTER_ULPS
    xs, ys = (torch.tensor(v, dtype=torch.float64) for v in C.pixel_centres(h, w))
    py, px = (t.reshape(1, 1, -1) for t in torch.meshgrid(ys, xs, indexing="ij"))
    x = [fv64[:, :, i, 0, None] for i in range(3)]
    y = [fv64[:, :, i, 1, None] for i in range(3)]
    det = (y[1] - y[2]) * (x[0] - x[2]) + (x[2] - x[1]) * (y[0] - y[2])
    det = torch.where(det >= 0, det.clamp(min=C.DET_EPS), det.clamp(max=-C.DET_EPS))
    n0, m0 = (y[1] - y[2]) * (px - x[2]), (x[2] - x[1]) * (py - y[2])
    n1, m1 = (y[2] - y[0]) * (px - x[2]), (x[0] - x[2]) * (py - y[2])
    w0, w1 = (n0 + m0) / det, (n1 + m1) / det
    err = eps * (1 + w0.abs() + w1.abs() + (n0.abs() + m0.abs() + n1.abs() + m1.abs()) / det.abs())
    near = (w0.abs() <= err) | (w1.abs() <= err) | ((1 - w0 - w1).abs() <= err)  # (B, F, P)
    r = C.dist_threshold(case.kw["sigma_val"], C.DIST_EPS) ** 0.5 * 1.01
    xx, yy = torch.cat(x, -1), torch.cat(y, -1)  # (B, F, 3)
    in_box = ((px >= xx.amin(-1, keepdim=True) - r) & (px <= xx.amax(-1, keepdim=True) + r)
              & (py >= yy.amin(-1, keepdim=True) - r) & (py <= yy.amax(-1, keepdim=True) + r))  # only these faces count
    return (near & in_box).any(1).reshape(fv64.shape[0], h, w)


def _conditioned(case: Case, ref: _Run, ensemble: list, limit: torch.Tensor, kw: dict) -> torch.Tensor:
    """Which output elements (B, 5, H, W) are well conditioned (see the module docstring)."""
    dtype = getattr(torch, case.dtype)
    b, _, h, w = ref.out.shape
    spread = torch.zeros_like(ref.out)
    for run, channels in ensemble:
        diff = (run.out.reshape(-1, *ref.out.shape) - ref.out).abs().amax(0)
        spread[:, channels] = torch.maximum(spread[:, channels], diff[:, channels])
    ok = torch.isfinite(ref.out) & (spread <= limit / 4)
    ok &= ~_near_degenerate_faces(case, ref.leaves["fv"].detach(), h, w)[:, None]
    ok &= ~_on_an_edge(case, ref.leaves["fv"].detach(), h, w)[:, None]
    if kw["aggr_func_rgb"] == "softmax" and ref.out.numel() and len(case.fv[0]):
        z_max = min(float(ref.leaves["fv"][..., 2].detach().abs().max()), kw["far"])
        zn_err = 4 * torch.finfo(dtype).eps * (kw["far"] + 3 * z_max) / (kw["far"] - kw["near"]) / kw["gamma_val"]
        if zn_err > TOLERANCES[dtype]["rgb"] / 4:
            ok[:, [0, 1, 2, 4]] = False
    return ok


ALL_CHANNELS, ALPHA = slice(0, 5), slice(3, 4)


def _ensemble(case: Case, fv64, tex64, kw64, grad: bool) -> list:
    """The reference's evaluations on moved inputs: ``[(run, channels it speaks for)]``."""
    eps = torch.finfo(getattr(torch, case.dtype)).eps * JITTER_ULPS
    runs = [(_Run(reference, fv64, tex64, kw64, grad=grad, copies=JITTERS, jitter=_jitter(case, fv64.shape[0])), ALL_CHANNELS)]
    for sign in (1, -1):
        moved = dict(kw64, sigma_val=kw64["sigma_val"] * (1 + sign * eps), gamma_val=kw64["gamma_val"] * (1 - sign * eps))
        runs.append((_Run(reference, fv64, tex64, moved, grad=grad), ALL_CHANNELS))
    if kw64["aggr_func_alpha"] == "hard" and kw64["dist_func"] != "hard":
        runs.append((_Run(reference, fv64, tex64, dict(kw64, dist_func="hard"), grad=False), ALPHA))
    return runs


def check_case(case: Case) -> Report:
    """Run the op and the reference on ``case``; return what disagrees (see the module docstring)."""
    dtype = getattr(torch, case.dtype)
    fv, tex, kw, weights = materialize(case)
    fv64, tex64 = fv.double(), tex.double()
    kw64 = {k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in kw.items()}
    grads64 = dtype == torch.float64  # gradients are compared in float64 only (finite: both)
    ref = _Run(reference, fv64, tex64, kw64)
    ensemble = _ensemble(case, fv64, tex64, kw64, grads64)
    limit = _limits(case, ref)
    ok = _conditioned(case, ref, ensemble, limit, kw)
    masked = weights * ok
    op = _Run(soft_rasterize, fv, tex, kw)
    failures = []

    bad = torch.isfinite(ref.out) & ~torch.isfinite(op.out)
    if bad.any():
        failures.append(f"non-finite output where the reference is finite: {_where(bad)}")
    err = (op.out - ref.out).abs()
    over = ok & ~(err <= limit)
    for name, chans in (("rgb", [0, 1, 2]), ("alpha", [3]), ("depth", [4])):
        o = over[:, chans]
        if o.any():
            worst = float(err[:, chans][o].max())
            tol = TOLERANCES[dtype][name]
            failures.append(f"{name} differs from the reference by up to {worst:.3g} (tolerance {tol:g}): {_where(o)}")

    ref_full, op_full = ref.grads(weights, retain=grads64), op.grads(weights, retain=grads64)
    for n in ref_full:
        bad = torch.isfinite(ref_full[n]) & ~torch.isfinite(op_full[n])
        if bad.any():
            failures.append(f"non-finite gradient of {n} where the reference's is finite: {_where(bad)}")
    compared = 0
    if grads64:
        ref_part, op_part = ref.grads(masked), op.grads(masked)
        members = [g for run, channels in ensemble if channels == ALL_CHANNELS for g in run.copy_grads(masked)]
        for n, g in ref_part.items():
            if not (bool(torch.isfinite(g).all()) and g.norm() > 0 and all(_rel(m[n], g) <= GRAD_SPREAD for m in members)):
                continue
            compared += 1
            r = _rel(op_part[n], g)
            if not r <= GRAD_TOL:
                failures.append(f"gradient of {n} differs from the reference's by a relative {r:.3g} (tolerance {GRAD_TOL:g})")

    return Report(failures=failures, compared=int(ok.sum()), elements=ok.numel(), grads_compared=compared)


def assert_holds(case: Case) -> None:
    rep = check_case(case)
    assert not rep.failures, "\n".join(rep.failures) + f"\nreproduce: check_case({case!r})"


# --- tests ---------------------------------------------------------------------------------------
def fuzz_settings(cases: int) -> settings:
    return settings(max_examples=cases, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_pairwise_modes_cover_every_pair():
    for i, j in itertools.combinations(range(5), 2):
        assert {(m[i], m[j]) for m in PAIRWISE_MODES} == {(m[i], m[j]) for m in MODES}


@fuzz_settings(100)
@given(case=cases(modes=st.sampled_from(PAIRWISE_MODES)))
def test_fuzz_slice(case):
    """The default run's slice of the fuzz: the full fuzz's property on PAIRWISE_MODES."""
    assert_holds(case)


@pytest.mark.slow
@seed(FUZZ_SEED)
@fuzz_settings(1000)
@given(case=cases())
def test_fuzz_full(case):
    """The full fuzz (``python tests/test_fuzz_rasterize.py`` runs the same draws, counting)."""
    assert_holds(case)


@pytest.mark.slow
@pytest.mark.parametrize("modes", MODES, ids=lambda m: "-".join(str(x) for x in m) if isinstance(m, tuple) else None)
@fuzz_settings(3)
@given(data=st.data())
def test_fuzz_every_mode(modes, data):
    """Every dist_func x aggr_func_alpha x aggr_func_rgb x texture_type x fill_back, both dtypes
    (the random fuzz may miss a combination)."""
    for dtype in ("float32", "float64"):
        case = data.draw(cases(modes=st.just(modes)))
        case.dtype = dtype
        assert_holds(case)


# --- regression cases ----------------------------------------------------------------------------
#: float32 faces straddling the near plane gave NaN colour and gradients (float64 and the reference
#: finite); the issue's example (image 7, sigma 1e-4).
NEAR_PLANE_FV = [[[-0.29093471, -0.23648316, 0.99999952], [0.71097904, 0.68758082, 1.00000024], [0.71044934, 0.53553933, 1.00000048]]]
#: The far plane's counterpart, found by the fuzz (image (2, 10), far 5, gamma 1e-12).
FAR_PLANE_FV = [[[-1.5980621337890626, 0.38280859277970514, 3.720084335442076], [-1.18128662109375, 1.3088486892978937, 1.5763558828619229], [0.0, 0.0, 6.255070780461153]]]
DEPTH_BOUND_CASES = {
    f"near-{dist}-{alpha}-sigma{sigma:g}": (NEAR_PLANE_FV, dict(image_size=(7, 7), far=100.0, sigma_val=sigma, gamma_val=1e-4, dist_func=dist, aggr_func_alpha=alpha))
    for sigma in (1e-12, 1e-4, 1.0)
    for dist, alpha in (("euclidean", "prod"), ("barycentric", "sum"))
}
DEPTH_BOUND_CASES["far"] = (FAR_PLANE_FV, dict(image_size=(2, 10), far=5.0, sigma_val=2.5e-3, gamma_val=1e-12, dist_func="euclidean", aggr_func_alpha="prod"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(DEPTH_BOUND_CASES))
def test_depth_bound_examples(dtype, name):
    fv, kw = DEPTH_BOUND_CASES[name]
    kw = dict(kw, near=1.0, fill_back=True, aggr_func_rgb="softmax", texture_type="surface")
    assert_holds(Case(fv=[fv], dtype=dtype, kw=kw, seed=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_edge_distance(dtype, request):
    """Pixel centres on the edge x = 0 of a face with 2e4-long edges have d = 0, so D = 0.5 (alpha
    0.5); float32 gets 0.155 and 0.474 (sigma 1e-6): the closest point a + t e carries t's rounding
    times |e| ~ 1e-3 (a perpendicular-distance form would not)."""
    kw = dict(image_size=(3, 3), near=1.0, far=100.0, fill_back=True, sigma_val=1e-6, gamma_val=1e-2,
              dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="softmax", texture_type="surface")
    assert_holds(Case(fv=[[[[0.0, -1e4, 2.0], [0.0, 1e4, 2.0], [-1e4, 0.0, 2.0]]]], dtype=dtype, kw=kw, seed=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dist_func", ["euclidean", "barycentric"])
def test_hard_alpha_just_inside_an_edge(dtype, dist_func, request):
    """The pixel centre (0, 0) is 1e-5 inside the top edge, so D > 0.5 and hard alpha is 1; in
    float32 sigmoid(d^2 / sigma) = sigmoid(1e-10) rounds to 0.5 and the kernel's D > 0.5 test says 0
    (xs > 0, i.e. inside, decides it exactly)."""
    kw = dict(image_size=(1, 1), near=1.0, far=100.0, fill_back=True, sigma_val=1.0, gamma_val=1e-2,
              dist_func=dist_func, aggr_func_alpha="hard", aggr_func_rgb="softmax", texture_type="surface")
    assert_holds(Case(fv=[[[[-1.0, 1e-5, 2.0], [1.0, 1e-5, 2.0], [0.0, -1.0, 2.0]]]], dtype=dtype, kw=kw, seed=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_short_edge_gradients(dtype, request):
    """A face with 1e-10-long legs at the origin: the reference's gradients are finite, float32's
    vertex gradients NaN (1 / |edge|^2 terms of the segment projection overflow)."""
    kw = dict(image_size=(4, 4), near=1.0, far=100.0, fill_back=True, sigma_val=1.0, gamma_val=1e-2,
              dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="softmax", texture_type="surface")
    assert_holds(Case(fv=[[[[0.0, 0.0, 2.0], [1e-10, 0.0, 2.0], [0.0, 1e-10, 2.0]]]], dtype=dtype, kw=kw, seed=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("gamma_val", [1.2e-5, 1.78e-5])
def test_faint_face_gradients(dtype, gamma_val, request):
    """A face at depth 100 = far (z_n = 0, below eps = 1e-3) alone on the pixel: its softmax weight
    is exp(-eps / gamma) ~ e^-56 (e^-83) of the background's; its vertex gradients are ~1e-23 in the
    reference, NaN in float32 (gamma 1e-5 and 3e-5 are fine)."""
    kw = dict(image_size=(1, 1), near=1.0, far=100.0, fill_back=True, sigma_val=1.0, gamma_val=gamma_val,
              dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="softmax", texture_type="surface")
    assert_holds(Case(fv=[[[[0.0, 0.0, 100.0], [0.0, -1.6, 100.0], [0.5, 1.0, 100.0]]]], dtype=dtype, kw=kw, seed=0))


def test_empty_uv_texture_is_a_clear_error_not_a_crash():
    """An empty UV image used to kill the process with SIGFPE: run it in a child process."""
    code = textwrap.dedent(
        """
        import torch
        from taichi_softras import soft_rasterize
        fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]])
        uvs = torch.rand(1, 1, 3, 2)
        try:
            soft_rasterize(fv, torch.zeros(1, 3, 0, 0), image_size=8, texture_type="uv", uvs=uvs)
        except ValueError as e:
            print("ValueError:", e)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"child exited with {proc.returncode}: {proc.stderr[-2000:]}"
    assert "ValueError:" in proc.stdout and "textures" in proc.stdout


# --- the fuzz figures ----------------------------------------------------------------------------
def _main() -> None:
    import argparse
    import collections

    from hypothesis import Phase
    from tqdm import tqdm

    from taichi_softras import runtime

    parser = argparse.ArgumentParser(description="Fuzz soft_rasterize; print the failures by kind.")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--show", type=int, default=3, help="reproducers printed per failure kind")
    args = parser.parse_args()
    runtime.ensure_initialized()
    kinds, examples, stats = collections.Counter(), collections.defaultdict(list), collections.Counter()
    bar = tqdm(total=args.cases, desc="fuzz cases")

    # The suite's draws (derandomized, as tests/conftest.py's profile), without stopping at a failure.
    @seed(FUZZ_SEED)
    @settings(max_examples=args.cases, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def collect(case):
        rep = check_case(case)
        bar.update()
        stats["cases"] += 1
        stats["compared"] += rep.compared
        stats["elements"] += rep.elements
        stats["grads_compared"] += rep.grads_compared
        stats[f"failing {case.dtype}"] += bool(rep.failures)
        for msg in rep.failures:
            kind = f"{case.dtype}: {msg.split(':')[0].split(' by ')[0]}"
            kinds[kind] += 1
            if len(examples[kind]) < args.show:
                examples[kind].append(case)

    collect()
    bar.close()
    print(f"cases: {stats['cases']}; failing: float32 {stats['failing float32']}, float64 {stats['failing float64']}")
    print(f"output elements compared: {stats['compared']} of {stats['elements']}; gradients compared (float64): {stats['grads_compared']}")
    for kind, n in kinds.most_common():
        print(f"\n{n} x {kind}")
        for case in examples[kind]:
            print(f"  {case!r}")


if __name__ == "__main__":
    _main()
