"""Packaging: the licence and citation files, the ``taichi-softras`` entry point, and what the sdist
and the wheel hold (built here with setuptools' PEP 517 hooks, no network, a few seconds).

The sdist is the tracked tree (so its tests find the demos, reconstruction/ and benchmarks/ they
use); the wheel installs ``taichi_softras``, ``taichi_softras_reconstruction`` and
``taichi_softras_demos`` and no generic top-level package (``reconstruction``, ``demo_kit``).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TOP_LEVEL = {"taichi_softras", "taichi_softras_reconstruction", "taichi_softras_demos"}
ENV = {**os.environ, "ENABLE_TAICHI_HEADER_PRINT": "0", "PYTHONWARNINGS": "ignore"}


# --- metadata (no build) -----------------------------------------------------------------------


def test_license_is_the_declared_mit_licence():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_citation_cites_both_papers_and_the_software():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == PYPROJECT["project"]["version"] and cff["license"] == "MIT"
    papers = {ref["title"]: ref for ref in cff["references"]}
    softras = papers["Soft Rasterizer: A Differentiable Renderer for Image-based 3D Reasoning"]
    implicit = papers["Learning to Infer Implicit Surfaces without 3D Supervision"]
    assert [a["family-names"] for a in softras["authors"]] == ["Liu", "Li", "Chen", "Li"]
    assert [a["family-names"] for a in implicit["authors"]] == ["Liu", "Saito", "Chen", "Li"]
    assert softras["year"] == implicit["year"] == 2019
    assert "ICCV" in softras["collection-title"] and "NeurIPS" in implicit["collection-title"]


def test_entry_point_is_declared_and_importable():
    target = PYPROJECT["project"]["scripts"]["taichi-softras"]
    module, func = target.split(":")
    assert module == "taichi_softras.commands"
    import importlib

    assert callable(getattr(importlib.import_module(module), func))


def test_setup_installs_no_generic_top_level_package(monkeypatch):
    """setup.py's package list, read by running it with ``setup`` captured."""
    import setuptools

    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(ROOT)
    exec(compile((ROOT / "setup.py").read_text(), "setup.py", "exec"), {"__name__": "__main__"})
    top = {p.split(".")[0] for p in captured["packages"]}
    assert top == TOP_LEVEL
    assert captured["package_dir"] == {"taichi_softras_reconstruction": "reconstruction", "taichi_softras_demos": "demos"}
    # every sub-package of the library is listed
    subpackages = {".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "taichi_softras").rglob("__init__.py")}
    assert subpackages <= set(captured["packages"])
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["taichi_softras"]
    assert (ROOT / "taichi_softras" / "py.typed").is_file()


# --- the built sdist and wheel -----------------------------------------------------------------


def _tracked_files() -> list[str] | None:
    """The checkout's tracked files (git ls-files), or None outside a git checkout (an unpacked sdist)."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        return None
    return [f for f in proc.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


def _hook(source: pathlib.Path, hook: str, dist: pathlib.Path) -> pathlib.Path:
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(dist)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dist / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """sdist from a copy of the tracked tree, wheel from the unpacked sdist (what pip does)."""
    tmp = tmp_path_factory.mktemp("build")
    tracked = _tracked_files()
    source = tmp / "source"
    if tracked is None:
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".hypothesis"))
    else:
        for f in tracked:
            (source / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, source / f)
    sdist = _hook(source, "build_sdist", tmp / "dist")
    with tarfile.open(sdist) as tar:
        members = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = _hook(unpacked, "build_wheel", tmp / "dist")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        z.extractall(tmp / "site")
    return {"sdist": set(members), "tracked": tracked, "wheel": names, "entry_points": entry_points, "site": tmp / "site"}


def test_sdist_is_the_tracked_tree(built):
    if built["tracked"] is None:
        pytest.skip("not a git checkout: nothing to compare the sdist with")
    generated = {n for n in built["sdist"] if n in ("PKG-INFO", "setup.cfg") or n.startswith("taichi_softras.egg-info/")}
    assert built["sdist"] - generated == set(built["tracked"])


def test_sdist_ships_what_its_tests_use(built):
    for needed in ("tests/test_demos.py", "demos/render.py", "demos/demo_kit/cli.py", "reconstruction/train.py",
                   "benchmarks/common.py", "tests/conftest.py", "LICENSE", "CITATION.cff", "setup.py", "MANIFEST.in"):
        assert needed in built["sdist"], needed
    assert not any("__pycache__" in n for n in built["sdist"])


def test_wheel_contents(built):
    names = built["wheel"]
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == TOP_LEVEL  # no top-level reconstruction/, demo_kit/, tests/, benchmarks/
    assert "taichi_softras/py.typed" in names
    assert "taichi_softras/data/spot/spot_triangulated.obj" in names
    assert "taichi_softras_reconstruction/train.py" in names and "taichi_softras_demos/demo_kit/cli.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "taichi-softras = taichi_softras.commands:main" in built["entry_points"]


@pytest.mark.slow  # installs the wheel into a fresh site folder; its contents are checked by default
def test_installed_wheel_runs_the_demos_and_tools(built, tmp_path):
    """From the unpacked wheel (not a checkout): the installed names import and the entry point
    finds the installed demos and reconstruction tools."""
    env = {**ENV, "PYTHONPATH": str(built["site"])}

    def run(*argv):
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)

    proc = run("-c", "import taichi_softras, taichi_softras_reconstruction.config as c; print(taichi_softras.__file__); print(c.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(built["site"])) for line in proc.stdout.split()), proc.stdout
    proc = run("-m", "taichi_softras.commands", "demo", "pose_nonrigid", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: pose_nonrigid"), proc.stderr
    proc = run("-m", "taichi_softras.commands", "reconstruction", "predict", "--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
    proc = run("-m", "taichi_softras.commands", "demo", "pose_nonrigid", "--bones", "0", "--headless")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("pose_nonrigid: error: argument --bones")


# --- the taichi-softras command ------------------------------------------------------------------


def test_command_help_lists_every_command(capsys):
    from taichi_softras import commands

    assert commands.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: taichi-softras {render,demo,reconstruction}")
    for name in (*commands.COMMANDS, *commands.DEMOS, *commands.TOOLS):
        assert name in text


@pytest.mark.parametrize("argv, expected", [
    ([], "the following arguments are required: COMMAND"),
    (["paint"], "argument COMMAND: invalid choice: 'paint'"),
    (["demo"], "demo: the following arguments are required: NAME"),
    (["demo", "gradient"], "demo: argument NAME: invalid choice: 'gradient'"),
    (["reconstruction", "fit"], "reconstruction: argument NAME: invalid choice: 'fit'"),
])
def test_command_mistakes_are_one_line_and_exit_2(argv, expected, capsys):
    from taichi_softras import commands

    assert commands.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("taichi-softras: error: ") and expected in err[0], err


def test_command_render_is_python_m_taichi_softras(tmp_path, capsys):
    from taichi_softras import commands

    assert commands.main(["render", "--image-size", "0"]) == 2
    assert capsys.readouterr().err.startswith("taichi-softras render: error: argument --image-size")
    out = tmp_path / "cow.png"
    assert commands.main(["render", "--image-size", "16", "--out", str(out)]) == 0
    assert out.is_file() and capsys.readouterr().out.startswith(f"wrote {out} (16x16 RGBA")


def test_command_demo_runs_the_checkouts_script(capsys, tmp_path):
    from taichi_softras import commands

    assert commands.demos_dir() == ROOT / "demos"
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["demo", "render", "--headless", "--out", str(tmp_path), "--sigma", "-1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "render: error: argument --sigma: expected a positive number, got '-1'"
