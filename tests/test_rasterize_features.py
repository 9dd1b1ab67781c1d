"""Auxiliary outputs, UV texture maps, ragged batches, no-grad and torch.compile ."""

import pytest
import torch

import taichi_softras as sr
from taichi_softras import soft_rasterize
from taichi_softras.io import load_image, read_obj
from taichi_softras.ops.rasterize import OUTPUTS, RasterOutputs, engine_for
from taichi_softras.reference.rasterize import soft_rasterize as reference


def scene(seed, b=2, f=8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(b, f, 3, 3, generator=g, dtype=dtype) * 2.2 - 1.1
    fv[..., 2] = torch.rand(b, f, 3, generator=g, dtype=dtype) * 3 + 1.5
    return fv, g


def rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


DIFF_OUTPUTS = ["depth", "barycentrics", "normals", "screen_normals", "group_masks"]


@pytest.mark.backend
@pytest.mark.usefixtures("float64_raster")
@pytest.mark.parametrize("seed", range(6))
def test_auxiliary_outputs_match_reference(seed):
    fv, g = scene(seed)
    b, f = fv.shape[:2]
    tex = torch.rand(b, f, 3, 3, generator=g, dtype=fv.dtype)
    vn = torch.randn(b, f, 3, 3, generator=g, dtype=fv.dtype)
    groups = torch.randint(0, 3, (b, f), generator=g)
    kw = dict(
        image_size=(11, 13), sigma_val=[1e-3, 1e-2][seed % 2], gamma_val=0.05, texture_type="vertex",
        dist_func=["euclidean", "barycentric", "hard"][seed % 3], fill_back=seed % 2 == 0,
        vertex_normals=vn, face_groups=groups, outputs=OUTPUTS,
    )
    inputs = [t.clone().requires_grad_() for t in (fv, tex, vn)]
    refs = [t.clone().requires_grad_() for t in (fv, tex, vn)]
    out = soft_rasterize(inputs[0], inputs[1], **{**kw, "vertex_normals": inputs[2]})
    ref = reference(refs[0], refs[1], **{**kw, "vertex_normals": refs[2]})
    assert isinstance(out, RasterOutputs)
    assert torch.equal(out.face_index, ref.face_index)
    assert (out.face_index >= 0).any() and (out.face_index == -1).any()
    assert out.group_masks.shape == (b, int(groups.max()) + 1, 11, 13)
    for name in ["rgba"] + DIFF_OUTPUTS:
        assert (getattr(out, name) - getattr(ref, name)).abs().max() <= 1e-9, name
    weights = {n: torch.rand(getattr(ref, n).shape, generator=g, dtype=fv.dtype) for n in ["rgba"] + DIFF_OUTPUTS}
    sum(((getattr(out, n) * w).sum() for n, w in weights.items())).backward()
    sum(((getattr(ref, n) * w).sum() for n, w in weights.items())).backward()
    for a, r in zip(inputs, refs):
        assert rel(a.grad, r.grad) <= 1e-6


def test_default_return_type_is_unchanged():
    fv, g = scene(0, b=1)
    tex = torch.rand(1, fv.shape[1], 1, 3, dtype=fv.dtype)
    assert isinstance(soft_rasterize(fv, tex, image_size=8), torch.Tensor)
    img, depth = soft_rasterize(fv, tex, image_size=8, return_depth=True)
    assert img.shape == (1, 4, 8, 8) and depth.shape == (1, 1, 8, 8)
    out = soft_rasterize(fv, tex, image_size=8, outputs=["face_index"])
    assert out.depth is None and out.face_index.dtype == torch.int64


@pytest.mark.backend
@pytest.mark.usefixtures("float64_raster")
@pytest.mark.parametrize("wrap", ["repeat", "clamp"])
def test_uv_textures_match_reference(wrap):
    fv, g = scene(11)
    b, f = fv.shape[:2]
    image = torch.rand(b, 3, 5, 7, generator=g, dtype=fv.dtype)
    uvs = torch.rand(b, f, 3, 2, generator=g, dtype=fv.dtype) * 1.6 - 0.3  # some outside [0, 1]
    kw = dict(image_size=12, sigma_val=3e-3, gamma_val=0.1, texture_type="uv", texture_wrap=wrap)
    a = [t.clone().requires_grad_() for t in (fv, image, uvs)]
    r = [t.clone().requires_grad_() for t in (fv, image, uvs)]
    out = soft_rasterize(a[0], a[1], uvs=a[2], **kw)
    ref = reference(r[0], r[1], uvs=r[2], **kw)
    assert (out - ref).abs().max() <= 1e-9
    w = torch.rand(out.shape, generator=g, dtype=fv.dtype)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for x, y in zip(a, r):
        assert rel(x.grad, y.grad) <= 1e-6
    assert a[1].grad.abs().sum() > 0 and a[2].grad.abs().sum() > 0


@pytest.mark.backend
@pytest.mark.usefixtures("float64_raster")
def test_uv_gradcheck_tiny():
    fv = torch.tensor([[[[-0.7, -0.6, 2.0], [0.2, 0.8, 2.5], [0.7, -0.5, 3.0]]]], dtype=torch.float64)
    image = torch.rand(1, 3, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    uvs = torch.tensor([[[[0.1, 0.2], [0.8, 0.3], [0.4, 0.9]]]], dtype=torch.float64)

    def fn(fv, image, uvs):
        return soft_rasterize(fv, image, image_size=5, sigma_val=2e-2, gamma_val=0.2, texture_type="uv", uvs=uvs)

    assert torch.autograd.gradcheck(fn, tuple(t.requires_grad_() for t in (fv, image, uvs)), eps=1e-6, atol=1e-5, rtol=1e-3)


def _spot_screen(dtype=torch.float32):
    obj = read_obj(sr.DATA_DIR / "spot" / "spot_triangulated.obj")
    v = torch.tensor(obj.vertices, dtype=dtype)[None]
    faces = torch.tensor(obj.faces)
    eye = sr.get_points_from_angles(2.732, 30.0, -45.0)
    fv = sr.perspective(sr.look_at(v, eye))[0][faces][None].contiguous()
    image = load_image(sr.DATA_DIR / "spot" / "spot_texture.png").permute(2, 0, 1)[None].to(dtype).contiguous()
    uvs = torch.tensor(obj.uvs, dtype=dtype)[None].contiguous()
    return fv, image, uvs


def test_spot_uv_render_matches_baked_texels():
    fv, image, uvs = _spot_screen()
    mesh = sr.Mesh.from_obj(sr.DATA_DIR / "spot" / "spot_triangulated.obj", load_texture=True, texture_res=16)
    kw = dict(image_size=96, sigma_val=1e-6)
    uv_img = soft_rasterize(fv, image, texture_type="uv", uvs=uvs, **kw)
    baked = soft_rasterize(fv, mesh.textures.to(fv.dtype), **kw)
    mask = baked[0, 3] > 0.5
    assert torch.equal(uv_img[0, 3], baked[0, 3])
    diff = (uv_img[0, :3] - baked[0, :3]).abs()[:, mask]
    assert diff.mean() < 0.02 and torch.quantile(diff.flatten(), 0.95) < 0.1


def test_optimizing_a_texture_image_recovers_visible_texels():
    g = torch.Generator().manual_seed(4)
    fv = torch.tensor([[[[-0.9, -0.9, 2.0], [-0.9, 0.9, 2.0], [0.9, -0.9, 2.0]],
                        [[0.9, -0.9, 2.0], [-0.9, 0.9, 2.0], [0.9, 0.9, 2.0]]]])
    uvs = torch.tensor([[[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]])
    target_image = torch.rand(1, 3, 6, 6, generator=g)
    kw = dict(image_size=48, sigma_val=1e-5, texture_type="uv", uvs=uvs, texture_wrap="clamp")
    target = soft_rasterize(fv, target_image, **kw).detach()
    image = torch.full((1, 3, 6, 6), 0.5, requires_grad=True)
    opt = torch.optim.Adam([image], lr=0.05)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = (soft_rasterize(fv, image, **kw) - target)[:, :3].square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]
    assert (image.detach() - target_image).abs().max() < 0.05  # every texel is visible in this quad


@pytest.mark.backend
@pytest.mark.usefixtures("float64_raster")
def test_ragged_batch_equals_rendering_each_mesh_alone():
    fv, g = scene(21, b=3, f=9, dtype=torch.float64)
    tex = torch.rand(3, 9, 4, 3, generator=g, dtype=fv.dtype)
    counts = torch.tensor([9, 4, 0])
    kw = dict(image_size=10, sigma_val=3e-3, gamma_val=0.05, aggr_func_alpha="sum", return_depth=True)
    v = fv.clone().requires_grad_()
    img, depth = soft_rasterize(v, tex, num_faces=counts, **kw)
    (img.sum() + depth.sum()).backward()
    for i, n in enumerate(counts.tolist()):
        one = fv[i : i + 1, :n].clone().requires_grad_()
        alone, alone_depth = soft_rasterize(one, tex[i : i + 1, :n], **kw)
        assert (img[i] - alone[0]).abs().max() <= 1e-12 and (depth[i] - alone_depth[0]).abs().max() <= 1e-12
        (alone.sum() + alone_depth.sum()).backward()
        assert torch.allclose(v.grad[i, :n], one.grad[0], atol=1e-12)
        assert v.grad[i, n:].abs().sum() == 0  # padding faces get zero gradient
    ref = reference(fv, tex, num_faces=counts, **kw)
    assert (ref[0] - img).abs().max() <= 1e-9


def test_no_grad_path_allocates_no_grad_buffers():
    fv, g = scene(31, dtype=torch.float32)
    with torch.no_grad():
        soft_rasterize(fv, torch.rand(2, 8, 1, 3), image_size=8)
    pool = engine_for(torch.float32, grad=False).pool
    assert pool.allocations > 0
    assert all(not grad for (_, _, _, grad) in pool._entries)


def test_torch_compile_falls_back_cleanly():
    fv, g = scene(41, b=1, dtype=torch.float32)
    tex = torch.rand(1, fv.shape[1], 1, 3)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.offset = torch.nn.Parameter(torch.zeros(3))

        def forward(self, fv):
            return soft_rasterize(fv + self.offset, tex, image_size=8, sigma_val=1e-3)[:, 3].mean() * 2.0

    model = Model()
    compiled = torch.compile(model, backend="eager")
    loss = compiled(fv)
    loss.backward()
    eager = Model()
    expected = eager(fv)
    expected.backward()
    assert torch.allclose(loss, expected) and torch.allclose(model.offset.grad, eager.offset.grad)


def test_bad_extras_are_named():
    fv, g = scene(0, b=1)
    tex = torch.rand(1, 8, 1, 3, dtype=fv.dtype)
    for kw, name in [
        (dict(outputs=["colour"]), "outputs"),
        (dict(outputs=["normals"]), "vertex_normals"),
        (dict(outputs=["group_masks"]), "face_groups"),
        (dict(num_faces=torch.tensor([9])), "num_faces"),
        (dict(face_groups=torch.zeros(1, 7, dtype=torch.long)), "face_groups"),
        (dict(texture_wrap="mirror"), "texture_wrap"),
        (dict(uvs=torch.zeros(1, 8, 3, 2, dtype=fv.dtype)), "uvs"),
    ]:
        with pytest.raises(ValueError, match=name):
            soft_rasterize(fv, tex, image_size=8, **kw)
    with pytest.raises(ValueError, match="uvs"):
        soft_rasterize(fv, torch.rand(1, 3, 4, 4, dtype=fv.dtype), image_size=8, texture_type="uv")


def test_join_meshes_renders_each_mesh_as_alone():
    from taichi_softras.batching import join_meshes

    meshes = [
        sr.Mesh.from_obj(sr.DATA_DIR / "sphere_642.obj"),
        sr.Mesh.from_obj(sr.DATA_DIR / "spot" / "spot_triangulated.obj"),
        sr.Mesh.from_obj(sr.DATA_DIR / "sphere_1352.obj"),
    ]
    batch, num_faces = join_meshes(meshes)
    assert num_faces.tolist() == [m.num_faces for m in meshes]
    eye = sr.get_points_from_angles(3.0, 20.0, 30.0)

    def face_vertices(mesh):
        return sr.functional.face_vertices(sr.perspective(sr.look_at(mesh.vertices, eye)), mesh.faces)

    together = soft_rasterize(face_vertices(batch), batch.face_textures, image_size=24, sigma_val=1e-4, num_faces=num_faces)
    for i, m in enumerate(meshes):
        alone = soft_rasterize(face_vertices(m), m.face_textures, image_size=24, sigma_val=1e-4)
        assert (together[i] - alone[0]).abs().max() < 1e-5
    with pytest.raises(ValueError, match="texture"):
        join_meshes([meshes[0], sr.Mesh.from_obj(sr.DATA_DIR / "sphere_642.obj", texture_res=2)])


def test_renderer_outputs_keyword():
    renderer = sr.SoftRenderer(image_size=32, camera_mode="look_at", sigma_val=1e-4)
    renderer.transform.set_eyes_from_angles(2.732, 30.0, -45.0)
    mesh = sr.Mesh.from_obj(sr.DATA_DIR / "sphere_642.obj")
    out = renderer.render_mesh(mesh, outputs=["depth", "face_index", "normals"])
    assert isinstance(out, RasterOutputs)
    plain = renderer.render_mesh(mesh)
    covered = out.face_index >= 0
    assert covered.float().mean() > 0.2
    # World-space unit normals of a sphere point away from its centre: towards the eye on visible pixels.
    eye = torch.tensor(sr.get_points_from_angles(2.732, 30.0, -45.0))
    facing = torch.einsum("bchw,c->bhw", out.normals, eye / eye.norm())
    assert (facing[covered] > 0.3).float().mean() > 0.95
    assert plain.shape == (1, 4, 32, 32)
    aa = sr.SoftRenderer(image_size=32, anti_aliasing=True, camera_mode="look_at")
    with pytest.raises(ValueError, match="anti_aliasing"):
        aa.render_mesh(mesh, outputs=["depth"])
