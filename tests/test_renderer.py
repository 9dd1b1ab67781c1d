"""SoftRas-compatible modules: renderers, rasterizers, transforms, lighting modules."""

import math

import pytest
import torch
import torch.nn.functional as F

from taichi_softras import DATA_DIR, cameras
from taichi_softras.mesh import Mesh
from taichi_softras.renderer import (
    Lighting,
    Look,
    LookAt,
    Projection,
    Rasterizer,
    Renderer,
    SoftRasterizer,
    SoftRenderer,
    Transform,
    default_eye,
)


@pytest.fixture(scope="module")
def sphere():
    return Mesh.from_obj(DATA_DIR / "sphere_642.obj")


def test_sphere_disc_area_matches_analytic_projection(sphere):
    """A unit sphere seen from d = 1/tan(30 deg) + 1 projects to a disc of NDC radius
    tan(asin(1/d)) / tan(30 deg); the soft silhouette's area matches it within 2% at 128^2."""
    size = 128
    alpha = SoftRenderer(image_size=size, camera_mode="look_at").render_mesh(sphere, mode="silhouettes")
    d = -default_eye(30)[2]
    r_ndc = math.tan(math.asin(1 / d)) / math.tan(math.radians(30))
    analytic = math.pi * (r_ndc * size / 2) ** 2
    assert abs(alpha.sum().item() / analytic - 1) < 0.02
    # ... and it is centred (SoftRas's default camera looks at the origin).
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    cx = (alpha[0] * xs).sum() / alpha[0].sum()
    cy = (alpha[0] * ys).sum() / alpha[0].sum()
    assert abs(cx - size / 2) < 0.5 and abs(cy - size / 2) < 0.5


def test_modes_shapes_and_consistency(sphere):
    r = SoftRenderer(image_size=(24, 32), camera_mode="look_at")
    rgba = r.render_mesh(sphere)
    assert rgba.shape == (1, 4, 24, 32)
    assert torch.equal(r.render_mesh(sphere, "rgb"), rgba[:, :3])
    assert torch.equal(r.render_mesh(sphere, "silhouettes"), rgba[:, 3])
    depth = r.render_mesh(sphere, "depth")
    assert depth.shape == (1, 24, 32)
    # Depth is the eye distance minus ~1 on the sphere's front, `far` on the background.
    d = -default_eye(30)[2]
    assert abs(depth[0, 12, 16].item() - (d - 1)) < 0.02
    assert depth[0, 0, 0].item() == pytest.approx(100.0)


def test_render_mesh_leaves_the_mesh_unchanged(sphere):
    v, t = sphere.vertices.clone(), sphere.textures.clone()
    SoftRenderer(image_size=16, camera_mode="look_at").render_mesh(sphere)
    assert torch.equal(sphere.vertices, v) and torch.equal(sphere.textures, t)


def test_forward_equals_render_mesh(sphere):
    r = SoftRenderer(image_size=16, camera_mode="look_at")
    assert torch.equal(r(sphere.vertices, sphere.faces), r.render_mesh(sphere))
    tex = torch.rand(1, sphere.num_vertices, 3)
    out = r(sphere.vertices, sphere.faces, tex, texture_type="vertex")
    assert torch.equal(out, r.render_mesh(Mesh(sphere.vertices, sphere.faces, tex, texture_type="vertex")))
    assert r.lighting.light_mode == "vertex" and r.rasterizer.texture_type == "vertex"


def test_lighting_brightens_the_top(sphere):
    """Directional light along +y: the top of the sphere (image top) is brighter than the bottom."""
    rgb = SoftRenderer(image_size=32, camera_mode="look_at").render_mesh(sphere, "rgb")[0, 0]
    assert rgb[6, 16] > rgb[26, 16] + 0.3
    assert rgb[26, 16] == pytest.approx(0.5, abs=0.02)  # ambient only where n.y < 0


