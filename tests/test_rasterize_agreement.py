"""The Taichi rasterizer against the dense pure-torch reference: forward values and gradients."""

import itertools

import pytest
import torch

from taichi_softras import soft_rasterize
from taichi_softras.reference.rasterize import soft_rasterize as reference

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


SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
def test_float64_forward_matches_reference(seed):
    fv, tex, kw = random_scene(seed)
    img, depth = soft_rasterize(fv, tex, **kw)
    rimg, rdepth = reference(fv, tex, **kw)
    assert (img - rimg).abs().max().item() <= 1e-9
    assert (depth - rdepth).abs().max().item() <= 1e-9
    assert img[:, 3].max() > 0  # the scene is not empty


# Soft modes only: hard modes are discontinuous, so float32 rounding may flip a pixel (float64 above
# covers them exactly).
SOFT_SEEDS = [s for s in SEEDS if "hard" not in MODES[s % len(MODES)]]


@pytest.mark.parametrize("seed", SOFT_SEEDS)
def test_float32_forward_matches_float64_reference(seed):
    fv, tex, kw = random_scene(seed)
    img = soft_rasterize(fv.float(), tex.float(), **kw)[0]
    rimg = reference(fv, tex, **kw)[0]
    assert (img[:, 3].double() - rimg[:, 3]).abs().max().item() <= 1e-5
    assert (img[:, :3].double() - rimg[:, :3]).abs().max().item() <= 1e-3


def _grads(fn, fv, tex, weights, kw):
    fv = fv.clone().requires_grad_()
    tex = tex.clone().requires_grad_()
    img, depth = fn(fv, tex, **kw)
    ((img * weights[0]).sum() + (depth * weights[1]).sum()).backward()
    return fv.grad, tex.grad


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_reference(seed):
    fv, tex, kw = random_scene(seed)
    g = torch.Generator().manual_seed(100 + seed)
    b, _, _, _ = fv.shape
    h, w = kw["image_size"]
    weights = (torch.rand(b, 4, h, w, generator=g, dtype=fv.dtype), 0.01 * torch.rand(b, 1, h, w, generator=g, dtype=fv.dtype))
    gv, gt = _grads(soft_rasterize, fv, tex, weights, kw)
    rv, rt = _grads(reference, fv, tex, weights, kw)
    assert torch.isfinite(gv).all() and torch.isfinite(gt).all()
    assert _rel(gt, rt) <= 1e-3
    if rv.norm() > 0:
        assert _rel(gv, rv) <= 1e-3
    else:
        assert gv.norm() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_gradients_match_reference(seed):
    fv, tex, kw = random_scene(seed)
    kw.update(dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="softmax", gamma_val=0.05)
    h, w = kw["image_size"]
    weights = (torch.rand(2, 4, h, w, dtype=fv.dtype), torch.zeros(2, 1, h, w, dtype=fv.dtype))
    gv, gt = _grads(soft_rasterize, fv.float(), tex.float(), [x.float() for x in weights], kw)
    rv, rt = _grads(reference, fv, tex, weights, kw)
    assert _rel(gv.double(), rv) <= 1e-3 and _rel(gt.double(), rt) <= 1e-3


@pytest.mark.parametrize(
    "modes",
    [
        dict(dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="softmax", texture_type="surface"),
        dict(dist_func="barycentric", aggr_func_alpha="sum", aggr_func_rgb="softmax", texture_type="vertex"),
        dict(dist_func="euclidean", aggr_func_alpha="prod", aggr_func_rgb="hard", texture_type="vertex"),
    ],
)
def test_gradcheck_tiny_float64(modes):
    g = torch.Generator().manual_seed(7)
    fv = torch.tensor(
        [[[[-0.6, -0.5, 2.0], [0.1, 0.7, 2.5], [0.6, -0.4, 3.0]], [[-0.2, -0.8, 2.2], [0.5, 0.6, 2.8], [0.8, -0.7, 2.4]]]],
        dtype=torch.float64,
    )
    t = 3 if modes["texture_type"] == "vertex" else 4
    tex = torch.rand(1, 2, t, 3, generator=g, dtype=torch.float64)

    def fn(fv, tex):
        img, depth = soft_rasterize(fv, tex, image_size=6, sigma_val=2e-2, gamma_val=0.2, return_depth=True, **modes)
        return img, depth * 0.1

    assert torch.autograd.gradcheck(fn, (fv.requires_grad_(), tex.requires_grad_()), eps=1e-6, atol=1e-5, rtol=1e-3)
