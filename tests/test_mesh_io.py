"""OBJ/MTL/PNG reading and writing, UV texture sampling (SoftRas's texel layout), and Mesh."""

import numpy as np
import pytest
import torch
import trimesh

from taichi_softras import DATA_DIR
from taichi_softras.geometry import normalize_vertices
from taichi_softras.io import load_obj, read_obj, save_obj, save_voxel
from taichi_softras.mesh import Mesh
from taichi_softras.textures import sample_image, sample_surface_textures, texel_barycentrics, texel_index, texture_atlas

SPOT = DATA_DIR / "spot" / "spot_triangulated.obj"


def _write(path, text):
    path.write_text(text)
    return path


def test_load_obj_keeps_file_order(tmp_path):
    """A quad and a pentagon are fan-triangulated in file order; vertex order is the file's."""
    obj = _write(tmp_path / "poly.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0.5 0\nf 1 2 3 4\nf 2 5 3\n")
    v, f = load_obj(obj)
    assert v.dtype == torch.float32 and f.dtype == torch.int64
    assert torch.equal(v[4], torch.tensor([2.0, 0.5, 0.0]))
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2]]


def test_sphere_geometry_matches_the_files_lines():
    v, f = load_obj(DATA_DIR / "sphere_642.obj")
    lines = (DATA_DIR / "sphere_642.obj").read_text().splitlines()
    v_file = np.array([ln.split()[1:4] for ln in lines if ln.startswith("v ")], dtype=np.float32)
    f_file = np.array([[int(t.split("/")[0]) - 1 for t in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    assert np.array_equal(v.numpy(), v_file) and np.array_equal(f.numpy(), f_file)
    assert trimesh.Trimesh(v.numpy(), f.numpy(), process=False).is_watertight


def test_per_corner_uvs_and_negative_indices(tmp_path):
    obj = _write(
        tmp_path / "uv.obj",
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.1 0.2\nvt 0.3 0.4\nvt 0.5 0.6\nf 1/3 2/2 3/1\nf -3/-1 -1/-2 -2/-3\n",
    )
    data = read_obj(obj)
    assert data.faces.tolist() == [[0, 1, 2], [0, 2, 1]]
    assert np.allclose(data.uvs[0], [[0.5, 0.6], [0.3, 0.4], [0.1, 0.2]])
    assert np.allclose(data.uvs[1], [[0.5, 0.6], [0.3, 0.4], [0.1, 0.2]])


def test_normalization():
    v, _ = load_obj(SPOT, normalization=True)
    lo, hi = v.min(0).values, v.max(0).values
    assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-6)
    assert (hi - lo).max().item() == pytest.approx(2.0)
    assert normalize_vertices(v, 0.5).abs().max().item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "text, why",
    [
        ("v 0 0 0\nv 1 0 0\nf 1 2 3\n", "index"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", ""),
        ("# nothing here\n", "no vertices"),
        ("v 1 2\nf 1 2 3\nhello\n", ""),
    ],
)
def test_malformed_obj_names_the_path(tmp_path, text, why):
    path = _write(tmp_path / "bad.obj", text)
    with pytest.raises(ValueError, match="bad.obj") as err:
        load_obj(path)
    assert why in str(err.value)


def test_missing_obj_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="missing.obj"):
        load_obj(tmp_path / "missing.obj")
    with pytest.raises(ValueError, match="missing.obj"):
        Mesh.from_obj(tmp_path / "missing.obj")
    with pytest.raises(ValueError, match="mtllib"):
        load_obj(DATA_DIR / "sphere_642.obj", load_texture=True)  # its MTL is not shipped


def test_texel_layout_round_trips():
    """Each texel's centre falls back into that texel under the rasterizer's lookup (DESIGN §7)."""
    for r in range(1, 7):
        bary = texel_barycentrics(r, torch.float64)
        assert torch.allclose(bary.sum(-1), torch.ones(r * r, dtype=torch.float64))
        assert (bary >= 0).all()
        assert torch.equal(texel_index(bary, r), torch.arange(r * r))


def test_sample_image_is_bilinear_with_v_up_and_wrap():
    # A linear ramp is reproduced exactly by bilinear sampling.
    h, w = 5, 9
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    image = torch.stack([xs / (w - 1), (h - 1 - ys) / (h - 1), torch.zeros_like(xs)], -1)  # (u, v) encoded, row 0 = top
    uv = torch.tensor([[0.0, 0.0], [0.3, 0.7], [1.0, 1.0], [0.55, 0.05]], dtype=torch.float64)
    assert torch.allclose(sample_image(image, uv)[:, :2], uv, atol=1e-12)
    wrapped = sample_image(image, torch.tensor([[1.25, 0.5]], dtype=torch.float64))
    assert torch.allclose(wrapped[0, :2], torch.tensor([0.25, 0.5], dtype=torch.float64))


def test_surface_textures_sample_texel_centres():
    image = torch.rand(7, 11, 3, dtype=torch.float64)
    uvs = torch.rand(4, 3, 2, dtype=torch.float64)
    tex = sample_surface_textures(image, uvs, 3)
    bary = texel_barycentrics(3, torch.float64)
    expected = sample_image(image, torch.einsum("tk,fkc->ftc", bary, uvs))
    assert tex.shape == (4, 9, 3) and torch.allclose(tex, expected)


def test_spot_texture_loads(tmp_path):
    v, f, tex = load_obj(SPOT, load_texture=True, texture_res=5)
    assert tex.shape == (5856, 25, 3) and 0 <= tex.min() and tex.max() <= 1
    assert tex.std() > 0.05  # a real image, not the white default
    mesh = Mesh.from_obj(SPOT, load_texture=True, texture_res=2)
    assert mesh.uvs.shape == (5856, 3, 2) and mesh.texture_image.shape == (1024, 1024, 3)
    assert torch.allclose(mesh.textures[0], sample_surface_textures(mesh.texture_image, mesh.uvs, 2))


def test_texture_atlas_round_trip():
    """Tiles of >= 6R + 1 pixels read back exactly (the bilinear taps of each texel centre stay in
    its cell); smaller tiles blend neighbouring texels a little."""
    tex = torch.rand(7, 16, 3)
    image, uvs = texture_atlas(tex, tile=25)
    assert image.shape == (3 * 25, 3 * 25, 3)
    assert torch.allclose(sample_surface_textures(image, uvs, 4), tex, atol=1e-6)
    small, small_uvs = texture_atlas(tex, tile=12)
    assert (sample_surface_textures(small, small_uvs, 4) - tex).abs().mean() < 0.05


def test_save_obj_round_trips(tmp_path):
    v, f, tex = load_obj(SPOT, load_texture=True, texture_res=3)
    save_obj(tmp_path / "s.obj", v, f, tex, texture_res=19)  # >= 6 R + 1: exact
    v2, f2, tex2 = load_obj(tmp_path / "s.obj", load_texture=True, texture_res=3)
    assert torch.allclose(v2, v, atol=1e-7) and torch.equal(f2, f)
    assert (tex2 - tex).abs().max() <= 1.0 / 255 + 1e-6  # 8-bit PNG rounding only
    colors = torch.rand(len(v), 3)
    save_obj(tmp_path / "c.obj", v, f, colors, texture_type="vertex")
    v3, f3, c3 = load_obj(tmp_path / "c.obj", load_texture=True, texture_type="vertex")
    assert torch.allclose(c3, colors, atol=1e-7) and torch.equal(f3, f)
    save_obj(tmp_path / "p.obj", v, f)
    assert torch.equal(load_obj(tmp_path / "p.obj")[1], f)
    with pytest.raises(ValueError, match="vertices"):
        save_obj(tmp_path / "x.obj", v[None], f)


def test_save_voxel(tmp_path):
    grid = torch.zeros(4, 4, 4, dtype=torch.int32)
    grid[1:3, 0, 2] = 1
    save_voxel(tmp_path / "v.obj", grid)
    v, f = load_obj(tmp_path / "v.obj")
    assert v.min(0).values.tolist() == [1, 0, 2] and v.max(0).values.tolist() == [3, 1, 3]
    m = trimesh.Trimesh(v.numpy(), f.numpy())
    assert m.volume == pytest.approx(2.0)
    with pytest.raises(ValueError, match="voxel"):
        save_voxel(tmp_path / "e.obj", torch.zeros(2, 2, 2))


def test_mesh_batching_properties_and_reset():
    v = np.random.rand(5, 3).astype(np.float32)
    f = np.array([[0, 1, 2], [2, 3, 4]])
    m = Mesh(v, f)
    assert (m.batch_size, m.num_vertices, m.num_faces, m.texture_res) == (1, 5, 2, 1)
    assert m.vertices.shape == (1, 5, 3) and m.faces.dtype == torch.int64 and m.device.type == "cpu"
    assert m.textures.shape == (1, 2, 1, 3) and torch.equal(m.face_textures, m.textures)
    assert m.face_vertices.shape == (1, 2, 3, 3) and m.surface_normals.shape == (1, 2, 3)
    assert m.vertex_normals.shape == (1, 5, 3)
    b = Mesh(torch.rand(3, 5, 3), torch.from_numpy(f), texture_res=4)  # faces broadcast over the batch
    assert b.faces.shape == (3, 2, 3) and b.textures.shape == (3, 2, 16, 3)
    vt = Mesh(torch.rand(5, 3), f, torch.rand(5, 3), texture_type="vertex")
    assert vt.face_textures.shape == (1, 2, 3, 3) and torch.equal(vt.face_textures[0, 1], vt.textures[0, [2, 3, 4]])
    original = m.vertices
    m.vertices = m.vertices * 2
    assert torch.allclose(m.face_vertices[0, 0, 1], original[0, 1] * 2)  # derived values follow
    m.fill_back_()
    assert m.num_faces == 4 and m.faces[0, 2].tolist() == [2, 1, 0] and m.textures.shape == (1, 4, 1, 3)
    m.reset_()
    assert m.vertices is original and m.num_faces == 2


def test_mesh_errors(tmp_path):
    f = torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="texture_type"):
        Mesh(torch.rand(3, 3), f, texture_type="uv")
    with pytest.raises(ValueError, match="faces"):
        Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 3]]))
    with pytest.raises(TypeError, match="vertices"):
        Mesh(torch.zeros(3, 3, dtype=torch.int64), f)
    with pytest.raises(ValueError, match="surface textures"):
        Mesh(torch.rand(3, 3), f, torch.rand(1, 5, 3))
    with pytest.raises(ValueError, match="batch"):
        Mesh(torch.rand(2, 3, 3), f, texture_res=1).save_obj(tmp_path / "x.obj")