def test_set_eyes_from_angles_batched_equals_one_by_one(sphere):
    spot = Mesh.from_obj(DATA_DIR / "spot" / "spot_triangulated.obj")
    r = SoftRenderer(image_size=24, camera_mode="look_at")
    az = torch.tensor([0.0, 90.0, 200.0])
    r.transform.set_eyes_from_angles(torch.full((3,), 2.732), torch.full((3,), 30.0), az)
    assert r.transform.eyes.shape == (3, 3)
    batch = r(spot.vertices.expand(3, -1, -1), spot.faces.expand(3, -1, -1))
    for i, a in enumerate(az.tolist()):
        r.transform.set_eyes_from_angles(2.732, 30.0, a)
        assert torch.allclose(batch[i], r.render_mesh(spot)[0], atol=1e-5)
    assert not torch.allclose(batch[0], batch[1], atol=1e-2)
    r.transform.set_eyes([0.0, 0.0, -2.732])
    assert r.transform.eyes == (0.0, 0.0, -2.732)


def test_projection_camera_matches_look_at(sphere):
    """P = K [R | -R eye] with SoftRas's pixel intrinsics reproduces look_at + perspective."""
    eye = torch.tensor(cameras.get_points_from_angles(3.0, 20.0, 40.0))
    rot = cameras.camera_rotation((-eye)[None], torch.tensor([[0.0, 1.0, 0.0]]))[0]
    orig, t = 256.0, math.tan(math.radians(30))
    K = torch.tensor([[orig / (2 * t), 0, orig / 2], [0, orig / (2 * t), orig / 2], [0, 0, 1]])
    P = K @ torch.cat([rot, -(rot @ eye)[:, None]], dim=1)
    a = SoftRenderer(image_size=32, camera_mode="projection", P=P, orig_size=orig).render_mesh(sphere)
    r = SoftRenderer(image_size=32, camera_mode="look_at")
    r.transform.set_eyes(eye)
    b = r.render_mesh(sphere)
    assert a[:, 3].sum() > 50
    assert (a - b).abs().max() < 1e-2


def test_look_mode_honours_camera_direction(sphere):
    """SoftRas's Look drops camera_direction; ours uses it: looking at the origin equals look_at."""
    eye = (1.0, 0.5, -2.5)
    look = SoftRenderer(image_size=32, camera_mode="look", eye=eye, camera_direction=[-c for c in eye])
    look_at = SoftRenderer(image_size=32, camera_mode="look_at", eye=eye)
    assert torch.allclose(look.render_mesh(sphere), look_at.render_mesh(sphere), atol=1e-5)
    away = SoftRenderer(image_size=32, camera_mode="look", eye=eye, camera_direction=(0, 0, -1))
    assert away.render_mesh(sphere)[:, 3].sum() == 0  # the sphere is behind the camera


def test_set_sigma_and_gamma(sphere):
    r = SoftRenderer(image_size=32, camera_mode="look_at")
    sharp = r.render_mesh(sphere, "silhouettes")
    r.set_sigma(1e-3)
    r.set_gamma(1e-2)
    assert r.rasterizer.sigma_val == 1e-3 and r.rasterizer.config.gamma_val == 1e-2
    blurred = r.render_mesh(sphere, "silhouettes")
    assert (blurred > 0.01).sum() > (sharp > 0.01).sum() + 20
    with pytest.raises(ValueError, match="sigma_val"):
        r.set_sigma(0.0)


def test_anti_aliasing_is_2x_then_average_pool(sphere):
    mesh = Transform("look_at")(sphere)
    aa = SoftRasterizer(image_size=16, anti_aliasing=True)(mesh)
    big = SoftRasterizer(image_size=32)(mesh)
    assert torch.allclose(aa, F.avg_pool2d(big, 2), atol=1e-6)


