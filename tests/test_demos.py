"""Headless smoke tests of the five demos (tiny settings: outputs exist, the loss fell) and their
command-line errors (one line on stderr, exit status 2, no traceback).

Smoke tests call each demo's entry point in-process (``_common.run``, exactly what ``__main__``
runs) to share one Taichi runtime; a few error cases also run the real script in a subprocess.
The full-length runs behind the README numbers are marked ``slow``.
"""

import importlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMOS = ROOT / "demos"


@pytest.fixture(scope="module")
def demo():
    """Import a demo module by name (the demos import their sibling ``_common``)."""
    sys.path.insert(0, str(DEMOS))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(DEMOS))


def run_demo(demo, name, argv):
    module = demo(name)
    module.common.run(module.main, module.build_parser(), [str(a) for a in argv])


def summary(out: pathlib.Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_image(path: pathlib.Path, min_frames: int = 1) -> None:
    im = Image.open(path)
    assert getattr(im, "n_frames", 1) >= min_frames
    a = np.asarray(im.convert("RGB"))
    assert a.std() > 1.0, f"{path.name} is blank"


def test_render_headless(demo, tmp_path, capsys):
    run_demo(demo, "render", ["--headless", "--out", tmp_path, "--image-size", 16, "--views", 3])
    assert "render: " in capsys.readouterr().out
    assert_image(tmp_path / "sweep.png")
    assert Image.open(tmp_path / "sweep.png").size == (3 * 16 + 2 * 4, 3 * 16 + 2 * 4)  # 3 x 3 grid
    assert_image(tmp_path / "turntable.gif", min_frames=3)
    assert summary(tmp_path)["faces"] == 5856


def test_gradients_headless(demo, tmp_path):
    run_demo(demo, "gradients", ["--headless", "--out", tmp_path, "--image-size", 16, "--steps", 4])
    for name in ("panels.png", "render.png", "loss_map.png", "vertex_gradients.png", "vertex_heatmap.png", "loss.png"):
        assert_image(tmp_path / name)
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert s["vertices_with_gradient"] > 0
    assert s["fd_vs_autodiff_cosine"] > 0.99  # the heat-map's pixels sum to the autodiff gradient


def test_gradients_reach_grows_with_sigma(demo):
    """The demo's point: more blur -> gradients reach more vertices."""
    module = demo("gradients")
    args = module.build_parser().parse_args(["--headless", "--image-size", "16"])
    scene = module.GradientScene(args)
    reach = [int(module._arrow_mask(scene.analyse(sigma, 1e-4, 0)).sum()) for sigma in (1e-6, 1e-3)]
    assert reach[0] < reach[1]


def test_deform_headless(demo, tmp_path):
    run_demo(demo, "deform", ["--headless", "--out", tmp_path, "--image-size", 16, "--iterations", 8, "--views-per-step", 12])
    s = summary(tmp_path)
    assert s["mean_iou_120_views"] > s["mean_iou_initial"]
    assert_image(tmp_path / "optimization.gif", min_frames=2)
    assert_image(tmp_path / "loss.png")
    assert (tmp_path / "deformed.obj").stat().st_size > 0


def test_pose_rigid_headless(demo, tmp_path):
    run_demo(demo, "pose_rigid", ["--headless", "--out", tmp_path, "--image-size", 24, "--poses", 1, "--restarts", 2, "--iterations", 8])
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert len(s["results"]) == 1 and s["results"][0]["rotation_error_deg"] >= 0
    assert_image(tmp_path / "fit.gif", min_frames=2)


def test_pose_rigid_parameterizations_agree(demo):
    import torch

    module = demo("pose_rigid")
    for rotvec in (torch.tensor([0.3, -0.5, 0.2]), torch.zeros(3)):
        r = module.rotation_matrix(module.rotation_parameters(rotvec, "axis-angle"), "axis-angle")
        q = module.rotation_matrix(module.rotation_parameters(rotvec, "quaternion"), "quaternion")
        torch.testing.assert_close(q, r)


def test_pose_nonrigid_headless(demo, tmp_path):
    run_demo(demo, "pose_nonrigid", ["--headless", "--out", tmp_path, "--image-size", 24, "--views", 2, "--iterations", 8])
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert len(s["joint_errors_deg"]) == 3
    assert_image(tmp_path / "fit.gif", min_frames=2)


def test_no_display_falls_back_to_headless(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    run_demo(demo, "pose_nonrigid", ["--out", tmp_path, "--image-size", 16, "--views", 1, "--iterations", 2])
    assert "running headless" in capsys.readouterr().err
    assert (tmp_path / "summary.json").exists()


@pytest.fixture
def bad_obj(tmp_path):
    path = tmp_path / "broken.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nf 1 2 7\n")  # a face indexing a missing vertex
    return path


BAD_ARGS = [
    ("render", ["--mesh", "/no/such/mesh.obj"], "no such file"),
    ("render", ["--mesh", "BAD_OBJ"], "broken.obj"),
    ("render", ["--sigma", "-1"], "--sigma"),
    ("render", ["--image-size", "0"], "--image-size"),
    ("gradients", ["--target", "/no/such/target.obj"], "no such file"),
    ("gradients", ["--gamma", "nan"], "--gamma"),
    ("deform", ["--target", "BAD_OBJ"], "broken.obj"),
    ("deform", ["--views-per-step", "121"], "--views-per-step"),
    ("pose_rigid", ["--mesh", "/no/such/mesh.obj"], "no such file"),
    ("pose_rigid", ["--image-size", "0"], "--image-size"),
    ("pose_nonrigid", ["--angles", "10", "20"], "--angles"),
    ("pose_nonrigid", ["--bones", "2", "--angles", "1", "2"], "--bones"),
    ("pose_nonrigid", ["--out", "/proc/no/such/folder"], "--out"),
]


@pytest.mark.parametrize("name, argv, expected", BAD_ARGS)
def test_bad_arguments_in_process(demo, name, argv, expected, bad_obj, tmp_path, capsys):
    argv = [str(bad_obj) if a == "BAD_OBJ" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        run_demo(demo, name, ["--headless", "--out", tmp_path, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{name}: error: ") and expected in err[0]


@pytest.mark.parametrize(
    "script, argv, expected",
    [("render.py", ["--mesh", "/no/such/mesh.obj"], "no such file"), ("pose_rigid.py", ["--mesh", "BAD_OBJ"], "broken.obj")],
)
def test_bad_arguments_subprocess(script, argv, expected, bad_obj, tmp_path):
    argv = [str(bad_obj) if a == "BAD_OBJ" else a for a in argv]
    proc = subprocess.run(
        [sys.executable, str(DEMOS / script), "--headless", "--out", str(tmp_path), *argv],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in err[0]


# --- full-length runs behind the README numbers ------------------------------------------------


@pytest.mark.slow
def test_deform_reaches_iou_085(demo, tmp_path):
    run_demo(demo, "deform", ["--headless", "--out", tmp_path])
    s = summary(tmp_path)
    assert s["mean_iou_120_views"] >= 0.85


@pytest.mark.slow
def test_pose_rigid_8_of_10_under_5_degrees(demo, tmp_path):
    run_demo(demo, "pose_rigid", ["--headless", "--out", tmp_path])
    assert summary(tmp_path)["under_5deg"] >= 8


@pytest.mark.slow
def test_pose_nonrigid_every_joint_under_5_degrees(demo, tmp_path):
    run_demo(demo, "pose_nonrigid", ["--headless", "--out", tmp_path])
    assert summary(tmp_path)["max_joint_error_deg"] < 5.0
