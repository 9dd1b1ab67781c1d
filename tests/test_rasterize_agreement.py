"""The float64 Taichi rasterizer against the dense pure-torch reference: forward values, gradients
and gradcheck, every mode (float32: test_backend_agreement.py)."""

import pytest
import torch

from agreement import grads as _grads, random_scene, rel as _rel
from taichi_softras import soft_rasterize
from taichi_softras.reference.rasterize import soft_rasterize as reference

# float64 kernels where the backend has them (tests/agreement.py skips the others, e.g. Vulkan has
# no 64-bit exp/log); test_backend_agreement.py holds the float32 checks every backend runs.
pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("float64_raster")]

SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
def test_float64_forward_matches_reference(seed):
    fv, tex, kw = random_scene(seed)
    img, depth = soft_rasterize(fv, tex, **kw)
    rimg, rdepth = reference(fv, tex, **kw)
    assert (img - rimg).abs().max().item() <= 1e-9
    assert (depth - rdepth).abs().max().item() <= 1e-9
    assert img[:, 3].max() > 0  # the scene is not empty


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
