"""SoftRas-style camera functions (taichi_softras.cameras): frame, projections, eyes, pixel rays."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from taichi_softras import conventions as C
from taichi_softras import cameras

angles = st.tuples(
    st.floats(1.5, 5.0), st.floats(-80.0, 80.0), st.floats(-180.0, 180.0)
)  # distance, elevation, azimuth


def test_look_at_default_frame_is_softras_left_handed():
    """Eye on -z looking at the origin: world +x stays camera +x, +y stays +y, depth = distance."""
    v = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = cameras.look_at(v, (0.0, 0.0, -2.0))
    assert torch.allclose(out, torch.tensor([[[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]]]), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(angles)
def test_look_at_is_a_rigid_motion_putting_the_target_on_the_axis(dea):
    eye = torch.tensor(cameras.get_points_from_angles(*dea), dtype=torch.float64)
    at = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    pts = torch.randn(1, 5, 3, dtype=torch.float64)
    out = cameras.look_at(torch.cat([pts, at[None, None]], 1), eye, at)
    assert torch.allclose(out[0, -1], torch.tensor([0.0, 0.0, float((at - eye).norm())], dtype=torch.float64), atol=1e-9)
    d_in = torch.cdist(pts[0], pts[0])
    d_out = torch.cdist(out[0, :-1], out[0, :-1])
    assert torch.allclose(d_in, d_out, atol=1e-9)
    # look along (at - eye) is the same camera
    assert torch.allclose(cameras.look(pts, eye, at - eye), out[:, :-1], atol=1e-9)


def test_batched_eyes():
    eyes = cameras.get_points_from_angles(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 30.0]), torch.tensor([0.0, 90.0]))
    v = torch.zeros(2, 1, 3)
    out = cameras.look_at(v, eyes)
    assert torch.allclose(out[:, 0, 2], torch.tensor([2.0, 3.0]))
    with pytest.raises(ValueError, match="eye"):
        cameras.look_at(v, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="eye"):
        cameras.look_at(v, (1.0, 2.0))


def test_get_points_from_angles_formula_and_scalar_tensor_agreement():
    assert cameras.get_points_from_angles(2.0, 0, 0) == pytest.approx((0, 0, -2))
    assert cameras.get_points_from_angles(2.0, 90, 0) == pytest.approx((0, 2, 0), abs=1e-12)
    assert cameras.get_points_from_angles(2.0, 0, 90) == pytest.approx((2, 0, 0), abs=1e-12)
    d, e, a = 2.732, 30.0, -15.0
    t = cameras.get_points_from_angles(torch.tensor([d]), torch.tensor([e]), torch.tensor([a]))
    assert t.shape == (1, 3)
    assert torch.allclose(t[0], torch.tensor(cameras.get_points_from_angles(d, e, a), dtype=torch.float32))
    rad = cameras.get_points_from_angles(d, math.radians(e), math.radians(a), degrees=False)
    assert rad == pytest.approx(cameras.get_points_from_angles(d, e, a))
    # numpy scalars are scalars; numpy arrays and lists batch like tensors (camera.npy columns).
    assert cameras.get_points_from_angles(np.float32(d), np.int64(30), a) == pytest.approx(cameras.get_points_from_angles(d, 30, a))
    batched = cameras.get_points_from_angles(np.array([d, d], np.float32), [e, e], np.array([a, 0.0]))
    assert batched.dtype == torch.float32 and torch.allclose(batched[0], t[0])
    t64 = cameras.get_points_from_angles(torch.tensor([d], dtype=torch.float64), e, np.array([a]))
    assert t64.dtype == torch.float64 and t64.shape == (1, 3)


def test_perspective_and_orthogonal():
    v = torch.tensor([[[1.0, -2.0, 4.0]]])
    t = math.tan(math.radians(30))
    assert torch.allclose(cameras.perspective(v), torch.tensor([[[1 / (4 * t), -2 / (4 * t), 4.0]]]))
    assert torch.allclose(cameras.perspective(v, angle=45), torch.tensor([[[0.25, -0.5, 4.0]]]))
    assert torch.allclose(cameras.orthogonal(v, 0.5), torch.tensor([[[0.5, -1.0, 4.0]]]))


def test_projection_pinhole_and_distortion():
    orig = 100.0
    K = torch.tensor([[50.0, 0, 50.0], [0, 50.0, 50.0], [0, 0, 1.0]])
    P = torch.cat([K, torch.zeros(3, 1)], 1)
    v = torch.tensor([[[0.2, -0.4, 2.0]]])
    out = cameras.projection(v, P, orig_size=orig)
    # pixel = 50 * x / z + 50 -> NDC = 2 (pixel - 50) / 100 = x / z (z + 1e-5 guard)
    assert torch.allclose(out, torch.tensor([[[0.1, -0.2, 2.0]]]), atol=1e-5)
    k1 = 0.1
    dist = torch.tensor([[k1, 0.0, 0.0, 0.0, 0.0]])
    out_d = cameras.projection(v, P[None], dist, orig)
    # SoftRas distorts P's output (pixel units after the divide by z), then maps to NDC.
    x_, y_ = 50 * 0.2 / 2 + 50, 50 * -0.4 / 2 + 50
    r2 = x_**2 + y_**2
    expect_x = 2 * (x_ * (1 + k1 * r2) - 50) / 100
    assert out_d[0, 0, 0].item() == pytest.approx(expect_x, rel=1e-4)
    with pytest.raises(ValueError, match="P"):
        cameras.projection(v, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="dist_coeffs"):
        cameras.projection(v, P, torch.zeros(4))


def test_pixel_rays_hit_their_pixel_centres():
    """A point on each ray projects (look_at + perspective) onto that pixel's NDC centre."""
    eye = torch.tensor([0.5, 1.0, -3.0], dtype=torch.float64)
    h, w, angle = 6, 8, 20.0
    origins, dirs = cameras.pixel_rays(eye, viewing_angle=angle, image_size=(h, w))
    assert origins.shape == dirs.shape == (1, h * w, 3)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, h * w, dtype=torch.float64))
    pts = origins + 2.5 * dirs
    ndc = cameras.perspective(cameras.look_at(pts, eye), angle)
    xs, ys = C.pixel_centres(h, w)
    yy, xx = torch.meshgrid(torch.tensor(ys), torch.tensor(xs), indexing="ij")
    assert torch.allclose(ndc[0, :, 0], xx.reshape(-1).double(), atol=1e-9)
    assert torch.allclose(ndc[0, :, 1], yy.reshape(-1).double(), atol=1e-9)
    with pytest.raises(ValueError, match="image_size"):
        cameras.pixel_rays(eye, image_size=0)
