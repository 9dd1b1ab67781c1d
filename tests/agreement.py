"""Shared helpers of the agreement tests: random scenes, the modes, gradient comparison, and the
pixels where float32 rounding cannot flip a discrete decision (for comparing float32 kernels with the
float64 reference in the hard modes)."""

from __future__ import annotations

import dataclasses
import itertools

import torch

from taichi_softras.spec import RasterSettings, check_inputs
from taichi_softras.reference import rasterize as R

MODES = list(
    itertools.product(
        ["euclidean", "barycentric", "hard"],  # dist_func
        ["prod", "sum", "hard"],  # aggr_func_alpha
        ["softmax", "hard"],  # aggr_func_rgb
    )
)


def random_scene(seed, dtype=torch.float64, batch=2, faces=9):
    """Random triangles around the image, depths in [1.5, 4.5], random sigma/gamma and options."""
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(batch, faces, 3, 3, generator=g, dtype=dtype) * 2.4 - 1.2
    fv[..., 2] = torch.rand(batch, faces, 3, generator=g, dtype=dtype) * 3 + 1.5
    texture_type = ["surface", "vertex"][seed % 2]
    t = 3 if texture_type == "vertex" else [1, 4, 9][seed % 3]
    tex = torch.rand(batch, faces, t, 3, generator=g, dtype=dtype)
    dist, alpha, rgb = MODES[seed % len(MODES)]
    u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
    kw = dict(
        image_size=[(12, 12), (10, 14), (15, 9)][seed % 3],
        sigma_val=10 ** (-4 + 2 * u[0]),
        gamma_val=10 ** (-3 + 2 * u[1]),
        fill_back=bool(seed % 4 < 2),
        dist_func=dist,
        aggr_func_alpha=alpha,
        aggr_func_rgb=rgb,
        texture_type=texture_type,
        background_color=(u[2], 0.5, u[3]),
        far=[100.0, 4.0][seed % 2],  # far=4 puts some faces beyond far
        return_depth=True,
    )
    return fv, tex, kw


def grads(fn, fv, tex, weights, kw):
    """Gradients of sum(weights[0] * rgba) + sum(weights[1] * depth) w.r.t. fv and tex."""
    fv = fv.clone().requires_grad_()
    tex = tex.clone().requires_grad_()
    img, depth = fn(fv, tex, **kw)
    ((img * weights[0]).sum() + (depth * weights[1]).sum()).backward()
    return fv.grad, tex.grad


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def stable_pixels(fv, tex, kw, tol=1e-4):
    """(B, H, W) bool: pixels whose every discrete decision (inside, cut-off, texel cell, depth range,
    nearest face) has a margin of ``tol`` in the float64 reference, so a float32 kernel must agree
    there; only continuous functions of the inputs remain."""
    s = RasterSettings(**{f.name: kw[f.name] for f in dataclasses.fields(RasterSettings) if f.name in kw})
    fv = fv.double()
    texture_res = check_inputs(fv, tex.double(), s)
    px, py = R._pixel_grid(s, fv)
    fr = R._fragments(fv, s, px, py)
    x = [fv[:, :, i, 0, None] for i in range(3)]
    y = [fv[:, :, i, 1, None] for i in range(3)]
    r = s.threshold**0.5
    near_box = torch.zeros_like(fr["keep"])
    in_box = torch.ones_like(fr["keep"])
    for lo, hi, p in ((torch.minimum(torch.minimum(x[0], x[1]), x[2]) - r, torch.maximum(torch.maximum(x[0], x[1]), x[2]) + r, px),
                      (torch.minimum(torch.minimum(y[0], y[1]), y[2]) - r, torch.maximum(torch.maximum(y[0], y[1]), y[2]) + r, py)):
        near_box |= ((p - lo).abs() < tol) | ((p - hi).abs() < tol)
        in_box &= (p >= lo) & (p <= hi)
    det = (y[1] - y[2]) * (x[0] - x[2]) + (x[2] - x[1]) * (y[0] - y[2])
    w0 = ((y[1] - y[2]) * (px - x[2]) + (x[2] - x[1]) * (py - y[2])) / det
    w1 = ((y[2] - y[0]) * (px - x[2]) + (x[0] - x[2]) * (py - y[2])) / det
    w = torch.stack((w0, w1, 1 - w0 - w1))
    near_edge = in_box & (w.abs().amin(0) < tol)
    d2 = fr["xs"].abs() * s.sigma_val
    near_cut = in_box & ~fr["inside"] & ((d2 - s.threshold).abs() < tol * s.threshold + 1e-12)
    near_range = fr["keep"] & (((fr["zp"] - s.near).abs() < tol) | ((fr["zp"] - s.far).abs() < tol))
    unstable = near_box | near_edge | near_cut | near_range
    if s.texture_type == "surface" and texture_res > 1:
        res = texture_res
        c0, c1, c2 = (c * res for c in fr["wc"])
        frac = lambda v: (v - v.round()).abs()  # noqa: E731
        diagonal = (res - c2) - c0.floor() - c1.floor() - 1  # the in-cell split of SoftRas's layout
        unstable |= fr["colours"] & ((frac(c0) < tol * res) & (c0.round() % res != 0) | (frac(c1) < tol * res) & (c1.round() % res != 0)
                                     | (diagonal.abs() < tol * res))
    bad = unstable.any(1)  # over faces: (B, P)
    cand = torch.where(fr["colours"] & fr["inside"], fr["zp"], torch.full_like(fr["zp"], float("inf")))
    two = cand.topk(min(2, cand.shape[1]), dim=1, largest=False).values
    if two.shape[1] == 2:
        bad |= (two[:, 1] - two[:, 0]).abs() < tol
    return ~bad.reshape(fv.shape[0], s.height, s.width)
