"""Bad arguments that used to be accepted silently, or failed deep inside with an unrelated error,
get one clear ValueError/TypeError naming the argument."""

import math

import pytest
import torch

from taichi_softras import Mesh, SoftRenderer, cameras, soft_rasterize
from taichi_softras import functional as srf
from taichi_softras.ops.probe import probe_rays, probe_view

INF, NAN = float("inf"), float("nan")


def scene(device="cpu"):
    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], device=device)
    return fv, torch.ones(1, 1, 1, 3, device=device)


def raises_naming(exc, name, fn, *args, **kw):
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert name in str(info.value), str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    "kw, exc, name",
    [
        (dict(sigma_val=INF), ValueError, "sigma_val"),
        (dict(sigma_val=NAN), ValueError, "sigma_val"),
        (dict(gamma_val=INF), ValueError, "gamma_val"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(eps=-1e-3), ValueError, "eps"),
        (dict(eps=1.0), ValueError, "eps"),
        (dict(eps=NAN), ValueError, "eps"),
        (dict(near=INF), ValueError, "near"),
        (dict(far=INF), ValueError, "far"),
        (dict(far=NAN), ValueError, "far"),
        (dict(dist_eps=NAN), ValueError, "dist_eps"),
        (dict(background_color=(0.0, NAN, 0.0)), ValueError, "background_color"),
        (dict(background_color=(INF, 0.0, 0.0)), ValueError, "background_color"),
        (dict(background_color=(0.0, 0.0)), ValueError, "background_color"),
        (dict(background_color=0.5), TypeError, "background_color"),
        (dict(background_color="white"), TypeError, "background_color"),
        (dict(sigma_val="1e-4"), TypeError, "sigma_val"),
    ],
)
def test_rasterize_settings_are_checked(kw, exc, name):
    msg = raises_naming(exc, name, soft_rasterize, *scene(), image_size=8, **kw)
    assert "must be" in msg  # and it says what is accepted


def test_background_color_accepts_a_tensor():
    img = soft_rasterize(*scene(), image_size=8, background_color=torch.tensor([0.25, 0.5, 1.0]))
    assert torch.allclose(img[0, :3, 0, 0], torch.tensor([0.25, 0.5, 1.0]))


def test_empty_uv_texture_is_named():
    """In-process check of the validation (tests/test_fuzz_rasterize.py runs the old SIGFPE in a
    child process)."""
    fv, _ = scene()
    for th, tw in ((0, 0), (0, 4), (4, 0)):
        raises_naming(ValueError, "textures", soft_rasterize, fv, torch.zeros(1, 3, th, tw), image_size=8, texture_type="uv", uvs=torch.rand(1, 1, 3, 2))


def test_meta_tensors_name_the_argument_and_the_devices():
    fv, tex = scene("meta")
    msg = raises_naming(ValueError, "face_vertices", soft_rasterize, fv, tex, image_size=8)
    assert "'cpu'" in msg and "'cuda'" in msg
    o, d = torch.zeros(1, 2, 3, device="meta"), torch.zeros(1, 2, 3, device="meta")
    raises_naming(ValueError, "origins", probe_rays, o, d, torch.zeros(1, 4, 3, device="meta"), 0.1, torch.zeros(1, 4, device="meta"))
    v = torch.zeros(1, 4, 3, device="meta")
    raises_naming(ValueError, "faces", srf.face_vertices, v, torch.zeros(1, 2, 3, dtype=torch.long, device="meta"))
    raises_naming(ValueError, "faces", Mesh, v[0], torch.zeros(2, 3, dtype=torch.long, device="meta"))
    raises_naming(ValueError, "vertices", cameras.look_at, v, (0.0, 0.0, -2.0))


# --- face indices ----------------------------------------------------------------------------------
def test_face_vertices_rejects_float_and_out_of_range_indices():
    v = torch.rand(1, 4, 3)
    raises_naming(TypeError, "faces", srf.face_vertices, v, torch.tensor([[[0.0, 1.0, 2.5]]]))
    raises_naming(TypeError, "faces", srf.face_vertices, v, torch.tensor([[[True, False, True]]]))
    raises_naming(ValueError, "faces", srf.face_vertices, v, torch.tensor([[[0, 1, 4]]]))
    raises_naming(ValueError, "faces", srf.face_vertices, v, torch.tensor([[[0, -1, 2]]]))
    got = srf.face_vertices(v, torch.tensor([[[3, 1, 2]]], dtype=torch.int32))
    assert torch.equal(got[0, 0], v[0, [3, 1, 2]])


def test_mesh_faces_setter_checks_like_the_constructor():
    mesh = Mesh(torch.rand(4, 3), torch.tensor([[0, 1, 2]]))
    for bad, exc in ((torch.tensor([[[0, 1, 4]]]), ValueError), (torch.tensor([[[-1, 1, 2]]]), ValueError), (torch.tensor([[[0.0, 1.0, 2.0]]]), TypeError)):
        raises_naming(exc, "faces", setattr, mesh, "faces", bad)
        assert torch.equal(mesh.faces, torch.tensor([[[0, 1, 2]]]))  # unchanged
    raises_naming(ValueError, "faces", Mesh, torch.rand(4, 3), torch.tensor([[0, 1, 4]]))
    mesh.faces = torch.tensor([[[3, 2, 1]]])
    assert mesh.face_vertices.shape == (1, 1, 3, 3)


