"""Headless smoke tests of the demos (tiny settings: outputs exist, the loss fell, every figure is
labelled) and their command lines (one ``error:`` line on stderr and exit status 2 for user
mistakes, no traceback; ``--help`` with every default; a progress bar and a one-line result).

Smoke tests call each demo's entry point in-process (``demo_kit.cli.run``, exactly what ``__main__``
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
    """Import a demo module by name (the demos import their sibling package ``demo_kit``)."""
    sys.path.insert(0, str(DEMOS))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(DEMOS))


def run_demo(demo, name, argv):
    module = demo(name)
    module.cli.run(module.main, module.build_parser(), [str(a) for a in argv])


@pytest.fixture
def figures(demo, monkeypatch):
    """What each matplotlib figure a demo saves says, by file name: its titles, axis labels, ticks,
    legends and whether it shows images (the figures are still written)."""
    plots = demo("demo_kit.plots")
    seen = {}
    save = plots.save

    def record(fig, path):
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison and not hasattr(ax, "_colorbar")]
        seen[pathlib.Path(path).name] = {
            "colorbars": [ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")],
            "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
            "supxlabel": fig._supxlabel.get_text() if fig._supxlabel else "",
            "supylabel": fig._supylabel.get_text() if fig._supylabel else "",
            "legend": [t.get_text() for lg in fig.legends for t in lg.get_texts()],
            "axes": [{
                "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                "images": len(ax.images), "xticks": list(ax.get_xticks()),
                "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
                "lines": [(ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines()],
            } for ax in axes],
        }
        return save(fig, path)

    monkeypatch.setattr(plots, "save", record)
    return seen


def assert_labelled(figure: dict) -> None:
    """Titled; plots (axes without images) have both axis labels; image grids a label per row or
    column; colour bars a label."""
    assert figure["suptitle"] or all(ax["title"] for ax in figure["axes"]), figure
    assert all(figure["colorbars"]), figure
    for ax in figure["axes"]:
        if not ax["images"]:
            assert ax["xlabel"] and ax["ylabel"], ax
    if any(ax["images"] for ax in figure["axes"]):
        assert any(ax["title"] or ax["ylabel"] for ax in figure["axes"]), figure


def summary(out: pathlib.Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_image(path: pathlib.Path, min_frames: int = 1) -> None:
    im = Image.open(path)
    assert getattr(im, "n_frames", 1) >= min_frames
    a = np.asarray(im.convert("RGB"))
    assert a.std() > 1.0, f"{path.name} is blank"


def test_render_headless(demo, tmp_path, capsys, figures):
    run_demo(demo, "render", ["--headless", "--out", tmp_path, "--image-size", 16, "--views", 3])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("render: ")
    assert_image(tmp_path / "sweep.png")
    sweep = figures["sweep.png"]
    assert_labelled(sweep)
    assert [ax["images"] for ax in sweep["axes"]] == [1] * 9  # the 3 x 3 grid
    assert [ax["ylabel"] for ax in sweep["axes"][::3]] == ["σ = 1e-05", "σ = 0.0001", "σ = 0.001"]
    assert [ax["title"] for ax in sweep["axes"][:3]] == ["γ = 0.0001", "γ = 0.001", "γ = 0.01"]
    assert sweep["supxlabel"].startswith("γ") and sweep["supylabel"].startswith("σ")
    assert_image(tmp_path / "turntable.gif", min_frames=3)
    assert summary(tmp_path)["faces"] == 5856


def test_gradients_headless(demo, tmp_path, figures):
    run_demo(demo, "gradients", ["--headless", "--out", tmp_path, "--image-size", 16, "--steps", 4])
    for name in ("panels.png", "render.png", "loss_map.png", "vertex_gradients.png", "vertex_heatmap.png", "loss.png"):
        assert_image(tmp_path / name)
    for name in ("panels.png", "loss.png"):
        assert_labelled(figures[name])
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert s["vertices_with_gradient"] > 0
    assert s["fd_vs_autodiff_cosine"] > 0.99  # the heat-map's pixels sum to the autodiff gradient


def test_gradients_panel_draws_the_arrows(demo, tmp_path):
    """vertex_gradients.png is the render with an arrow per reached vertex drawn over it: the same
    layout as render.png, its image differs where the arrows are, in the arrows' colours."""
    run_demo(demo, "gradients", ["--headless", "--out", tmp_path, "--image-size", 24, "--steps", 0])
    render = np.asarray(Image.open(tmp_path / "render.png").convert("RGB")).astype(int)
    arrows = np.asarray(Image.open(tmp_path / "vertex_gradients.png").convert("RGB")).astype(int)
    title = demo("demo_kit.images").caption(np.zeros((0, 8, 3), np.uint8), "a title").shape[0]  # the title strip
    body = (slice(title, render.shape[0]), slice(0, render.shape[0] - title))  # the square image under it
    changed = np.abs(arrows[body] - render[body]).sum(-1) > 60
    assert changed.mean() > 0.05, f"only {changed.mean():.1%} of the image carries arrows"
    colours = arrows[body][changed]
    greenish = (colours[:, 1] > colours[:, 0] + 30) & (colours[:, 1] > 100)  # viridis's green-yellow range
    assert greenish.mean() > 0.2
    assert summary(tmp_path)["vertices_with_gradient"] > 100


