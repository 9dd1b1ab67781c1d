"""``python -m taichi_softras``: its help (a description, every option's default), its one-line
result, and its one-line ``error:`` answers (exit status 2, no traceback; ``--debug`` re-raises)."""

import os
import subprocess
import sys

import pytest
from PIL import Image

from taichi_softras.__main__ import build_parser, main


def test_help_describes_every_option_with_its_default():
    parser = build_parser()
    text = parser.format_help()
    options = [a for a in parser._actions if a.dest != "help"]
    assert all(a.help for a in options)
    assert text.split("options:")[1].count("(default:") == len(options)
    assert text.startswith("usage: python -m taichi_softras") and "Render a mesh" in text


def test_writes_the_png_and_says_so(tmp_path, capsys):
    out = tmp_path / "cow.png"
    assert main(["--image-size", "24", "--out", str(out)]) == 0
    assert Image.open(out).size == (24, 24)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out} (24x24 RGBA, spot_triangulated.obj") and "\n" not in line


@pytest.fixture
def bad_obj(tmp_path):
    path = tmp_path / "broken.obj"
    path.write_text("v 0 0 0\nf 1 2 3\n")  # a face indexing missing vertices
    return path


@pytest.mark.parametrize("argv, expected", [
    (["--image-size", "0"], "argument --image-size: expected a positive integer, got '0'"),
    (["--sigma", "nan"], "argument --sigma: expected a positive number"),
    (["--azimuth", "north"], "argument --azimuth: expected a number of degrees"),
    (["--mesh", "MISSING"], "--mesh MISSING: no such file"),
    (["--mesh", "BAD_OBJ"], "broken.obj: "),
    (["--out", "DIR/x.jpg"], "expected a .png file name"),
    (["--out", "DIR/no/such/folder/x.png"], "does not exist"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
])
def test_user_errors_are_one_line_and_exit_2(argv, expected, tmp_path, bad_obj, capsys):
    subst = {"MISSING": str(tmp_path / "missing.obj"), "BAD_OBJ": str(bad_obj)}
    argv = [subst.get(a, a.replace("DIR", str(tmp_path))) for a in argv]
    expected = expected.replace("MISSING", str(tmp_path / "missing.obj"))
    argv = argv if "--out" in argv else [*argv, "--out", str(tmp_path / "x.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m taichi_softras: error: ") and expected in err[0], err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        main(["--mesh", str(tmp_path / "missing.obj"), "--debug"])


def test_module_exits_2_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "taichi_softras", "--image-size", "-3"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "ENABLE_TAICHI_HEADER_PRINT": "0"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["python -m taichi_softras: error: argument --image-size: expected a positive integer, got '-3'"]
