"""`make_dataset --meshes`: a folder of real meshes (ShapeNetCore v1, v2 and plain layouts) to the
NMR format, checked against rendering and voxelizing each mesh directly."""

import re

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from reconstruction import datasets as D
from reconstruction import from_meshes, make_dataset
from reconstruction.evaluate import mesh_voxels
from reconstruction.render import render
from taichi_softras import DATA_DIR
from taichi_softras.io import load_obj, save_obj
from taichi_softras.mesh import Mesh

CHAIR, PLANE = "03001627", "02691156"


def _box(lo, hi):
    box = trimesh.creation.box(bounds=[lo, hi])
    return torch.tensor(box.vertices, dtype=torch.float32), torch.tensor(box.faces)


def _write_obj(path, v, f, mtl_text=None, usemtl=None):
    """An OBJ of (v, f); with ``mtl_text`` an MTL beside it and `usemtl` sections (list of
    (name, face count))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    if mtl_text is not None:
        path.with_suffix(".mtl").write_text(mtl_text)
        lines.append(f"mtllib {path.with_suffix('.mtl').name}")
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v.tolist()]
    sections = usemtl or [(None, len(f))]
    start = 0
    for name, count in sections:
        if name is not None:
            lines.append(f"usemtl {name}")
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f[start:start + count].tolist()]
        start += count
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def shapenet(tmp_path_factory):
    """Two classes, three layouts: a two-material box (v1), a textured sphere (v1, map_Kd in
    images/), a box without its lid (v2), a plain .obj sphere."""
    root = tmp_path_factory.mktemp("shapenet")
    v, f = _box((-0.3, -0.2, -0.25), (0.3, 0.25, 0.2))
    _write_obj(root / CHAIR / "box1" / "model.obj", v, f, "newmtl red\nKd 0.9 0.1 0.1\nnewmtl grey\nKd 0.5 0.5 0.5\n",
               [("red", 6), ("grey", 6)])
    sv, sf = load_obj(DATA_DIR / "sphere_642.obj")
    sv = sv * 0.35
    textured = root / CHAIR / "ball" / "model.obj"
    textured.parent.mkdir(parents=True)
    (textured.parent / "images").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(textured.parent / "images" / "texture0.jpg")
    save_obj(textured, sv, sf, torch.rand(len(sf), 1, 3, generator=torch.Generator().manual_seed(0)), texture_res=8)
    (textured.with_suffix(".mtl")).write_text("newmtl material_1\nKd 1 1 1\nmap_Kd ./images/texture0.jpg\n")
    _write_obj(root / PLANE / "openbox" / "models" / "model_normalized.obj", v, f[2:])
    _write_obj(root / PLANE / "plain_sphere.obj", sv, sf)
    (root / "not_a_class").mkdir()
    return root


@pytest.fixture(scope="module")
def built(shapenet, tmp_path_factory):
    out = tmp_path_factory.mktemp("nmr")
    make_dataset.main(["--meshes", str(shapenet), "--out", str(out), "--split", "test"])
    return out


def test_both_layouts_write_loadable_files(built, shapenet, capsys):
    data = D.ShapeNetSplit.load(built, [CHAIR, PLANE], "test")
    assert len(data) == 4 and data.labels.tolist() == [0, 0, 1, 1]  # sorted by model id in each class
    assert [m.model_id for m in from_meshes.find_models(shapenet, CHAIR)] == ["ball", "box1"]
    assert [m.model_id for m in from_meshes.find_models(shapenet, PLANE)] == ["openbox", "plain_sphere"]
    assert not (built / f"{CHAIR}_train_images.npz").exists()


def _direct_alpha(v, f):
    """Silhouettes of the mesh rendered directly (the generator's own path, reconstruction.render)."""
    n = D.NUM_VIEWS
    with torch.no_grad():
        img = render(v.expand(n, -1, -1), f.expand(n, -1, -1), torch.arange(n))
    return (img[:, 3].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def test_silhouettes_and_colours_match_rendering_the_mesh_directly(built, shapenet):
    images, voxels = D.load_class_split(built, CHAIR, "test")
    plane_images, plane_voxels = D.load_class_split(built, PLANE, "test")
    box_v, box_f = load_obj(shapenet / CHAIR / "box1" / "model.obj")
    sphere_v, sphere_f = load_obj(shapenet / PLANE / "plain_sphere.obj")
    for got, (v, f) in ((images[1], (box_v, box_f)), (images[0], (sphere_v, sphere_f)), (plane_images[1], (sphere_v, sphere_f))):
        expected = _direct_alpha(v[None], f[None])
        assert (got[:, 3] > 128).sum() > 24 * 200
        assert np.abs(got[:, 3].astype(int) - expected).max() <= 1
    # Kd colours, lit as SoftRas: red faces, then grey ones
    colours = torch.tensor([[0.9, 0.1, 0.1]] * 6 + [[0.5, 0.5, 0.5]] * 6)[None].expand(24, -1, -1)
    with torch.no_grad():
        direct = render(box_v.expand(24, -1, -1), box_f.expand(24, -1, -1), torch.arange(24), colours)
    direct = (direct.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    assert np.abs(images[1].astype(int) - direct).max() <= 1
    # the texture shows, exactly as the library renders the OBJ with its texture
    ball = Mesh.from_obj(shapenet / CHAIR / "ball" / "model.obj", load_texture=True, texture_res=from_meshes.TEXTURE_RES)
    assert np.array_equal(images[0], from_meshes.render_views(ball))
    assert images[0][:, :3][:, :, images[0][0, 3] > 250].std() > 20


def test_voxels_are_softras_voxels_and_open_meshes_stay_solid(built, shapenet):
    _, voxels = D.load_class_split(built, CHAIR, "test")
    _, plane_voxels = D.load_class_split(built, PLANE, "test")
    box_v, box_f = load_obj(shapenet / CHAIR / "box1" / "model.obj")
    sphere_v, sphere_f = load_obj(shapenet / PLANE / "plain_sphere.obj")
    closed_box = mesh_voxels(box_v[None], box_f[None])[0].numpy()
    assert np.array_equal(voxels[1], closed_box)  # SoftRas's evaluation voxelizer on a closed mesh
    assert np.array_equal(voxels[0], mesh_voxels(sphere_v[None], sphere_f[None])[0].numpy())
    open_box = plane_voxels[0]
    assert closed_box.sum() > 1000 and (open_box <= closed_box).all()
    inner = closed_box.copy()
    for axis in range(3):  # the box without its lid is solid: everything but the missing lid's layer
        inner &= np.roll(closed_box, 1, axis) & np.roll(closed_box, -1, axis)
    assert open_box[inner].all()


def test_auto_split_is_by_model_id(shapenet, tmp_path, capsys):
    ids = [f"model{i:03d}" for i in range(400)]
    counts = {s: sum(from_meshes.auto_split(i) == s for i in ids) for s in D.SPLITS}
    assert abs(counts["train"] - 280) < 40 and abs(counts["val"] - 40) < 20 and abs(counts["test"] - 80) < 25
    assert from_meshes.auto_split("1a6f615e8b1b5ae4dbbc9440457e303e") == from_meshes.auto_split("1a6f615e8b1b5ae4dbbc9440457e303e")
    make_dataset.main(["--meshes", str(shapenet), "--out", str(tmp_path), "--classes", "chair"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("wrote 2 models of 1 class(es)") and str(tmp_path) in line
    for split in D.SPLITS:
        images, _ = D.load_class_split(tmp_path, CHAIR, split)  # every split written, empty ones too
        assert len(images) == sum(from_meshes.auto_split(m) == split for m in ("ball", "box1"))


def test_a_bad_model_is_named_and_can_be_skipped(shapenet, tmp_path, capsys):
    bad = tmp_path / "in"
    for src in (shapenet / CHAIR / "box1",):
        dst = bad / CHAIR / src.name
        dst.mkdir(parents=True)
        for p in src.iterdir():
            (dst / p.name).write_bytes(p.read_bytes())
    (bad / CHAIR / "broken").mkdir()
    (bad / CHAIR / "broken" / "model.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    (bad / CHAIR / "empty").mkdir()
    (bad / CHAIR / "nan").mkdir()
    (bad / CHAIR / "nan" / "model.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(SystemExit) as exc:
        make_dataset.main(["--meshes", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and re.search(f"error: model {CHAIR}/broken .*line 3: vertex index 3 out of range.*--skip-bad", err)
    make_dataset.main(["--meshes", str(bad), "--out", str(tmp_path / "out"), "--skip-bad", "--split", "val"])
    out = capsys.readouterr().out
    assert "wrote 1 models of 1 class(es) (train 0 / val 1 / test 0), skipped 3 bad model(s)" in out
    summary = from_meshes.build(bad, tmp_path / "out2", "val", skip_bad=True, progress=False)
    assert summary.written["val"] == 1 and set(summary.skipped) == {f"{CHAIR}/broken", f"{CHAIR}/empty", f"{CHAIR}/nan"}
    assert "no model file" in summary.skipped[f"{CHAIR}/empty"] and "NaN" in summary.skipped[f"{CHAIR}/nan"]
    assert len(D.load_class_split(tmp_path / "out2", CHAIR, "val")[0]) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "car"], r"no folder for class\(es\) \['02958343'\]"),
        (["--split", "everything"], "argument --split: invalid choice: 'everything'"),
    ],
)
def test_argument_errors(shapenet, tmp_path, args, message, capsys):
    for argv, expected in ((["--meshes", str(shapenet), "--out", str(tmp_path)] + args, message),
                           (["--meshes", str(tmp_path), "--out", str(tmp_path)], "no class folder")):
        with pytest.raises(SystemExit) as exc:
            make_dataset.main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and re.search("error: .*" + expected, err), err