def test_gradients_reach_grows_with_sigma(demo):
    """The demo's point: more blur -> gradients reach more vertices."""
    module = demo("gradients")
    args = module.build_parser().parse_args(["--headless", "--image-size", "16"])
    scene = module.GradientScene(args)
    reach = [int(module.reached(scene.analyse(sigma, 1e-4, 0)).sum()) for sigma in (1e-6, 1e-3)]
    assert reach[0] < reach[1]


def test_deform_headless(demo, tmp_path, figures, capsys):
    run_demo(demo, "deform", ["--headless", "--out", tmp_path, "--image-size", 16, "--iterations", 8, "--views-per-step", 12])
    out, err = capsys.readouterr()
    assert "deform: 100%" in err and "8/8" in err  # the progress bar, also when stderr is not a terminal
    assert out.strip().splitlines()[-1].startswith("deform: target=car iterations=8 ")  # the one-line result
    for name in ("final.png", "loss.png"):
        assert_labelled(figures[name])
    assert figures["final.png"]["legend"] == ["target only", "fit only", "both"]
    assert len(figures["loss.png"]["axes"][0]["legend"]) == 2
    s = summary(tmp_path)
    assert s["mean_iou_120_views"] > s["mean_iou_initial"]
    assert_image(tmp_path / "optimization.gif", min_frames=2)
    assert_image(tmp_path / "loss.png")
    assert (tmp_path / "deformed.obj").stat().st_size > 0


def test_pose_rigid_headless(demo, tmp_path, figures):
    run_demo(demo, "pose_rigid", ["--headless", "--out", tmp_path, "--image-size", 24, "--poses", 2, "--restarts", 2, "--iterations", 8])
    for name in ("fit_final.png", "loss.png", "errors.png"):
        assert_labelled(figures[name])
    assert [ax["title"] for ax in figures["fit_final.png"]["axes"]] == ["target", "fit (best start)", "|fit - target| (RGB)"]
    errors = figures["errors.png"]["axes"][0]
    assert errors["xticks"] == [1, 2]  # one tick per pose, no fractional poses
    assert all(style == "None" for style, marker in errors["lines"] if marker != "None")  # marks, not a line
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert len(s["results"]) == 2 and s["results"][0]["rotation_error_deg"] >= 0
    assert_image(tmp_path / "fit.gif", min_frames=2)


def test_pose_rigid_parameterizations_agree(demo):
    import torch

    module = demo("pose_rigid")
    for rotvec in (torch.tensor([0.3, -0.5, 0.2]), torch.zeros(3)):
        r = module.rotation_matrix(module.rotation_parameters(rotvec, "axis-angle"), "axis-angle")
        q = module.rotation_matrix(module.rotation_parameters(rotvec, "quaternion"), "quaternion")
        torch.testing.assert_close(q, r)


def test_pose_nonrigid_headless(demo, tmp_path, figures):
    run_demo(demo, "pose_nonrigid", ["--headless", "--out", tmp_path, "--image-size", 24, "--views", 2, "--iterations", 8])
    for name in ("fit_final.png", "loss.png", "angles.png"):
        assert_labelled(figures[name])
    assert figures["angles.png"]["axes"][0]["legend"] == ["joint 1", "joint 2", "joint 3"]
    s = summary(tmp_path)
    assert s["loss_final"] < s["loss_initial"]
    assert len(s["joint_errors_deg"]) == 3
    assert_image(tmp_path / "fit.gif", min_frames=2)


def test_no_display_falls_back_to_headless(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    run_demo(demo, "pose_nonrigid", ["--out", tmp_path, "--image-size", 16, "--views", 1, "--iterations", 2])
    assert "running headless" in capsys.readouterr().err
    assert (tmp_path / "summary.json").exists()


DEMO_NAMES = ("render", "gradients", "deform", "pose_rigid", "pose_nonrigid", "implicit_fit")


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_help_describes_every_option(demo, name):
    """--help: the demo's description, and every option with a help text, its default and its choices."""
    module = demo(name)
    parser = module.build_parser()
    text = parser.format_help()
    options = [a for a in parser._actions if a.dest != "help"]
    assert all(a.help for a in options), [a.dest for a in options if not a.help]
    assert text.split("options:")[1].count("(default:") == len(options)
    for a in options:
        if a.choices:
            assert "{" + ",".join(a.choices) + "}" in text
    assert module.__doc__.splitlines()[0] in text


def test_debug_shows_the_traceback(demo, tmp_path):
    with pytest.raises(demo("demo_kit.cli").DemoError, match="no such file"):
        run_demo(demo, "render", ["--headless", "--out", tmp_path, "--mesh", "/no/such/mesh.obj", "--debug"])


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
    ("pose_nonrigid", ["--angles", "10", "nan", "20"], "argument --angles: expected a finite number, got 'nan'"),
    ("render", ["--elevation", "inf"], "argument --elevation: expected a finite number"),
    ("gradients", ["--azimuth", "east"], "argument --azimuth: expected a finite number"),
    ("pose_rigid", ["--max-shift", "-0.1"], "argument --max-shift: expected a number >= 0"),
    ("implicit_fit", ["--lam", "-1"], "argument --lam: expected a number >= 0"),
    ("implicit_fit", ["--shape", "cube"], "argument --shape: invalid choice: 'cube'"),
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