def test_hard_renderer(sphere):
    r = Renderer(image_size=24, camera_mode="look_at", anti_aliasing=False)
    rgba = r.render_mesh(sphere)
    alpha = rgba[:, 3]
    assert set(alpha.unique().tolist()) <= {0.0, 1.0}
    soft = SoftRenderer(image_size=24, camera_mode="look_at", sigma_val=1e-7).render_mesh(sphere, "silhouettes")
    assert (alpha != (soft > 0.5).float()).sum() <= 4  # same coverage up to edge pixels
    # Default anti_aliasing=True: 2x2 super-sampling gives quarter steps.
    aa = Renderer(image_size=24, camera_mode="look_at").render_mesh(sphere, "silhouettes")
    assert set((aa * 4).unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    # SoftRas's Renderer.forward takes the mesh itself.
    assert torch.equal(r(sphere), rgba)


def test_gradients_reach_vertices(sphere):
    v = sphere.vertices.clone().requires_grad_(True)
    r = SoftRenderer(image_size=32, camera_mode="look_at", sigma_val=1e-4)
    img = r(v, sphere.faces)
    (img[:, 3].sum() + img[:, :3].mean()).backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_config_is_frozen_and_validated():
    r = SoftRasterizer()
    with pytest.raises(dataclasses_frozen_error()):
        r.config.sigma_val = 1.0
    r.sigma_val = 2e-5
    assert r.config.sigma_val == 2e-5
    with pytest.raises(ValueError, match="aggr_func_rgb"):
        r.aggr_func_rgb = "max"


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize(
    "kwargs, name, allowed",
    [
        (dict(camera_mode="orbit"), "camera_mode", ("projection", "look", "look_at")),
        (dict(camera_mode="look_at", aggr_func_rgb="max"), "aggr_func_rgb", ("softmax", "hard")),
        (dict(camera_mode="look_at", aggr_func_alpha="mean"), "aggr_func_alpha", ("prod", "sum", "hard")),
        (dict(camera_mode="look_at", dist_func="l1"), "dist_func", ("euclidean", "barycentric", "hard")),
        (dict(camera_mode="look_at", texture_type="uv"), "texture_type", ("surface", "vertex")),
        (dict(camera_mode="look_at", light_mode="uv"), "light_mode", ("surface", "vertex")),
    ],
)
def test_bad_names_raise_naming_argument_and_allowed_values(kwargs, name, allowed):
    with pytest.raises(ValueError) as err:
        SoftRenderer(**kwargs)
    assert name in str(err.value) and all(a in str(err.value) for a in allowed)


def test_bad_mode_and_texture_mode(sphere):
    r = SoftRenderer(image_size=8, camera_mode="look_at")
    with pytest.raises(ValueError, match="mode.*silhouettes"):
        r.render_mesh(sphere, mode="alpha")
    with pytest.raises(ValueError, match="mode.*surface.*vertex"):
        r.set_texture_mode("uv")


@pytest.mark.parametrize("P", [None, torch.zeros(4, 4), torch.zeros(2, 3, 3), torch.zeros(3)])
def test_bad_projection_matrix(P):
    with pytest.raises(ValueError, match="P must"):
        SoftRenderer(camera_mode="projection", P=P)


def test_eyes_need_an_eye_camera():
    t = Transform("projection", P=torch.eye(3, 4))
    with pytest.raises(ValueError, match="camera_mode"):
        t.set_eyes_from_angles(2.0, 0.0, 0.0)


def test_transform_modules_accept_tensors_and_meshes(sphere):
    v = sphere.vertices
    assert torch.allclose(LookAt()(v), cameras.perspective(cameras.look_at(v, default_eye(30))))
    assert torch.allclose(Look(eye=(0, 0, -3))(v), cameras.perspective(cameras.look(v, (0, 0, -3))))
    assert torch.allclose(LookAt(perspective=False, viewing_scale=0.5)(v)[..., :2], cameras.look_at(v, default_eye(30))[..., :2] * 0.5)
    P = torch.eye(3, 4)[None]
    assert torch.allclose(Projection(P)(v), cameras.projection(v, P))
    moved = Transform("look_at")(sphere)
    assert isinstance(moved, Mesh) and torch.allclose(moved.vertices, LookAt()(v))


def test_lighting_module_mode_mismatch(sphere):
    with pytest.raises(ValueError, match="light_mode"):
        Lighting("vertex")(sphere)


def test_rasterizer_hard_vs_module_outputs(sphere):
    mesh = Transform("look_at")(sphere)
    out = Rasterizer(image_size=8)(mesh, "rgb")
    assert out.shape == (1, 3, 8, 8)


def test_modules_move_with_to(sphere):
    r = SoftRenderer(image_size=8, camera_mode="look_at").to("cpu")
    assert r.render_mesh(sphere.to("cpu")).device.type == "cpu"


@pytest.mark.cuda
def test_renderer_on_cuda_matches_reference(sphere):
    from taichi_softras.reference.rasterize import soft_rasterize as reference

    mesh = sphere.to("cuda")
    r = SoftRenderer(image_size=32, camera_mode="look_at").to("cuda")
    gpu = r.render_mesh(mesh)
    assert gpu.device.type == "cuda"
    lit = r.transform(r.lighting(mesh))
    ref = reference(lit.face_vertices.cpu(), lit.face_textures.cpu(), 32, fill_back=True)
    assert (gpu.cpu() - ref).abs().max() < 1e-3
