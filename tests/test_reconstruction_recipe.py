"""The baselines (retrieval, per-class mean thresholding), the visual hulls, the sample figure and
``reconstruction.recipe`` (its arguments and summary here; the whole recipe at toy scale in the
slow suite)."""

import json

import numpy as np
import pytest
import torch

from reconstruction import datasets as D
from reconstruction import evaluate, make_dataset, recipe
from reconstruction.cli import UserError
from reconstruction.objectives import dataset_hulls
from taichi_softras.sampling import visual_hull

CAR, CHAIR = "02958343", "03001627"


def _split(images, voxels, labels, classes=(CAR, CHAIR)) -> D.ShapeNetSplit:
    return D.ShapeNetSplit(list(classes), images, voxels, torch.as_tensor(labels))


def test_retrieval_returns_the_shape_of_the_nearest_training_view():
    gen = torch.Generator().manual_seed(0)
    # three training shapes: their 24 views are random blobs, their voxels distinct slabs
    images = (torch.rand(3, 24, 4, 64, 64, generator=gen) > 0.5).to(torch.uint8) * 255
    voxels = torch.zeros(3, 32, 32, 32, dtype=torch.bool)
    for i in range(3):
        voxels[i, 4 * i:4 * i + 8] = True
    train = _split(images, voxels, [0, 0, 1])
    # test shapes 0..2 show (noisy copies of) training views of shapes 2, 0, 1 in the view the
    # evaluation uses (shape index mod 24); their true voxels are those shapes'
    owner = torch.tensor([2, 0, 1])
    views = torch.arange(3) % 24
    source_views = torch.tensor([7, 19, 3])  # any view of the owner: retrieval searches all 24
    test_images = torch.zeros(3, 24, 4, 64, 64, dtype=torch.uint8)
    noise = torch.randint(0, 20, (3, 4, 64, 64), generator=gen, dtype=torch.uint8)
    test_images[torch.arange(3), views] = (images[owner, source_views].int() - noise).clamp(0, 255).to(torch.uint8)
    test = _split(test_images, voxels[owner], [1, 0, 0])
    for feature in evaluate.RETRIEVAL_FEATURES:
        index = evaluate.retrieval_index(train, feature)
        assert torch.equal(evaluate.retrieve(index, test.views(torch.arange(3), views), feature), owner)
        assert torch.equal(evaluate.retrieval_baseline(train, test, feature), torch.ones(3, dtype=torch.float64))
    # with another shape's voxels as truth the IoU drops: the baseline returns the retrieved shape's voxels
    wrong = _split(test_images, voxels[torch.tensor([0, 1, 2])], [1, 0, 0])
    assert (evaluate.retrieval_baseline(train, wrong) < 1).all()


