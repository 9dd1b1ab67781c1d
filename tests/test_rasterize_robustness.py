"""Bad input gets clear errors; degenerate geometry renders without NaN; autograd plumbing; buffers."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taichi_softras import runtime, soft_rasterize
from taichi_softras.ops.rasterize import engine_for
from taichi_softras.kernels import binning as KB
from taichi_softras.kernels import raster as K


def scene(b=1, f=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    fv = torch.rand(b, f, 3, 3, generator=g, dtype=dtype) * 2 - 1
    fv[..., 2] += 3
    return fv, torch.rand(b, f, 1, 3, generator=g, dtype=dtype)


@pytest.mark.parametrize(
    "mutate, exc, words",
    [
        (lambda fv, t: (fv[0], t), ValueError, "face_vertices"),
        (lambda fv, t: (fv[..., :2], t), ValueError, "face_vertices"),
        (lambda fv, t: (fv, t[0]), ValueError, "textures"),
        (lambda fv, t: (fv, t[:, :2]), ValueError, "textures"),
        (lambda fv, t: (fv, torch.cat([t, t])), ValueError, "textures"),
        (lambda fv, t: (fv, torch.rand(1, 3, 5, 3)), ValueError, "R*R"),
        (lambda fv, t: (fv.long(), t), TypeError, "face_vertices"),
        (lambda fv, t: (fv, t.double()), TypeError, "dtype"),
        (lambda fv, t: (fv.numpy(), t), TypeError, "face_vertices"),
        (lambda fv, t: (fv.index_fill(1, torch.tensor([1]), float("nan")), t), ValueError, "NaN"),
        (lambda fv, t: (fv.index_fill(1, torch.tensor([1]), float("inf")), t), ValueError, "NaN or inf"),
    ],
)
def test_bad_tensors_are_named(mutate, exc, words):
    fv, tex = mutate(*scene())
    with pytest.raises(exc, match=None) as info:
        soft_rasterize(fv, tex, image_size=8)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "kw, exc, name",
    [
        (dict(sigma_val=0.0), ValueError, "sigma_val"),
        (dict(sigma_val=-1e-3), ValueError, "sigma_val"),
        (dict(gamma_val=0.0), ValueError, "gamma_val"),
        (dict(image_size=0), ValueError, "image_size"),
        (dict(image_size=(8, -1)), ValueError, "image_size"),
        (dict(image_size=8.5), TypeError, "image_size"),
        (dict(dist_func="manhattan"), ValueError, "dist_func"),
        (dict(aggr_func_rgb="max"), ValueError, "aggr_func_rgb"),
        (dict(aggr_func_alpha="min"), ValueError, "aggr_func_alpha"),
        (dict(texture_type="uvw"), ValueError, "texture_type"),
        (dict(near=2.0, far=1.0), ValueError, "far"),
        (dict(dist_eps=0.0), ValueError, "dist_eps"),
    ],
)
def test_bad_settings_are_named(kw, exc, name):
    fv, tex = scene()
    with pytest.raises(exc) as info:
        soft_rasterize(fv, tex, **{"image_size": 8, **kw})
    assert name in str(info.value)


def test_device_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="taichi_softras runs Taichi on 'cpu'"):
        runtime.check_device(torch.device("cuda", 0), "face_vertices")


finite = st.floats(-3, 3, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pts=st.lists(st.tuples(finite, finite, st.floats(-1, 5, allow_nan=False, width=32)), min_size=0, max_size=12),
    degenerate=st.booleans(),
    dist_func=st.sampled_from(["euclidean", "barycentric", "hard"]),
    aggr_rgb=st.sampled_from(["softmax", "hard"]),
)
def test_degenerate_geometry_stays_finite(pts, degenerate, dist_func, aggr_rgb):
    """Zero-area faces, faces behind the eye, huge NDC and empty meshes: no NaN/inf anywhere."""
    n = len(pts) // 3
    fv = torch.tensor(pts[: 3 * n], dtype=torch.float32).reshape(1, n, 3, 3)
    if degenerate and n:
        fv[:, :, 2, :2] = fv[:, :, 0, :2]  # collapse two corners in screen space
    fv.requires_grad_()
    tex = torch.rand(1, n, 4, 3, requires_grad=True)
    img, depth = soft_rasterize(
        fv, tex, image_size=8, sigma_val=1e-3, gamma_val=1e-2, dist_func=dist_func, aggr_func_rgb=aggr_rgb, return_depth=True
    )
    assert torch.isfinite(img).all() and torch.isfinite(depth).all()
    (img.sum() + depth.sum()).backward()
    assert torch.isfinite(fv.grad).all() and torch.isfinite(tex.grad).all()


def test_empty_mesh_renders_background():
    fv = torch.zeros(2, 0, 3, 3)
    img = soft_rasterize(fv, torch.zeros(2, 0, 1, 3), image_size=(4, 5), background_color=(0.2, 0.3, 0.4))
    assert img.shape == (2, 4, 4, 5)
    assert torch.allclose(img[:, :3], torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1).expand(2, 3, 4, 5))
    assert img[:, 3].abs().max() == 0


def test_callers_grad_untouched_and_no_double_counting():
    fv, tex = scene()
    fv.requires_grad_()
    tex.requires_grad_()
    fv.grad = torch.full_like(fv, 7.0)
    img = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    (g,) = torch.autograd.grad(img.sum(), fv)
    assert torch.equal(fv.grad, torch.full_like(fv, 7.0))  # autograd.grad leaves .grad alone
    fv.grad = None
    twice = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2) + soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    (g2,) = torch.autograd.grad(twice.sum(), fv)
    assert torch.allclose(g2, 2 * g, rtol=1e-5, atol=1e-6)
    img = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    (a,) = torch.autograd.grad(img.sum(), fv, retain_graph=True)
    (b,) = torch.autograd.grad(img.sum(), fv)
    assert torch.equal(a, b) and torch.allclose(a, g)


def test_backward_after_another_forward_recomputes_its_own_state():
    fv, tex = scene()
    other, other_tex = scene(f=5)
    fv.requires_grad_()
    img = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    (expected,) = torch.autograd.grad(img.sum(), fv)
    img = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    soft_rasterize(other * 0.5, other_tex, image_size=12, sigma_val=1e-3)  # overwrites the buffers
    (got,) = torch.autograd.grad(img.sum(), fv)
    assert torch.equal(got, expected)


def test_double_backward_is_a_clear_error():
    fv, tex = scene()
    fv.requires_grad_()
    img = soft_rasterize(fv, tex, image_size=8, sigma_val=1e-2)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(img.sum(), fv, create_graph=True)


def _compiled_variants():
    kernels = [getattr(mod, n) for mod in (K, KB) for n in dir(mod) if hasattr(getattr(mod, n), "_primal")]
    return sum(len(k._primal.compiled_kernels) + len(k._adjoint.compiled_kernels) for k in kernels)


def test_seen_shapes_neither_reallocate_nor_recompile():
    shapes = [(1, 3, 8), (2, 7, 16), (1, 20, (12, 20))]
    pool = engine_for(torch.float32).pool

    def run(b, f, size):
        fv, tex = scene(b, f)
        fv.requires_grad_()
        soft_rasterize(fv, tex, image_size=size, sigma_val=1e-3).sum().backward()

    for shape in shapes:  # warm-up: may allocate and compile
        run(*shape)
    allocations, variants = pool.allocations, _compiled_variants()
    for shape in shapes * 3:
        run(*shape)
    assert pool.allocations == allocations
    assert _compiled_variants() == variants


def test_deterministic_mode_gives_bit_identical_gradients():
    g = torch.Generator().manual_seed(5)
    fv = torch.rand(2, 200, 3, 3, generator=g) * 2 - 1
    fv[..., 2] += 3
    tex = torch.rand(2, 200, 4, 3, generator=g)
    grads = []
    for _ in range(20):  # a race shows in roughly 1 of 40 repeats (gather_corners.grad, CI)
        v = fv.clone().requires_grad_()
        t = tex.clone().requires_grad_()
        soft_rasterize(v, t, image_size=32, sigma_val=1e-3, gamma_val=1e-2, deterministic=True).square().sum().backward()
        grads.append((v.grad, t.grad))
    for v, t in grads[1:]:
        assert torch.equal(v, grads[0][0]) and torch.equal(t, grads[0][1])


def test_no_grad_skips_autograd():
    fv, tex = scene()
    fv.requires_grad_()
    with torch.no_grad():
        img = soft_rasterize(fv, tex, image_size=8)
    assert img.grad_fn is None and not img.requires_grad


def test_forward_is_bit_repeatable():
    fv, tex = scene(2, 300)
    a = soft_rasterize(fv, tex, image_size=32, sigma_val=1e-3, gamma_val=1e-2)
    b = soft_rasterize(fv, tex, image_size=32, sigma_val=1e-3, gamma_val=1e-2)
    assert torch.equal(a, b)
