"""The torch-only spec (taichi_softras.spec) and the dense references built on it run where Taichi
is absent; settings are one validated value."""

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taichi_softras import RasterSettings
from taichi_softras.spec import AUX_CHANNELS, AUX_WIDTH, OUTPUTS

ROOT = Path(__file__).resolve().parents[1]

_WITHOUT_TAICHI = textwrap.dedent(
    """
    import sys

    class NoTaichi:
        def find_spec(self, name, path=None, target=None):
            if name == "taichi" or name.startswith("taichi."):
                raise ImportError("taichi is blocked in this test")

    sys.meta_path.insert(0, NoTaichi())
    import torch
    from taichi_softras.reference import probe, rasterize
    from taichi_softras.spec import RasterSettings

    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], dtype=torch.float64, requires_grad=True)
    out = rasterize.soft_rasterize(fv, torch.ones(1, 1, 1, 3, dtype=torch.float64), 8, sigma_val=1e-3,
                                   outputs=["depth", "face_index", "barycentrics"])
    out.rgba[:, 3].sum().backward()
    same = rasterize.rasterize(fv.detach(), torch.ones(1, 1, 1, 3, dtype=torch.float64), RasterSettings(8, sigma_val=1e-3))
    assert torch.equal(same, out.rgba.detach())
    assert out.face_index[0, 4, 4] == 0 and fv.grad.abs().sum() > 0
    o = torch.zeros(1, 2, 3, dtype=torch.float64)
    d = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    res = probe.probe_rays(o, d, torch.tensor([[[0.0, 0.0, 2.0]]], dtype=torch.float64), 0.1, torch.ones(1, 1, dtype=torch.float64))
    assert res.index.tolist() == [[0, -1]]
    assert not any(m == "taichi" or m.startswith("taichi.") for m in sys.modules)
    print("reference ran without taichi")
    """
)


def test_reference_runs_with_taichi_absent():
    done = subprocess.run([sys.executable, "-c", _WITHOUT_TAICHI], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reference ran without taichi" in done.stdout


def test_settings_are_validated_once_and_frozen():
    s = RasterSettings(image_size=(12, 20), sigma_val=1e-4, background_color=[1, 0, 0])
    assert (s.height, s.width) == (12, 20) and s.background_color == (1.0, 0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sigma_val = 1.0
    with pytest.raises(ValueError, match="sigma_val"):
        s.replace(sigma_val=-1.0)
    with pytest.raises(ValueError, match="dist_func"):
        RasterSettings(dist_func="manhattan")
    assert s.replace(gamma_val=1e-3).gamma_val == 1e-3 and s.gamma_val != 1e-3


def test_aux_channels_tile_the_buffer():
    spans = sorted(AUX_CHANNELS.values())
    assert spans[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))
    assert spans[-1][0] + spans[-1][1] == AUX_WIDTH and set(AUX_CHANNELS) <= set(OUTPUTS)


def test_the_references_import_only_the_spec_and_torch():
    """What each reference module imports (statically): torch, the standard library and the spec,
    so a reference cannot run the code it checks."""
    import ast

    allowed_top = {"torch", "math", "__future__", "typing"}
    for path in sorted((ROOT / "taichi_softras" / "reference").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed_top, (path.name, ast.dump(node))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.module == "spec", (path.name, node.module)
                else:
                    assert node.module.split(".")[0] in allowed_top, (path.name, node.module)
