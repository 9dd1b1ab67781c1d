"""float32 agreement of the rasterizer with the float64 reference, on whichever backend this process
runs (``TAICHI_SOFTRAS_ARCH``; ``tests/test_backends.py`` runs this module on every backend the
machine has). Every mode, non-square images, ragged batches, UV maps, auxiliary outputs and group
masks; scenes where faces span many tiles and tiles hold many faces. Discrete decisions (hard modes,
texel cells) are compared on the pixels where float32 rounding cannot flip them
(``agreement.stable_pixels``); tolerances are the CPU ones (docs/design.md, "Numerics")."""

import pytest
import torch

from agreement import MODES, grads, random_scene, rel, stable_pixels
from taichi_softras import soft_rasterize
from taichi_softras.ops.rasterize import OUTPUTS
from taichi_softras.reference.rasterize import soft_rasterize as reference

pytestmark = pytest.mark.backend

ALPHA_TOL, RGB_TOL, GRAD_TOL = 1e-5, 1e-3, 1e-3


def _masked_max(a, b, mask):
    d = (a.double() - b.double()).abs()
    return (d * mask).amax().item()


@pytest.mark.parametrize("seed", range(len(MODES)))
def test_every_mode_forward(seed):
    fv, tex, kw = random_scene(seed, faces=24)
    ok = stable_pixels(fv, tex, kw)[:, None]
    img, depth = soft_rasterize(fv.float(), tex.float(), **kw)
    rimg, rdepth = reference(fv, tex, **kw)
    assert ok.float().mean() > 0.5  # the comparison covers most of the image
    assert _masked_max(img[:, 3:], rimg[:, 3:], ok) <= ALPHA_TOL
    assert _masked_max(img[:, :3], rimg[:, :3], ok) <= RGB_TOL
    assert _masked_max(depth / kw["far"], rdepth / kw["far"], ok) <= RGB_TOL
    assert rimg[:, 3].amax() > 0.05


@pytest.mark.parametrize("seed", range(len(MODES)))
def test_every_mode_gradients(seed):
    fv, tex, kw = random_scene(seed, faces=24)
    h, w = kw["image_size"]
    g = torch.Generator().manual_seed(100 + seed)
    ok = stable_pixels(fv, tex, kw)[:, None].double()
    weights = (torch.rand(2, 4, h, w, generator=g, dtype=torch.float64) * ok, 0.01 * torch.rand(2, 1, h, w, generator=g, dtype=torch.float64) * ok)
    gv, gt = grads(soft_rasterize, fv.float(), tex.float(), [x.float() for x in weights], kw)
    rv, rt = grads(reference, fv, tex, weights, kw)
    assert torch.isfinite(gv).all() and torch.isfinite(gt).all()
    assert rel(gt, rt) <= GRAD_TOL
    if rv.norm() > 0:
        assert rel(gv, rv) <= GRAD_TOL
    else:
        assert gv.norm() == 0


def test_single_triangle_spanning_many_tiles():
    """The issue's triangle at 32²: it covers 4x4 tiles; every covered pixel must be there."""
    fv = torch.tensor([[[[0.0, 0.0, 2.0], [0.8, 0.0, 2.0], [0.0, 0.8, 2.0]]]])
    tex = torch.ones(1, 1, 1, 3)
    img = soft_rasterize(fv, tex, image_size=32, sigma_val=1e-4)
    ref = reference(fv.double(), tex.double(), image_size=32, sigma_val=1e-4)
    assert (img.double() - ref).abs().max() <= RGB_TOL
    covered = img[0, 3] > 0.5
    assert torch.equal(covered, ref[0, 3] > 0.5)
    assert covered.sum() > 50 and covered[8:, 8:].any() and covered[:8, 8:].any()  # beyond the first tile


def test_many_faces_per_tile_and_tiles_per_face():
    """300 faces of all sizes on 40x24 (non-square): lists of dozens of faces per tile."""
    g = torch.Generator().manual_seed(3)
    f = 300
    centre = torch.rand(1, f, 1, 3, generator=g, dtype=torch.float64) * 2.4 - 1.2
    size = 10 ** (torch.rand(1, f, 1, 1, generator=g, dtype=torch.float64) * 2 - 2)
    fv = centre + size * (torch.rand(1, f, 3, 3, generator=g, dtype=torch.float64) - 0.5)
    fv[..., 2] = torch.rand(1, f, 3, generator=g, dtype=torch.float64) * 3 + 1.5
    tex = torch.rand(1, f, 1, 3, generator=g, dtype=torch.float64)
    kw = dict(image_size=(24, 40), sigma_val=1e-3, gamma_val=1e-2, return_depth=True)
    ok = stable_pixels(fv, tex, kw)[:, None]
    img, depth = soft_rasterize(fv.float(), tex.float(), **kw)
    rimg, rdepth = reference(fv, tex, **kw)
    assert _masked_max(img[:, 3:], rimg[:, 3:], ok) <= ALPHA_TOL
    assert _masked_max(img[:, :3], rimg[:, :3], ok) <= RGB_TOL
    weights = (torch.rand(1, 4, 24, 40, generator=g, dtype=torch.float64) * ok, torch.zeros(1, 1, 24, 40, dtype=torch.float64))
    gv, gt = grads(soft_rasterize, fv.float(), tex.float(), [x.float() for x in weights], kw)
    rv, rt = grads(reference, fv, tex, weights, kw)
    assert rel(gv, rv) <= GRAD_TOL and rel(gt, rt) <= GRAD_TOL


