"""docs/api.md is generated from the docstrings by docs/make_api.py and must not be stale."""

import importlib.util
import inspect
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date(make_api):
    text = make_api.render()
    assert (ROOT / "docs" / "api.md").read_text() == text, "docs/api.md is stale: run python docs/make_api.py"


def test_every_public_name_has_an_entry_with_its_signature(make_api):
    import taichi_softras

    text = make_api.render()
    names = make_api.public_names(taichi_softras)
    assert {"Mesh", "SoftRenderer", "soft_rasterize", "functional"} <= set(names)
    for name in names:
        assert f"\n## `{name}`\n" in text, name
    signature = str(inspect.signature(taichi_softras.soft_rasterize))
    assert f"soft_rasterize{signature}" in text
    assert inspect.cleandoc(taichi_softras.soft_rasterize.__doc__).splitlines()[0] in text
    assert " at 0x" not in text and str(ROOT) not in text  # the same on every machine


def test_check_mode_reports_a_stale_file(make_api, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "api.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(make_api, "OUT", stale)
    monkeypatch.setattr(make_api, "ROOT", tmp_path)
    assert make_api.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert make_api.main([]) == 0 and make_api.main(["--check"]) == 0
