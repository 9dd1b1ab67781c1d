"""The GUI front end for real: render.py and gradients.py run in a Taichi GUI window on a virtual X
display (Xvfb), draw a few frames, save a screenshot, and the screenshot must show the scene.

Skipped only where Xvfb cannot run (not installed: ``apt-get install -y xvfb``, as .ci/run does).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.gui

DEMOS = pathlib.Path(__file__).resolve().parents[1] / "demos"


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


def run_gui(display, script, argv, tmp_path):
    shot = tmp_path / "screenshot.png"
    proc = subprocess.run(
        [sys.executable, str(DEMOS / script), "--frames", "3", "--screenshot", str(shot), *argv],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, env={**os.environ, "DISPLAY": display},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "running headless" not in proc.stderr
    return np.asarray(Image.open(shot).convert("RGB")).astype(np.int32)


def test_render_gui_shows_the_mesh(display, tmp_path):
    shot = run_gui(display, "render.py", ["--image-size", "64"], tmp_path)
    mesh_area = shot[:256, :256]  # the 64 px render, magnified 4x, sits at the top-left of the window
    assert len(np.unique(mesh_area.reshape(-1, 3), axis=0)) > 20, "screenshot shows no rendered mesh"
    assert (np.abs(mesh_area - 255).sum(-1) > 60).mean() > 0.05  # something besides the white background


def test_gradients_gui_shows_all_panels(display, tmp_path):
    shot = run_gui(display, "gradients.py", ["--image-size", "64"], tmp_path)
    panel = (64 + 4) * 4  # 64 px panels and 4 px gaps, magnified 4x
    for k in range(4):
        area = shot[:256, k * panel : k * panel + 256]
        assert area.std() > 5, f"panel {k + 1} is blank"
    # The arrows of panel 3 are drawn over the render, so it differs from the plain render of panel 1.
    assert np.abs(shot[:256, 2 * panel : 2 * panel + 256] - shot[:256, :256]).sum() > 0
