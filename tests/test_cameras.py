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


# --- the Camera value ---------------------------------------------------------------------------

from taichi_softras import Camera, Mesh, SoftRenderer, probe_view  # noqa: E402
from taichi_softras.rotations import axis_angle_to_matrix  # noqa: E402


def _opencv_scene(dtype=torch.float64):
    """A non-square image, fx != fy, an off-centre principal point, a tilted camera."""
    K = torch.tensor([[52.0, 0.0, 23.3], [0.0, 41.0, 10.6], [0.0, 0.0, 1.0]], dtype=dtype)
    R = axis_angle_to_matrix(torch.tensor([0.15, -0.3, 0.1], dtype=dtype))
    t = torch.tensor([0.05, -0.1, 2.5], dtype=dtype)
    return K, R, t, (24, 40)


def _pinhole(K, R, t, X):
    """Independent statement of OpenCV's pinhole: u = fx x / z + cx, v = fy y / z + cy."""
    xc = X @ R.T + t
    return torch.stack((K[0, 0] * xc[:, 0] / xc[:, 2] + K[0, 2], K[1, 1] * xc[:, 1] / xc[:, 2] + K[1, 2]), -1), xc[:, 2]


def test_from_opencv_lands_points_where_the_pinhole_formula_does():
    K, R, t, size = _opencv_scene()
    X = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.4
    uv, depth = Camera.from_opencv(K, R, t, size).project(X[None])
    want_uv, want_z = _pinhole(K, R, t, X)
    torch.testing.assert_close(uv[0], want_uv, atol=1e-9, rtol=0)
    torch.testing.assert_close(depth[0], want_z, atol=1e-12, rtol=0)


def test_from_opencv_renders_a_point_at_its_pixel():
    """A small triangle around a 3D point: its rendered silhouette is centred on the pixel the
    pinhole formula gives (sub-pixel), in a non-square image with the rows counted from the top."""
    K, R, t, (h, w) = _opencv_scene(torch.float32)
    cam = Camera.from_opencv(K, R, t, (h, w))
    renderer = SoftRenderer(image_size=8, camera_mode="look_at", sigma_val=1e-6, light_intensity_directionals=0.0)
    for point in ([0.1, 0.05, 0.0], [-0.3, -0.2, 0.1]):
        p = torch.tensor(point)
        tri = p + 0.06 * torch.tensor([[1.0, 0.0, 0.0], [-0.5, 0.87, 0.0], [-0.5, -0.87, 0.0]])
        centroid = tri.mean(0)
        sil = renderer(tri[None], torch.tensor([[[0, 1, 2]]]), mode="silhouettes", camera=cam)[0]
        assert sil.shape == (h, w)
        rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        got = torch.stack(((sil * cols).sum() / sil.sum(), (sil * rows).sum() / sil.sum()))
        (want,), _ = _pinhole(K.double(), R.double(), t.double(), centroid.double()[None])
        # the projected centroid is not the image of the 3D centroid: allow the triangle's perspective skew
        assert (got.double() - want).abs().max() < 0.5, (got, want)


def test_look_at_camera_equals_the_look_at_mode_exactly():
    sphere = Mesh.from_obj(__import__("taichi_softras").DATA_DIR / "sphere_642.obj")
    eye = cameras.get_points_from_angles(2.7, 20.0, 35.0)
    mode = SoftRenderer(image_size=24, camera_mode="look_at", eye=eye, viewing_angle=25.0)
    cam = Camera.look_at(eye, viewing_angle=25.0, image_size=24)
    assert torch.equal(mode.render_mesh(sphere), mode.render_mesh(sphere, camera=cam))
    v = torch.randn(2, 40, 3, generator=torch.Generator().manual_seed(1))
    eyes = torch.tensor([eye, (0.5, 1.0, -2.0)])
    assert torch.equal(Camera.look_at(eyes, viewing_angle=25.0).transform(v), cameras.perspective(cameras.look_at(v, eyes), 25.0))
    assert torch.equal(mode.camera(v).transform(v), cameras.perspective(cameras.look_at(v, eye), 25.0))