def _abc_voxels() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Regions A (in every shape), B (6 of 10), C (2 of 10) of equal size, and 10 shapes."""
    a, b, c = (torch.zeros(32, 32, 32, dtype=torch.bool) for _ in range(3))
    a[0:8], b[8:16], c[16:24] = True, True, True
    shapes = [a | b] * 6 + [a | c] * 2 + [a] * 2
    return a, b, c, torch.stack(shapes)


def test_per_class_mean_is_thresholded_at_its_best_level_on_train():
    a, b, c, train_vox = _abc_voxels()
    # mean grid: A 1.0, B 0.6, C 0.2. Mean IoU on train: A alone 0.6, A|B 0.767, A|B|C 0.6
    assert torch.equal(evaluate._best_mean_grid(train_vox), a | b)
    # class 1's shapes are all C: its own grid is C, while the pooled grid stays A|B
    vox = torch.cat((train_vox, c.expand(4, -1, -1, -1)))
    labels = [0] * 10 + [1] * 4
    train = _split(torch.zeros(14, 1, 1, 1, 1, dtype=torch.uint8), vox, labels)
    test_vox = torch.stack([a | b | c, c])
    test = _split(torch.zeros(2, 1, 1, 1, 1, dtype=torch.uint8), test_vox, [0, 1])
    per_class = evaluate.mean_voxel_baseline(train, test, by_class=True)
    # the level comes from train, not test (a test-tuned level would keep C and score 1 on shape 0)
    assert per_class.tolist() == pytest.approx([2 / 3, 1.0])
    # pooled (A 10/14, B 6/14, C 6/14): A|B|C scores 0.52 on train, A alone 0.43
    pooled = evaluate.mean_voxel_baseline(train, test)
    assert torch.equal(evaluate._best_mean_grid(vox), a | b | c) and pooled.tolist() == pytest.approx([1.0, 1 / 3])


@pytest.fixture(scope="module")
def small_set():
    """Two classes x 3 generated shapes (all in one split, as the figure shows them)."""
    parts = [make_dataset.make_class(cid, 3, seed=0) for cid in (CAR, CHAIR)]
    images = torch.cat([torch.from_numpy(np.concatenate([p[s][0] for s in D.SPLITS])) for p in parts])
    voxels = torch.cat([torch.from_numpy(np.concatenate([p[s][1] for s in D.SPLITS])) for p in parts])
    return _split(images, voxels, [0] * 3 + [1] * 3)


def test_samples_figure_shows_each_class_shapes(small_set, tmp_path):
    grid = make_dataset.samples_figure(small_set, tmp_path / "samples.png", per_class=4)
    assert (tmp_path / "samples.png").stat().st_size > 0 and grid.shape == (2 * 64, 4 * 64, 3)
    tile = lambda r, c: grid[64 * r:64 * (r + 1), 64 * c:64 * (c + 1)]  # noqa: E731
    rgba = small_set.views(torch.tensor([4]), torch.tensor([make_dataset.SAMPLE_VIEW]))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(tile(1, 1), rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:], atol=1e-6)
    assert (tile(0, 3) == 1).all() and (tile(1, 3) == 1).all()  # 3 shapes per class: the 4th tile is white
    # the shapes of a class differ (silhouettes, not only colours)
    alpha = small_set.images[:3, make_dataset.SAMPLE_VIEW, 3].float()
    assert all((alpha[i] - alpha[j]).abs().mean() > 5 for i in range(3) for j in range(i))


def test_dataset_hulls_match_visual_hull(small_set):
    hulls = dataset_hulls(small_set.images)
    eyes = D.view_eyes(torch.arange(D.NUM_VIEWS))
    for i in range(len(small_set)):
        ref = visual_hull(small_set.images[i, :, 3].float() / 255, eyes, resolution=32, viewing_angle=D.VIEWING_ANGLE)
        assert torch.equal(hulls[i], ref), i
    assert hulls.any() and not hulls.all()


def test_recipe_arguments_and_configs(tmp_path):
    args = recipe.build_parser().parse_args(["cpu", "--out", str(tmp_path)])
    assert args.recipe == "cpu" and args.models == list(recipe.MODEL_KEYS) and not args.tiny
    for argv, flag in ((["--per-class", "2"], "--per-class"), (["--data", str(tmp_path / "none")], "--data"),
                       (["--models", "nerf"], "--models")):
        with pytest.raises(UserError, match=flag):
            recipe._main(["cpu", "--out", str(tmp_path / "o"), *argv])
    assert not (tmp_path / "o").exists()
    # every recipe's configs are valid, and name the run its summary key
    for name, r in recipe.RECIPES.items():
        for key in recipe.MODEL_KEYS:
            cfg = r.config(key, tmp_path / "data", tmp_path, (CAR,))
            assert evaluate.method_name(cfg) == key and cfg.out == str(tmp_path / key), (name, key)
    gpu = recipe.RECIPES["gpu"].config("mesh", tmp_path, tmp_path, (CAR,))
    assert (gpu.batch_size, gpu.lr, gpu.steps, gpu.widths, gpu.render_size) == (64, 1e-4, 250_000, (64, 128, 256), 64)


def test_summary_schema():
    test = _split(torch.zeros(3, 1, 1, 1, 1, dtype=torch.uint8), torch.zeros(3, 1, 1, 1, dtype=torch.bool), [0, 1, 1])
    ious = {k: torch.tensor([0.1, 0.2, 0.4]) * (i + 1) / 8 for i, k in enumerate((*recipe.SUMMARY_KEYS, "implicit_mesh"))}
    s = recipe.summary(ious, test)
    assert set(s["mean_iou"]) == set(recipe.SUMMARY_KEYS) | {"implicit_mesh"}
    assert s["per_class"]["mesh"] == {CAR: pytest.approx(0.1 / 8, abs=1e-4), CHAIR: pytest.approx(0.3 / 8, abs=1e-4)}
    assert s["mean_iou"]["mesh"] == pytest.approx(0.7 / 24, abs=1e-4)
    best = max(s["mean_iou"]["per_class_mean"], s["mean_iou"]["retrieval"])
    assert s["margin_over_best_image_baseline"]["implicit"] == pytest.approx(s["mean_iou"]["implicit"] - best, abs=1e-4)
    json.dumps(s)


@pytest.mark.slow
def test_recipe_tiny_end_to_end(tmp_path):
    out = tmp_path / "r"
    result = recipe.main(["cpu", "--tiny", "--out", str(out)])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["mean_iou"] == result["mean_iou"]
    assert set(saved["mean_iou"]) == set(recipe.SUMMARY_KEYS) | {"implicit_mesh"}
    for method, by_class in saved["per_class"].items():
        assert set(by_class) == {CAR, CHAIR} and all(0 <= v <= 1 for v in by_class.values()), method
    for name in ("tables.md", "comparison.png", "samples.png"):
        assert (out / name).stat().st_size > 0
    # the summary's numbers are evaluate's on the trained runs
    test = D.ShapeNetSplit.load(out / "data", [CAR, CHAIR], "test")
    mesh = evaluate.load_run(out / "mesh")[1]
    assert saved["mean_iou"]["mesh"] == pytest.approx(evaluate.evaluate_split(mesh, test).mean().item(), abs=1e-4)
    # rerunning reuses the finished runs (their training time is the first run's) and the dataset
    again = recipe.main(["cpu", "--tiny", "--out", str(out)])
    assert again["mean_iou"] == result["mean_iou"]
    assert all(again["seconds"][k] == result["seconds"][k] > 0 for k in recipe.MODEL_KEYS)


def test_step_profile_times_each_section_and_restores_the_functions(small_set, tmp_path):
    from reconstruction import objectives, step_profile

    for i, cid in enumerate(small_set.class_ids):
        sel = small_set.labels == i
        D.save_class_split(tmp_path, cid, "train", small_set.images[sel].numpy(), small_set.voxels[sel].numpy())
    originals = (objectives.render, objectives.probe_view, D.ShapeNetSplit.views, torch.Tensor.backward)
    tiny = ["--data", str(tmp_path), "--classes", "car,chair", "--batch-size", "2", "--widths", "4", "8", "8",
            "--hidden", "16", "--code", "8", "--decoder-hidden", "16", "32", "--render-size", "16",
            "--warmup", "1", "--steps-profiled", "2"]
    text = step_profile.main(["--model", "mesh", *tiny])
    rows = dict(line.strip("|").split("|")[:2] for line in text.splitlines()[4:-1])
    ms = {k.strip(): float(v) for k, v in rows.items()}
    for section in ("render: forward", "render: backward", "network: forward", "backward: network and losses", "optimizer"):
        assert ms[section] > 0, section
    assert (objectives.render, objectives.probe_view, D.ShapeNetSplit.views, torch.Tensor.backward) == originals
