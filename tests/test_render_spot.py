"""Spot renders recognizably: a small golden image, compared with a stated tolerance.

Regenerate (only after a deliberate rendering change):
    python -m taichi_softras --image-size 64 --out tests/data/spot_64.png
"""

from pathlib import Path

import numpy as np
from PIL import Image

from taichi_softras.__main__ import main, render_png
import taichi_softras as sr

GOLDEN = Path(__file__).parent / "data" / "spot_64.png"


def test_spot_matches_golden_image(tmp_path):
    got = render_png(sr.DATA_DIR / "spot" / "spot_triangulated.obj", tmp_path / "spot.png", image_size=64).astype(float)
    want = np.asarray(Image.open(GOLDEN)).astype(float)
    assert got.shape == want.shape == (64, 64, 4)
    alpha_iou = ((got[..., 3] > 127) & (want[..., 3] > 127)).sum() / ((got[..., 3] > 127) | (want[..., 3] > 127)).sum()
    assert alpha_iou > 0.98
    # Mean absolute RGB difference inside the silhouette, in 0..255 units.
    mask = want[..., 3] > 127
    assert np.abs(got[..., :3] - want[..., :3])[mask].mean() < 3.0
    # It is a cow-sized blob with both dark patches and white body, not a flat colour.
    assert 0.08 < mask.mean() < 0.5
    lum = want[..., :3][mask].mean(-1)
    assert (lum < 80).mean() > 0.05 and (lum > 150).mean() > 0.2 and lum.std() > 30


def test_cli_writes_png_and_reports_bad_mesh(tmp_path, capsys):
    out = tmp_path / "cow.png"
    assert main(["--image-size", "32", "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert main(["--mesh", str(tmp_path / "missing.obj"), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err