# --- probing ---------------------------------------------------------------------------------------
def probe_scene():
    eye = torch.tensor([[0.0, 0.0, -2.7]])
    anchors = torch.tensor([[[0.0, 0.0, 0.0], [0.3, 0.1, 0.0], [-0.2, 0.3, 0.1]]])
    return eye, anchors, torch.tensor([[0.5, 0.2, 0.9]])


@pytest.mark.parametrize("which", ["ray_labels", "anchor_labels"])
def test_float_labels_are_rejected(which):
    origins = torch.zeros(1, 2, 3)
    directions = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.6, 0.8]]])
    _, anchors, values = probe_scene()
    labels = dict(ray_labels=torch.ones(1, 2, dtype=torch.bool), anchor_labels=torch.ones(1, 3, dtype=torch.long))
    probe_rays(origins, directions, anchors, 0.1, values, **labels)  # bool and integer labels are fine
    labels[which] = labels[which].float()
    raises_naming(TypeError, which, probe_rays, origins, directions, anchors, 0.1, values, **labels)


@pytest.mark.parametrize("angle", [0.0, -30.0, 90.0, 180.0, 270.0, INF, NAN])
def test_probe_view_rejects_degenerate_viewing_angles(angle):
    msg = raises_naming(ValueError, "viewing_angle", probe_view, *probe_scene()[:2], 0.1, probe_scene()[2], 8, viewing_angle=angle)
    assert "(0, 90)" in msg


def test_probe_view_accepts_a_valid_angle():
    eye, anchors, values = probe_scene()
    assert probe_view(eye, anchors, 0.1, values, 8, viewing_angle=45.0).value.shape == (1, 64)


# --- cameras ---------------------------------------------------------------------------------------
VERTS = torch.tensor([[[0.2, 0.1, 0.0], [-0.3, 0.4, 0.2], [0.1, -0.2, -0.3]]])


def test_eye_at_its_target_is_a_clear_error():
    raises_naming(ValueError, "eye equals at", cameras.look_at, VERTS, (0.0, 0.0, 0.0))
    raises_naming(ValueError, "eye equals at", cameras.look_at, VERTS, (1.0, 2.0, 3.0), at=(1.0, 2.0, 3.0))
    raises_naming(ValueError, "eye equals at", cameras.pixel_rays, torch.zeros(3), image_size=4)
    raises_naming(ValueError, "batch item 1", cameras.look_at, VERTS.expand(2, 3, 3), torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 0.0]]))
    raises_naming(ValueError, "direction", cameras.look, VERTS, (0.0, 0.0, -2.0), direction=(0.0, 0.0, 0.0))
    renderer = SoftRenderer(image_size=8, camera_mode="look_at", eye=(0.0, 0.0, 0.0))
    raises_naming(ValueError, "eye equals at", renderer, VERTS, torch.tensor([[[0, 1, 2]]]))


def test_up_parallel_to_the_view_is_a_clear_error():
    raises_naming(ValueError, "up", cameras.look_at, VERTS, (0.0, 2.0, 0.0))
    raises_naming(ValueError, "up", cameras.look_at, VERTS, (0.0, 2.0, 0.0), up=(0.0, 0.0, 0.0))
    raises_naming(ValueError, "up", cameras.look, VERTS, (0.0, 0.0, 0.0), direction=(0.0, -1.0, 0.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearly_parallel_up_gives_the_limit_frame(dtype):
    """Elevation 90 degrees leaves cos(90 deg) ~ 6e-17 of the azimuth in the eye: SoftRas's eps=1e-5
    normalization collapsed that view onto a line; here it is the limit of lower elevations."""
    verts = VERTS.to(dtype)
    for azimuth in (0.0, 40.0):
        top = cameras.look_at(verts, cameras.get_points_from_angles(2.732, 90.0, azimuth))
        assert torch.allclose(torch.cdist(top, top), torch.cdist(verts, verts), atol=1e-5)  # a rigid motion
        assert torch.allclose(top[..., 2], 2.732 - verts[..., 1], atol=1e-5)  # looking down -y
        lower = cameras.look_at(verts, cameras.get_points_from_angles(2.732, 90.0 - 1e-2, azimuth))
        assert torch.allclose(top, lower, atol=2e-3)  # continuous in the elevation


def test_non_finite_camera_inputs_are_named():
    raises_naming(ValueError, "eye", cameras.look_at, VERTS, (0.0, NAN, -2.0))
    raises_naming(ValueError, "up", cameras.look_at, VERTS, (0.0, 0.0, -2.0), up=(0.0, INF, 0.0))
    raises_naming(ValueError, "at", cameras.look_at, VERTS, (0.0, 0.0, -2.0), at=(NAN, 0.0, 0.0))


@pytest.mark.parametrize("angle", [0.0, -10.0, 90.0, 120.0, INF])
def test_perspective_rejects_degenerate_viewing_angles(angle):
    raises_naming(ValueError, "viewing_angle", cameras.perspective, VERTS + torch.tensor([0.0, 0.0, 2.0]), angle)


def test_perspective_keeps_valid_angles():
    v = VERTS + torch.tensor([0.0, 0.0, 2.0])
    ndc = cameras.perspective(v, 30.0)
    assert torch.allclose(ndc[..., 0], v[..., 0] / v[..., 2] / math.tan(math.radians(30.0)))
