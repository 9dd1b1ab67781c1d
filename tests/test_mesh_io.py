"""OBJ/MTL/PNG reading and writing, UV texture sampling (SoftRas's texel layout), and Mesh."""

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

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


# --- real-world files: several materials, textured beside Kd-only, missing files ------------------


def _quad_with_two_materials(tmp_path, mtl: str = "m.mtl"):
    """4 vertices, two `usemtl` sections (trimesh splits such a file into 8 vertices)."""
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 1 0 0\nnewmtl blue\nKd 0 0 1\n")
    return _write(
        tmp_path / "two.obj",
        f"mtllib {mtl}\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nusemtl red\nf 1 2 3\nusemtl blue\nf 1 3 4\n",
    )


def test_two_materials_keep_the_files_vertices_and_colour_each_face(tmp_path):
    path = _quad_with_two_materials(tmp_path)
    v, f, tex = load_obj(path, load_texture=True, texture_res=2)
    assert v.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]] and f.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert torch.equal(tex[0], torch.tensor([[1.0, 0, 0]] * 4)) and torch.equal(tex[1], torch.tensor([[0, 0, 1.0]] * 4))
    mesh = Mesh.from_obj(path, load_texture=True)
    assert mesh.num_vertices == 4 and mesh.textures.shape == (1, 2, 1, 3) and mesh.uvs is None


def test_missing_mtllib_loads_geometry_and_names_the_file_on_texture_request(tmp_path):
    path = _quad_with_two_materials(tmp_path, mtl="gone.mtl")
    v, f = load_obj(path)
    assert v.shape == (4, 3) and f.shape == (2, 3)
    assert Mesh.from_obj(path).textures.eq(1).all()  # default white
    with pytest.raises(ValueError, match="two.obj.*gone.mtl.*does not exist"):
        load_obj(path, load_texture=True)


def _texel_by_hand(image: Image.Image, uvs: np.ndarray, r: int) -> np.ndarray:
    """One face's texels, computed independently of taichi_softras.textures: texel k = w_y R + w_x
    (lower cell) or its mirror (upper cell); its centre in barycentrics; UV there; SoftRas's
    sampling: wrap u > 1, image rows flipped (v up), bilinear at (u (W-1), v (H-1))."""
    w, h = image.size
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    out = np.zeros((r * r, 3))
    for k in range(r * r):
        wy, wx = divmod(k, r)
        if wx + wy < r:
            b0, b1 = (wx + 1 / 3) / r, (wy + 1 / 3) / r
        else:
            b0, b1 = (r - 1 - wx + 2 / 3) / r, (r - 1 - wy + 2 / 3) / r
        wrapped = [c % 1 if c > 1 else c for row in uvs for c in row]
        u0, v0, u1, v1, u2, v2 = wrapped
        u, v = b0 * u0 + b1 * u1 + (1 - b0 - b1) * u2, b0 * v0 + b1 * v1 + (1 - b0 - b1) * v2
        x, y = u * (w - 1), v * (h - 1)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
        row = lambda yy: pixels[h - 1 - yy]  # noqa: E731  (v up)
        out[k] = (row(y0)[x0] * (1 - fx) * (1 - fy) + row(y0)[x1] * fx * (1 - fy)
                  + row(y1)[x0] * (1 - fx) * fy + row(y1)[x1] * fx * fy)
    return out


def test_textured_and_kd_only_materials_in_one_file(tmp_path):
    """Faces with `vt` in the textured material sample its image; the Kd-only material's faces (no
    `vt`) take their Kd; a face of the textured material without `vt` keeps its Kd; faces before any
    `usemtl` stay white. Every texel equals an independent per-face computation."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    (tmp_path / "tex").mkdir()
    image.save(tmp_path / "tex" / "wood.png")
    (tmp_path / "mixed.mtl").write_text(
        "newmtl wood\nKd 0.2 0.4 0.6\nmap_Kd tex/wood.png\nnewmtl paint\nKd 0.9 0.1 0.3\nnewmtl unused\nmap_Kd nothing.png\n"
    )
    uvs = rng.random((6, 2)) * 1.4  # some above 1: wrapped
    lines = ["mtllib mixed.mtl"]
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in rng.random((7, 3))]
    lines += ["f 5 6 7", "usemtl wood"]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
    lines += ["f 1/1 2/2 3/3 4/4", "f 2 3 4", "usemtl paint", "f 4//1 5//1 6//1", "usemtl wood", "f -7/-1 -6/-2 -5/-3"]
    path = _write(tmp_path / "mixed.obj", "\n".join(lines) + "\n")
    r = 3
    v, f, tex = load_obj(path, load_texture=True, texture_res=r)
    assert f.tolist() == [[4, 5, 6], [0, 1, 2], [0, 2, 3], [1, 2, 3], [3, 4, 5], [0, 1, 2]]
    corner_uvs = {1: uvs[[0, 1, 2]], 2: uvs[[0, 2, 3]], 5: uvs[[5, 4, 3]]}
    for face, face_uvs in corner_uvs.items():
        assert np.allclose(tex[face].numpy(), _texel_by_hand(image, np.round(face_uvs, 6), r), atol=1e-6)
    assert tex[0].eq(1).all()
    assert torch.allclose(tex[3], torch.tensor([0.2, 0.4, 0.6]).expand(r * r, 3))
    assert torch.allclose(tex[4], torch.tensor([0.9, 0.1, 0.3]).expand(r * r, 3))
    mesh = Mesh.from_obj(path, load_texture=True, texture_res=r)
    assert torch.equal(mesh.textures[0], tex) and mesh.texture_image.shape == (9, 13, 3)
    assert mesh.uvs.shape == (6, 3, 2) and mesh.uvs[3].eq(0).all()


def test_missing_texture_image_is_named(tmp_path):
    (tmp_path / "t.mtl").write_text("newmtl wood\nmap_Kd images/texture0.jpg\n")
    path = _write(tmp_path / "t.obj", "mtllib t.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nusemtl wood\nf 1/1 2/1 3/1\n")
    assert load_obj(path)[1].shape == (1, 3)
    with pytest.raises(ValueError, match="t.obj.*'wood'.*images/texture0.jpg.*does not exist"):
        load_obj(path, load_texture=True)


def test_binary_and_utf16_files_say_so(tmp_path):
    good = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    for name, data in (("u16.obj", good.encode("utf-16")), ("bin.obj", bytes(range(256)) * 4)):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}.*not a UTF-8 text OBJ"):
            load_obj(path)


def test_save_obj_rejects_what_an_obj_cannot_hold(tmp_path):
    v, f = torch.rand(3, 3), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"faces must index vertices 0\.\.2, got range 0\.\.3"):
        save_obj(tmp_path / "a.obj", v, torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match="faces must index"):
        save_obj(tmp_path / "a.obj", v, torch.tensor([[-1, 1, 2]]))
    with pytest.raises(TypeError, match="faces must be an integer"):
        save_obj(tmp_path / "a.obj", v, f.float())
    with pytest.raises(ValueError, match="vertices contain NaN"):
        save_obj(tmp_path / "a.obj", torch.tensor([[0, 0, 0], [1, float("nan"), 0], [0, 1, 0]]), f)
    with pytest.raises(ValueError, match="textures contain NaN"):
        save_obj(tmp_path / "a.obj", v, f, torch.full((1, 1, 3), float("nan")))
    assert not (tmp_path / "a.obj").exists()
