"""Anchor-ray probing: the Taichi op against the dense reference, boundary-aware assignment, edge
cases and argument errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import torch.nn.functional as F

from taichi_softras import cameras
from taichi_softras.ops.probe import probe_rays, probe_view, project_to_pixels
from taichi_softras.reference.probe import probe_rays as ref_probe_rays

pytestmark = pytest.mark.backend  # probing vs its reference on every backend (tests/test_backends.py)


def _scene(seed, dtype, pinhole, b=2, n=400, per_anchor_radius=False):
    g = torch.Generator().manual_seed(seed)
    if pinhole:
        eye = torch.tensor([0.0, 0.3, -2.5], dtype=dtype) + 0.3 * torch.randn(b, 3, generator=g, dtype=dtype)
        h, w = 8 + seed % 5, 9 + seed % 7
        origins, directions = cameras.pixel_rays(eye, image_size=(h, w))
    else:
        r = 90
        origins = torch.randn(b, r, 3, generator=g, dtype=dtype) - torch.tensor([0, 0, 2.0], dtype=dtype)
        directions = F.normalize(-origins + 0.3 * torch.randn(b, r, 3, generator=g, dtype=dtype), dim=-1)
    anchors = torch.rand(b, n, 3, generator=g, dtype=dtype) - 0.5
    values = torch.rand(b, n, generator=g, dtype=dtype)
    radius = 0.02 + 0.06 * torch.rand(b, n, generator=g, dtype=dtype) if per_anchor_radius else 0.05 + 0.01 * (seed % 3)
    return origins, directions, anchors, radius, values


def _check_agreement(args, require_hits=True, **kw):
    values = args[4].clone().requires_grad_(True)
    ours = probe_rays(*args[:4], values, **kw)
    ref = ref_probe_rays(*args[:4], values, **kw)
    assert torch.equal(ours.count, ref.count)
    assert torch.equal(ours.index, ref.index)
    assert torch.equal(ours.value, ref.value)
    assert int(ours.count.sum()) > 0 or not require_hits
    weights = torch.randn_like(ref.value)
    g_ours, = torch.autograd.grad((ours.value * weights).sum(), values)
    g_ref, = torch.autograd.grad((ref.value * weights).sum(), values)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-12)
    return ours


@pytest.mark.parametrize("seed", range(24))
def test_matches_reference_random_scenes(seed):
    dtype = torch.float64 if seed % 2 == 0 else torch.float32
    ours = _check_agreement(_scene(seed, dtype, pinhole=seed % 4 < 2, per_anchor_radius=seed % 3 == 0))
    assert ours.value.dtype == dtype


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**20), n=st.integers(1, 80), radius=st.floats(0.005, 0.6), pinhole=st.booleans())
def test_fuzz_matches_reference(seed, n, radius, pinhole):
    o, d, a, _, v = _scene(seed, torch.float64, pinhole, b=1, n=n)
    _check_agreement((o, d, a, radius, v), require_hits=False)


def test_many_probes_per_ray_and_no_ties():
    """Large radius: every ray has many probes; the arg-max is the exact max of the probed values."""
    o, d, a, _, v = _scene(100, torch.float64, pinhole=True)
    ours = _check_agreement((o, d, a, 0.3, v))
    assert int(ours.count.max()) > 40


def test_ties_go_to_smallest_index():
    o = torch.zeros(1, 1, 3, dtype=torch.float64)
    d = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)
    anchors = torch.tensor([[[0, 0, 3.0], [0, 0, 1.0], [0, 0, 2.0], [0, 0, 4.0]]], dtype=torch.float64)
    values = torch.tensor([[0.2, 0.7, 0.7, 0.1]], dtype=torch.float64)
    for fn in (probe_rays, ref_probe_rays):
        res = fn(o, d, anchors, 0.1, values)
        assert res.index.tolist() == [[1]] and res.count.tolist() == [[4]] and res.value.tolist() == [[0.7]]


def test_misses_and_anchors_behind_origin():
    eye = torch.tensor([[0.0, 0.0, -2.0]], dtype=torch.float64)
    o, d = cameras.pixel_rays(eye, image_size=6)
    # one anchor right behind the eye on the optical axis, one far off to the side
    anchors = torch.tensor([[[0.0, 0.0, -3.0], [5.0, 0.0, 0.0]]], dtype=torch.float64)
    values = torch.tensor([[0.9, 0.8]], dtype=torch.float64, requires_grad=True)
    res = probe_rays(o, d, anchors, 0.5, values)
    assert torch.equal(res.value, torch.zeros(1, 36, dtype=torch.float64))
    assert (res.index == -1).all() and (res.count == 0).all()
    res.value.sum().backward()
    assert torch.equal(values.grad, torch.zeros_like(values))


def test_anchor_around_origin_and_wide_rays_pinhole():
    """Pinhole rays in every direction (beyond the tile plane) and anchors containing the eye."""
    g = torch.Generator().manual_seed(3)
    d = F.normalize(torch.randn(1, 300, 3, generator=g, dtype=torch.float64), dim=-1)
    d[0, :150] = F.normalize(d[0, :150] * 0.2 + torch.tensor([0, 0, 1.0], dtype=torch.float64), dim=-1)
    o = torch.full((1, 300, 3), 0.1, dtype=torch.float64)
    anchors = torch.rand(1, 500, 3, generator=g, dtype=torch.float64) * 4 - 2
    anchors[0, 0] = torch.tensor([0.1, 0.1, 0.15])  # its sphere holds the eye
    values = torch.rand(1, 500, generator=g, dtype=torch.float64)
    _check_agreement((o, d, anchors, 0.2, values))


def test_gradcheck_tiny():
    o, d, a, r, v = _scene(7, torch.float64, pinhole=True, b=1, n=30)
    v = v.requires_grad_(True)
    assert int(probe_rays(o, d, a, 0.2, v).count.sum()) > 0
    assert torch.autograd.gradcheck(lambda x: probe_rays(o, d, a, 0.2, x).value, (v,))


def test_double_backward_raises():
    o, d, a, r, v = _scene(8, torch.float64, pinhole=True, b=1, n=30)
    v = v.requires_grad_(True)
    w = torch.ones(1, o.shape[1], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad((probe_rays(o, d, a, 0.2, v).value * w).sum(), v, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice|once_differentiable"):
        g.sum().backward()


def test_boundary_aware_assignment_changes_the_answer():
    """A ray outside the silhouette whose only probe projects inside loses it (and vice versa)."""
    eye = torch.tensor([[0.0, 0.0, -3.0]], dtype=torch.float64)
    h = w = 8
    sil = torch.zeros(1, h, w, dtype=torch.float64)
    sil[0, :, : w // 2] = 1.0  # left half inside
    # a big anchor on the left of the optical axis reaches rays of the right half too
    anchors = torch.tensor([[[-0.12, 0.0, 0.0]]], dtype=torch.float64)
    values = torch.tensor([[0.9]], dtype=torch.float64)
    plain = probe_view(eye, anchors, 0.5, values, (h, w))
    aware = probe_view(eye, anchors, 0.5, values, (h, w), silhouettes=sil, boundary_aware=True)
    row, col, valid = project_to_pixels(anchors, eye, (h, w), 30.0)
    assert bool(valid.all()) and int(col) < w // 2
    inside = sil.reshape(1, -1) > 0.5
    assert bool((plain.count[~inside] > 0).any())  # the plain assignment probes outside rays
    assert torch.equal(aware.count[~inside], torch.zeros_like(aware.count[~inside]))
    assert torch.equal(aware.count[inside], plain.count[inside])
    # and it agrees with the reference given the same labels
    o, d = cameras.pixel_rays(eye, image_size=(h, w))
    anchor_inside = torch.tensor([[True]])
    ref = ref_probe_rays(o, d, anchors, 0.5, values, ray_labels=inside, anchor_labels=anchor_inside)
    assert torch.equal(aware.index, ref.index)


def test_probe_view_pixel_subset_equals_full_image():
    o, d, a, r, v = _scene(5, torch.float64, pinhole=True, b=2)
    eye = torch.tensor([[0.0, 0.5, -2.5], [1.0, 0.0, -2.0]], dtype=torch.float64)
    full = probe_view(eye, a, 0.08, v, (10, 12))
    pixels = torch.randint(0, 120, (2, 17), generator=torch.Generator().manual_seed(0))
    sub = probe_view(eye, a, 0.08, v, (10, 12), pixels=pixels)
    assert torch.equal(sub.value, full.value.gather(1, pixels))
    assert torch.equal(sub.index, full.index.gather(1, pixels))


def test_empty_inputs():
    o, d, a, r, v = _scene(1, torch.float64, pinhole=True, b=1)
    res = probe_rays(o, d, a[:, :0], 0.1, v[:, :0])
    assert res.value.shape == o.shape[:2] and (res.index == -1).all()
    res = probe_rays(o[:, :0], d[:, :0], a, 0.1, v)
    assert res.value.shape == (1, 0)


def _bad(**change):
    o, d, a, r, v = _scene(2, torch.float64, pinhole=True, b=1, n=10)
    kw = dict(origins=o, directions=d, anchors=a, radius=0.1, values=v)
    kw.update(change)
    return kw


@pytest.mark.parametrize(
    "change, err, match",
    [
        (dict(origins=torch.zeros(1, 5, 3, dtype=torch.float64)), ValueError, "directions"),
        (dict(anchors=torch.zeros(2, 10, 3, dtype=torch.float64)), ValueError, "anchors"),
        (dict(anchors=torch.zeros(1, 10, 2, dtype=torch.float64)), ValueError, "anchors"),
        (dict(values=torch.zeros(1, 11, dtype=torch.float64)), ValueError, "values"),
        (dict(values=torch.zeros(1, 10, dtype=torch.float32)), TypeError, "values"),
        (dict(anchors=torch.zeros(1, 10, 3, dtype=torch.int64)), TypeError, "anchors"),
        (dict(values=torch.zeros(1, 10, dtype=torch.float64, device="meta")), ValueError, "values"),
        (dict(radius=0.0), ValueError, "radius"),
        (dict(radius=-1.0), ValueError, "radius"),
        (dict(radius=torch.full((1, 10), -0.1, dtype=torch.float64)), ValueError, "radius"),
        (dict(radius=torch.full((3,), 0.1, dtype=torch.float64)), ValueError, "radius"),
        (dict(radius="big"), TypeError, "radius"),
        (dict(directions=torch.zeros(1, 110, 3, dtype=torch.float64)), ValueError, "directions"),
        (dict(anchors=torch.full((1, 10, 3), math.nan, dtype=torch.float64)), ValueError, "anchors"),
        (dict(values=torch.full((1, 10), math.nan, dtype=torch.float64)), ValueError, "values"),
        (dict(origins="eye"), TypeError, "origins"),
    ],
)
def test_bad_inputs(change, err, match):
    kw = _bad(**change)
    with pytest.raises(err, match=match):
        probe_rays(**kw)
    with pytest.raises(err, match=match):
        ref_probe_rays(**kw)


def test_non_unit_directions():
    kw = _bad()
    kw["directions"] = kw["directions"] * 1.01
    with pytest.raises(ValueError, match="directions must be unit"):
        probe_rays(**kw)


def test_labels_given_alone():
    with pytest.raises(ValueError, match="ray_labels and anchor_labels"):
        probe_rays(**_bad(), ray_labels=torch.ones(1, 110, dtype=torch.bool))


def test_boundary_aware_needs_silhouettes():
    eye = torch.tensor([[0.0, 0.0, -3.0]])
    with pytest.raises(ValueError, match="silhouettes"):
        probe_view(eye, torch.zeros(1, 2, 3), 0.1, torch.zeros(1, 2), 4, boundary_aware=True)


def test_buffers_are_reused_across_calls():
    from taichi_softras.ops import probe as probe_op

    args = _scene(9, torch.float32, pinhole=True)
    probe_rays(*args)
    before = probe_op.engine().POOL.allocations
    for seed in range(3):
        o, d, a, r, v = _scene(9 + seed, torch.float32, pinhole=True)
        probe_rays(o, d, a, r, v.requires_grad_(True)).value.sum().backward()
    assert probe_op.engine().POOL.allocations == before


@pytest.mark.cuda
def test_cuda_matches_reference(device):
    for seed, pinhole in ((0, True), (1, False)):
        o, d, a, r, v = (t.to(device) if isinstance(t, torch.Tensor) else t for t in _scene(seed, torch.float32, pinhole))
        ours = _check_agreement((o, d, a, r, v))
        assert ours.value.device.type == "cuda"


def test_grid_path_rays_inside_and_axis_aligned():
    """Arbitrary rays (3D grid walk): origins inside the anchor cloud, directions along the axes
    (zero components) and diagonal, anchors on both sides of the origins, radii spanning cells."""
    g = torch.Generator().manual_seed(11)
    origins = torch.rand(2, 60, 3, generator=g, dtype=torch.float64) - 0.5
    axes = torch.eye(3, dtype=torch.float64)
    directions = torch.cat([axes, -axes, F.normalize(torch.ones(1, 3, dtype=torch.float64), dim=-1),
                            F.normalize(torch.randn(53, 3, generator=g, dtype=torch.float64), dim=-1)])
    directions = directions[None].expand(2, -1, -1).contiguous()
    anchors = torch.rand(2, 700, 3, generator=g, dtype=torch.float64) - 0.5
    values = torch.rand(2, 700, generator=g, dtype=torch.float64)
    radius = 0.01 + 0.2 * torch.rand(2, 700, generator=g, dtype=torch.float64) ** 4
    _check_agreement((origins, directions, anchors, radius, values))
    labels = (torch.rand(2, 60, generator=g) > 0.5, torch.rand(2, 700, generator=g) > 0.5)
    _check_agreement((origins, directions, anchors, radius, values), ray_labels=labels[0], anchor_labels=labels[1])