def test_from_projection_equals_the_projection_mode_exactly():
    P = torch.tensor([[300.0, 0.0, 128.0, 10.0], [0.0, 300.0, 128.0, -5.0], [0.0, 0.0, 1.0, 3.0]])
    dist = torch.tensor([0.01, -0.002, 0.001, 0.0005, 0.0])
    v = torch.randn(1, 50, 3, generator=torch.Generator().manual_seed(2)) * 0.3
    cam = Camera.from_projection(P, 256, dist_coeffs=dist)
    assert torch.equal(cam.transform(v), cameras.projection(v, P, dist, 256))


@pytest.mark.parametrize("kind", ["opencv", "look_at", "projection"])
def test_the_ray_of_a_pixel_projects_back_onto_it(kind):
    K, R, t, size = _opencv_scene()
    if kind == "opencv":
        cam = Camera.from_opencv(K, R, t, size)
    elif kind == "look_at":
        cam = Camera.look_at(torch.tensor([0.3, 0.5, -2.0], dtype=torch.float64), image_size=size)
    else:
        P = torch.cat((K @ R, (K @ t)[:, None]), 1)
        cam = Camera.from_projection(P, 40, orig_size=40.0)
        size = (40, 40)
    origins, dirs = cam.rays()
    h, w = size
    points = origins + 1.7 * dirs
    uv, depth = cam.project(points)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    tol = 1e-3 if kind == "projection" else 1e-9  # SoftRas's P mode divides by z + 1e-5
    torch.testing.assert_close(uv[0], torch.stack((cols, rows), -1).reshape(-1, 2), atol=tol, rtol=0)
    assert bool((depth > 0).all())


def test_probing_with_an_opencv_camera_equals_the_equivalent_look_at_camera():
    h, w, angle = 20, 28, 20.0
    eye = torch.tensor([[0.4, 0.6, -2.2]], dtype=torch.float64)
    look_at = Camera.look_at(eye, viewing_angle=angle, image_size=(h, w))
    # The same camera in OpenCV's terms: y down, focal S / (2 tan(angle)), principal point at the centre.
    R = look_at.rotation[0] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)[:, None]
    t = -R @ eye[0]
    f = min(h, w) / (2 * math.tan(math.radians(angle)))
    K = torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    opencv = Camera.from_opencv(K, R, t, (h, w))
    gen = torch.Generator().manual_seed(3)
    anchors = (torch.rand(1, 3000, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.8
    values = torch.rand(1, 3000, generator=gen, dtype=torch.float64)
    sil = (torch.rand(1, h, w, generator=gen) > 0.5).double()
    a = probe_view(look_at, anchors, 0.03, values, silhouettes=sil, boundary_aware=True)
    b = probe_view(opencv, anchors, 0.03, values, silhouettes=sil, boundary_aware=True)
    assert a.count.sum() > 1000  # the rays do probe
    assert torch.equal(a.index, b.index) and torch.equal(a.count, b.count)
    torch.testing.assert_close(a.value, b.value, atol=0, rtol=0)


def test_camera_is_immutable_and_batched():
    cam = Camera.look_at(torch.tensor([[0.0, 0.0, -2.0], [1.0, 0.0, -2.0]]))
    with pytest.raises(Exception, match="cannot assign"):
        cam.eye = torch.zeros(2, 3)
    assert cam.batch_size == 2 and torch.equal(cam[1].eye, cam.eye[1:])
    with pytest.raises(ValueError, match="batch"):
        cam.transform(torch.zeros(3, 4, 3))
    with pytest.raises(ValueError, match="no skew"):
        Camera.from_opencv(torch.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), torch.eye(3), torch.zeros(3), (4, 4))
