"""The windows for real: render.py and gradients.py in both front ends (``--ui gui``: ti.GUI;
``--ui ggui``: ti.ui on Vulkan) on a virtual X display (Xvfb), a few frames each, and the
screenshot must show what the window promises (the render, the panels, the coloured 3D mesh, the
slider handles), not a blank or black frame.

Skipped only where Xvfb cannot run (not installed: ``apt-get install -y xvfb``, as .ci/run does),
and the GGUI tests where Vulkan does not work (``apt-get install -y mesa-vulkan-drivers libvulkan1``
gives a CPU driver).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.gui

DEMOS = pathlib.Path(__file__).resolve().parents[1] / "demos"
GREY = np.array([51, 51, 51])  # the windows' background


@pytest.fixture(scope="module")
def display():
    """A private Xvfb display for this module; its DISPLAY string."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install -y xvfb); the GUI cannot be tested without a display")
    for number in range(99, 140):  # first free display number
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            break
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1600x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"Xvfb could not start here: {proc.stderr.read().decode(errors='replace')[-300:]}")
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def _python(program: str | pathlib.Path, argv, tmp_path, display, **env):
    """Run a script (a Path) or code (a str) with the demos importable, on ``display``."""
    command = [sys.executable, *(["-c", program] if isinstance(program, str) else [str(program)]), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env={**os.environ, "DISPLAY": display, "PYTHONPATH": f"{DEMOS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                               "ENABLE_TAICHI_HEADER_PRINT": "0", **env})


@pytest.fixture(scope="module")
def vulkan(display, tmp_path_factory):
    """Skip unless GGUI can run here (Vulkan loader and device)."""
    proc = _python("\nfrom demo_kit import ggui; print(ggui.unavailable_reason())", [], tmp_path_factory.mktemp("vk"), display)
    reason = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else proc.stderr[-300:]
    if reason != "None":
        pytest.skip(f"GGUI needs Vulkan: {reason}")


def screenshot(display, script, argv, tmp_path, frames=3):
    shot = tmp_path / "screenshot.png"
    proc = _python(DEMOS / script, ["--frames", str(frames), "--screenshot", str(shot), *argv], tmp_path, display)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "running headless" not in proc.stderr
    return np.asarray(Image.open(shot).convert("RGB")).astype(np.int32)


def colourful(area: np.ndarray) -> float:
    """The fraction of pixels that are neither grey nor black nor white (saturation above 40 of 255)."""
    return float(((area.max(-1) - area.min(-1)) > 40).mean())


def assert_widgets(area: np.ndarray) -> None:
    """ImGui's widgets: white text and blue slider frames and handles."""
    assert (area.min(-1) > 200).mean() > 0.005, "no widget text"
    blue = (area[..., 2] > area[..., 0] + 40) & (area[..., 2] > 90)
    assert blue.mean() > 0.02, "no sliders or buttons"


def assert_shows_something(area: np.ndarray, what: str) -> None:
    assert len(np.unique(area.reshape(-1, 3), axis=0)) > 20, f"{what}: a flat area"
    assert area.std() > 5, f"{what}: blank"


# --- ti.GUI -------------------------------------------------------------------------------------


def test_render_gui_shows_the_mesh_and_slider_handles(display, tmp_path):
    from demo_kit import tigui

    shot = screenshot(display, "render.py", ["--ui", "gui", "--image-size", "64", "--sigma", "1e-4"], tmp_path)
    mesh_area = shot[:256, :256]  # the 64 px render, magnified 4x, at the top-left
    assert_shows_something(mesh_area, "render")
    assert (np.abs(mesh_area - 255).sum(-1) > 60).mean() > 0.05  # something besides the white background
    # The sigma slider's handle sits at its value: log10(1e-4) = -4 is the middle of [-7, -1].
    left, right = 256 + tigui.PAD, 256 + tigui.STRIP - tigui.PAD
    handle = shot[30, int((left + right) / 2)]
    assert np.abs(handle - tigui.HANDLE).sum() < 40, handle
    assert np.abs(shot[30, right - 3] - tigui.BAR).sum() < 40  # the bar's unfilled end


@pytest.mark.slow  # the GGUI variant below runs by default
def test_gradients_gui_shows_all_panels(display, tmp_path):
    from demo_kit import images

    shot = screenshot(display, "gradients.py", ["--ui", "gui", "--image-size", "32"], tmp_path)
    side = 96  # 3x the image
    title = images.caption(np.zeros((0, 8, 3), np.uint8), "a title").shape[0]
    gap, width = 12, side + 4 + images.colorbar(side, "magma", 0, 1, "").shape[1]  # image, gap, colour bar
    areas = {name: shot[y + title : y + title + side, x : x + side]
             for name, (x, y) in zip(("render", "loss", "arrows", "share"),
                                     ((0, 0), (width + gap, 0), (0, title + side + gap), (width + gap, title + side + gap)))}
    for name in ("render", "loss", "arrows"):
        assert_shows_something(areas[name], name)
    assert (areas["share"].max(-1) > 150).any(), "no share of the picked vertex's gradient shown"  # a blob on black
    assert colourful(areas["loss"]) > 0.2 and colourful(areas["arrows"]) > 0.05
    assert np.abs(areas["arrows"] - areas["render"]).sum(-1).astype(bool).mean() > 0.05  # the arrows


@pytest.mark.slow
def test_fitting_demo_window_shows_progress(display, tmp_path):
    """The fitting demos' ti.GUI window (the optimization loop): the silhouettes and a status line."""
    shot = screenshot(display, "pose_nonrigid.py", ["--image-size", "32", "--views", "2", "--iterations", "4"], tmp_path)
    assert_shows_something(shot[:128, :260], "silhouettes")
    assert colourful(shot[:128, :260]) > 0.05  # red target, green fit
    assert (shot[-20:, :200].min(-1) > 200).any(), "no status line"


# --- GGUI ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _demo_kit_on_path():
    sys.path.insert(0, str(DEMOS))
    yield
    sys.path.remove(str(DEMOS))


def test_ggui_draws_where_the_view_projects(display, vulkan, tmp_path):
    """OrbitView.project (used for picking) lands on the pixels where GGUI draws the same points."""
    code = textwrap.dedent("""
        import json, pathlib, sys
        import numpy as np
        from demo_kit import ggui
        res = (640, 400)
        win = ggui.Window("projection", res, frames=2, screenshot=pathlib.Path(sys.argv[1]))
        view = ggui.OrbitView(res, (300, 50, 300, 300), (0.2, 0.1, -0.1), 1.0, azimuth=30, elevation=20)
        view.zoom = 1.3
        points = np.array([[0.2, 0.1, -0.1], [0.9, 0.1, -0.1], [0.2, 0.8, -0.1], [0.2, 0.1, 0.6]])
        marks = ggui.PointBuffer(4)
        marks.update(points)
        while win.running:
            win.background(np.zeros((res[1], res[0], 3), np.uint8))
            win.begin_scene(view)
            marks.draw(win.scene, 0.02, (1, 1, 1))
            win.end_scene()
            win.show()
        print(json.dumps(view.project(points)[0].tolist()))
    """)
    proc = _python(code, [str(tmp_path / "shot.png")], tmp_path, display)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    bright = np.asarray(Image.open(tmp_path / "shot.png").convert("L")) > 60
    for col, row in expected:
        r, c = int(row), int(col)
        assert bright[r - 1 : r + 2, c - 1 : c + 2].all(), (col, row)  # the sphere's centre
        assert not bright[r - 12 : r + 13, c - 12 : c + 13].all()  # ... and its edge is near
    assert bright.mean() < 0.02  # nothing else drawn


def test_render_ggui_shows_render_and_3d_view(display, vulkan, tmp_path):
    shot = screenshot(display, "render.py", ["--ui", "ggui", "--image-size", "64"], tmp_path)
    render = shot[40 + 24 : 40 + 24 + 512, 876 : 876 + 512]  # the 64 px render at 8x, under its title
    assert_shows_something(render, "render panel")
    view = shot[40:640, 360:866]  # the 3D view: Spot and the camera
    assert_shows_something(view, "3D view")
    lit = np.abs(view - GREY).sum(-1) > 60
    assert lit.mean() > 0.03, "the 3D view shows no mesh"
    assert (view[lit].mean(0) > 80).all(), "the mesh in the 3D view is dark (normals or lights)"
    assert_widgets(shot[10:330, 10:350])


def test_gradients_ggui_shows_the_coloured_mesh_and_panels(display, vulkan, tmp_path):
    shot = screenshot(display, "gradients.py", ["--ui", "ggui", "--image-size", "32"], tmp_path)
    view = shot[60:540, 360:896]  # the 3D view (below its caption)
    mesh = colourful(view)
    assert mesh > 0.15, f"the 3D view shows no coloured mesh ({mesh:.1%} coloured pixels)"
    coloured = view[(view.max(-1) - view.min(-1)) > 40]
    assert (coloured.max(-1) > 100).mean() > 0.5, "the mesh is dark (normals or lights)"
    greenish = (coloured[:, 1] > coloured[:, 2]) & (coloured[:, 1] > 90)  # viridis's green to yellow
    assert greenish.mean() > 0.2
    white = (view.min(-1) > 220).mean()
    assert white > 0.001, "no gradient arrows in the 3D view"
    panels = shot[24:, 904:]
    assert_shows_something(panels, "image panels")
    assert colourful(panels) > 0.05
    assert_widgets(shot[8:480, 8:352])


def test_ggui_falls_back_or_says_why_without_vulkan(display, tmp_path):
    """Without a Vulkan driver, --ui ggui is one error line naming --ui; the default picks ti.GUI."""
    no_driver = {"VK_ICD_FILENAMES": str(tmp_path / "none.json"), "VK_DRIVER_FILES": str(tmp_path / "none.json")}
    proc = _python(DEMOS / "render.py", ["--ui", "ggui"], tmp_path, display, **no_driver)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("render: error: argument --ui: ggui needs Vulkan"), err
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(DEMOS)!r})
        import render
        from demo_kit import cli
        print(cli.front_end(render.build_parser().parse_args([])))
    """)
    proc = _python(code, [], tmp_path, display, **no_driver)
    assert proc.stdout.strip().splitlines()[-1] == "gui", proc.stderr
