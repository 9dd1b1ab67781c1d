"""NMR-format loader, procedural shapes, voxel frame and the synthetic generator."""

import numpy as np
import pytest
import torch

from reconstruction import datasets as D
from reconstruction import make_dataset, render, shapes
from reconstruction import voxels as V


def _write(tmp_path, cid="03001627", split="train", n=2, images=None, voxels=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 24, 4, 64, 64), dtype=np.uint8) if images is None else images
    voxels = rng.random((n, 32, 32, 32)) < 0.3 if voxels is None else voxels
    D.save_class_split(tmp_path, cid, split, images, voxels)
    return images, voxels


def test_loader_round_trip(tmp_path):
    images, voxels = _write(tmp_path)
    im, vx = D.load_class_split(tmp_path, "03001627", "train")
    assert im.dtype == np.uint8 and vx.dtype == bool
    np.testing.assert_array_equal(im, images)
    np.testing.assert_array_equal(vx, voxels)
    _write(tmp_path, cid="02958343", n=3)
    data = D.ShapeNetSplit.load(tmp_path, ["03001627", "02958343"], "train")
    assert len(data) == 5 and data.labels.tolist() == [0, 0, 1, 1, 1]
    views = data.views(torch.tensor([0, 4]), torch.tensor([3, 23]))
    assert views.shape == (2, 4, 64, 64) and views.dtype == torch.float32
    torch.testing.assert_close(views[0], torch.from_numpy(images[0, 3]).float() / 255)


def test_loader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="03001627_train_images.npz"):
        D.load_class_split(tmp_path, "03001627", "train")
    _write(tmp_path, images=np.zeros((2, 24, 4, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"03001627_train_images.npz.*expected uint8"):
        D.load_class_split(tmp_path, "03001627", "train")
    _write(tmp_path, voxels=np.zeros((3, 32, 32, 32), bool))
    with pytest.raises(ValueError, match=r"03001627_train_voxels.npz.*holds 3 shapes"):
        D.load_class_split(tmp_path, "03001627", "train")
    _write(tmp_path)
    (tmp_path / "03001627_train_voxels.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"03001627_train_voxels.npz is corrupt"):
        D.load_class_split(tmp_path, "03001627", "train")
    with pytest.raises(ValueError, match="unknown class '12345678'"):
        D.load_class_split(tmp_path, "12345678", "train")
    with pytest.raises(ValueError, match="unknown class 'spaceship'"):
        D.parse_class_ids("chair,spaceship")
    assert D.parse_class_ids("chair,02958343") == ["03001627", "02958343"]
    assert len(D.parse_class_ids("all")) == 13


def test_voxel_frame():
    c = V.stored_cell_centres()
    # stored [a, b, c] is cell x = b, y = a, z = 31 - c; cell i is centred at (i + 0.5 - 16) / 31
    np.testing.assert_allclose(c[3, 7, 2], [(7.5 - 16) / 31, (3.5 - 16) / 31, (29.5 - 16) / 31])
    vox_xyz = np.zeros((32, 32, 32), bool)
    vox_xyz[1, 2, 3] = True
    assert V.stored_from_xyz(vox_xyz)[2, 1, 28]
    assert V.stored_from_xyz(torch.from_numpy(vox_xyz.copy()))[2, 1, 28]


@pytest.mark.parametrize("cid", D.CLASS_IDS)
def test_shapes_fit_the_voxel_frame_and_vary(cid):
    rng = np.random.default_rng(1)
    a, b = shapes.random_shape(cid, rng), shapes.random_shape(cid, rng)
    v, f, col = a.mesh()
    assert v.dtype == torch.float32 and f.dtype == torch.int64 and col.shape == (f.shape[0], 3)
    extent = (v.amax(0) - v.amin(0)).max().item()
    assert 0.5 < extent <= shapes.EXTENT + 1e-5 and v.abs().max() < 0.5
    va, vb = make_dataset.voxelize_shape(a), make_dataset.voxelize_shape(b)
    assert 0 < va.sum() < 0.6 * va.size
    assert V.voxel_iou(torch.from_numpy(va[None]), torch.from_numpy(vb[None])).item() < 0.98


def test_voxelize_box_is_exact():
    # a box covering world [-0.25, 0.25]^3 fills cells whose span meets it: indices 8..23 on each axis
    shape = shapes.Shape([shapes.box((0, 0, 0), (0.25, 0.25, 0.25), np.ones(3))])
    vox = make_dataset.voxelize_shape(shape)
    lo, hi = int(np.floor(0.25 * -31 + 16)), int(np.floor(0.25 * 31 + 16))
    expect = np.zeros((32, 32, 32), bool)
    expect[lo:hi + 1, lo:hi + 1, 31 - hi:32 - lo] = True
    np.testing.assert_array_equal(vox, expect)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    make_dataset.main(["--out", str(out), "--per-class", "3", "--classes", "chair", "--seed", "3"])
    return out


def test_generator_writes_the_format(generated):
    for split in D.SPLITS:
        im, vx = D.load_class_split(generated, "03001627", split)
        assert im.shape == (1, 24, 4, 64, 64) and vx.shape == (1, 32, 32, 32)
        alpha = im[:, :, 3]
        assert alpha.max() == 255 and alpha.min() == 0  # object and background in every split
        assert 0.05 < (alpha > 127).mean() < 0.6
        rgb = im[:, :, :3].astype(float)
        assert rgb.max() > 50 and (rgb[..., :2, :2] == 0).all()  # lit object, black background corners


def test_voxels_agree_with_silhouettes(generated):
    im, vx = D.load_class_split(generated, "03001627", "train")
    centres = torch.tensor(V.stored_cell_centres()[vx[0]], dtype=torch.float32)
    for view in (0, 7, 18):
        ndc = render.project(centres[None], torch.tensor([view]))[0]
        col = ((ndc[:, 0] + 1) * 32 - 0.5).round().long().clamp(0, 63)
        row = ((1 - ndc[:, 1]) * 32 - 0.5).round().long().clamp(0, 63)
        sil = im[0, view, 3] > 127
        assert sil[row.numpy(), col.numpy()].mean() > 0.85  # voxels project inside the silhouette
        hit = np.zeros((64, 64), bool)
        hit[row.numpy(), col.numpy()] = True
        assert hit[sil].mean() > 0.75  # and cover it (cell centres are sparser than pixels)
        # the mirror image (x flipped about the image centre) would not agree as well for view 7
    mirrored = torch.tensor(V.stored_cell_centres()[vx[0]] * np.array([1, 1, -1]), dtype=torch.float32)
    ndc = render.project(mirrored[None], torch.tensor([7]))[0]
    col = ((ndc[:, 0] + 1) * 32 - 0.5).round().long().clamp(0, 63)
    row = ((1 - ndc[:, 1]) * 32 - 0.5).round().long().clamp(0, 63)
    assert (im[0, 7, 3] > 127)[row.numpy(), col.numpy()].mean() < 0.85