def test_ragged_batch_equals_meshes_alone():
    fv, tex, kw = random_scene(4, faces=20)
    counts = torch.tensor([20, 7])
    both = soft_rasterize(fv.float(), tex.float(), num_faces=counts, **kw)[0]
    alone = soft_rasterize(fv[1:, :7].float(), tex[1:, :7].float(), **kw)[0]
    assert torch.equal(both[1], alone[0])
    v = fv.float().clone().requires_grad_()
    soft_rasterize(v, tex.float(), num_faces=counts, **kw)[0].sum().backward()
    assert (v.grad[1, 7:] == 0).all() and v.grad[1, :7].abs().sum() > 0


@pytest.mark.parametrize("seed", range(3))
def test_auxiliary_outputs_and_group_masks(seed):
    fv, tex, kw = random_scene(seed + 1, faces=16)  # vertex colours for seed + 1 odd
    g = torch.Generator().manual_seed(seed)
    b, f = fv.shape[:2]
    vn = torch.randn(b, f, 3, 3, generator=g, dtype=torch.float64)
    groups = torch.randint(0, 3, (b, f), generator=g)
    kw = {**kw, "return_depth": False, "sigma_val": 1e-3, "gamma_val": 0.05, "aggr_func_alpha": "prod",
          "dist_func": ["euclidean", "barycentric", "hard"][seed]}
    ok = stable_pixels(fv, tex, kw)
    out = soft_rasterize(fv.float(), tex.float(), vertex_normals=vn.float(), face_groups=groups, outputs=OUTPUTS, **kw)
    ref = reference(fv, tex, vertex_normals=vn, face_groups=groups, outputs=OUTPUTS, **kw)
    assert torch.equal(out.face_index[ok], ref.face_index[ok])
    assert (ref.face_index[ok] >= 0).any()
    okc = ok[:, None]
    for name in ("barycentrics", "normals", "screen_normals"):
        assert _masked_max(getattr(out, name), getattr(ref, name), okc) <= RGB_TOL, name
    assert _masked_max(out.group_masks, ref.group_masks, okc) <= ALPHA_TOL


@pytest.mark.parametrize("wrap", ["repeat", "clamp"])
def test_uv_textures(wrap):
    g = torch.Generator().manual_seed(11)
    b, f = 2, 8
    fv = torch.rand(b, f, 3, 3, generator=g, dtype=torch.float64) * 2.2 - 1.1
    fv[..., 2] = torch.rand(b, f, 3, generator=g, dtype=torch.float64) * 3 + 1.5
    image = torch.rand(b, 3, 5, 7, generator=g, dtype=torch.float64)
    uvs = torch.rand(b, f, 3, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3  # some outside [0, 1]
    kw = dict(image_size=(12, 10), sigma_val=3e-3, gamma_val=0.1, texture_type="uv", texture_wrap=wrap)
    ok = stable_pixels(fv, image, {k: v for k, v in kw.items() if k != "texture_wrap"})[:, None]
    a = [t.float().clone().requires_grad_() for t in (fv, image, uvs)]
    r = [t.clone().requires_grad_() for t in (fv, image, uvs)]
    out = soft_rasterize(a[0], a[1], uvs=a[2], **kw)
    ref = reference(r[0], r[1], uvs=r[2], **kw)
    assert _masked_max(out, ref, ok) <= RGB_TOL
    w = torch.rand(out.shape, generator=g, dtype=torch.float64) * ok
    (out * w.float()).sum().backward()
    (ref * w).sum().backward()
    for x, y in zip(a, r):
        assert rel(x.grad, y.grad) <= GRAD_TOL


def test_forward_is_bit_repeatable_and_deterministic_gradients():
    fv, tex, kw = random_scene(6, faces=200)
    kw = {**kw, "sigma_val": 1e-3, "gamma_val": 1e-2}
    a = soft_rasterize(fv.float(), tex.float(), **kw)
    b = soft_rasterize(fv.float(), tex.float(), **kw)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    first = grads(lambda v, t, **k: soft_rasterize(v, t, deterministic=True, **k), fv.float(), tex.float(),
                  (torch.ones(2, 4, *kw["image_size"]), torch.zeros(2, 1, *kw["image_size"])), kw)
    again = grads(lambda v, t, **k: soft_rasterize(v, t, deterministic=True, **k), fv.float(), tex.float(),
                  (torch.ones(2, 4, *kw["image_size"]), torch.zeros(2, 1, *kw["image_size"])), kw)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
