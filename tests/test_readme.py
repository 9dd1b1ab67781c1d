"""Every code block of README.md is checked.

* ```python blocks run, in order, as one session (later blocks use the names earlier ones define),
  in a scratch folder; a few of the results the README states are checked afterwards. By default
  they run in this process (sharing its compiled kernels: seconds instead of a cold Taichi start);
  the ``slow`` variant runs them in a fresh interpreter.
* ```bash blocks: every command names a module, script or console command that exists; every
  ``--flag`` on its line (its comment included) is in that command's ``--help``; repository paths
  exist; outputs (``--out``, ``--screenshot``, the demos' default ``out/``) are ignored by git.
* Links and images to repository files exist.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def code_blocks(language: str) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced block in ``language``."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(README.splitlines(), 1):
        if current is None and line.startswith("```") and line[3:].strip() == language:
            current, start = [], number + 1
        elif current is not None and line.startswith("```"):
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"README: the block from line {start} is not closed"
    return blocks


# --- python blocks -------------------------------------------------------------------------------


def session_script() -> str:
    """The python blocks as one script, each preceded by its README line (for tracebacks)."""
    parts = [f"# --- README.md line {start}\n{text}" for start, text in code_blocks("python")]
    return "\n".join(parts)


def check_session(ns: dict) -> None:
    """A few of the results the README's snippets state."""
    import torch

    assert ns["rgba"].shape == (2, 4, 256, 256)  # the join_meshes block ran last among the renders
    assert ns["num_faces"].tolist() == [1280, 5856]
    assert ns["face_vertices"].grad is not None and ns["textures"].grad.abs().sum() > 0
    out = ns["out"]
    assert out.face_index.dtype == torch.int64 and out.group_masks.shape == (1, 4, 256, 256)
    assert len(ns["mesh"].faces) > 0  # the implicit block's marching-cubes mesh
    assert all(p.grad is not None for p in ns["network"].parameters())


def test_python_blocks_exist():
    assert len(code_blocks("python")) >= 7


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__readme__"}
    for start, text in code_blocks("python"):
        code = compile("\n" * (start - 1) + text, "README.md", "exec")  # tracebacks name README lines
        exec(code, ns)
    check_session(ns)


@pytest.mark.slow
def test_python_blocks_run_in_a_fresh_interpreter(tmp_path):
    script = tmp_path / "readme_session.py"
    script.write_text(session_script() + "\nprint('README session ok')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "ENABLE_TAICHI_HEADER_PRINT": "0"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0 and "README session ok" in proc.stdout, proc.stderr[-4000:]


# --- shell blocks ----------------------------------------------------------------------------------


def shell_commands() -> list[tuple[int, list[str], list[str]]]:
    """(README line, argv, flags named in its comment) of every command in the bash blocks;
    continuation lines joined, ``VAR="..."`` assignments expanded."""
    commands, variables = [], {}
    for start, text in code_blocks("bash"):
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            number, line = start + i, lines[i]
            while line.rstrip().endswith("\\"):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i]
            i += 1
            code, _, comment = line.partition(" #")
            if not code.strip() or code.lstrip().startswith("#"):
                continue
            assignment = re.fullmatch(r"\s*(\w+)=(.*)", code)
            if assignment:
                variables[assignment[1]] = shlex.split(assignment[2])[0]
                continue
            for name, value in variables.items():
                code = code.replace(f"${name}", value)
            commands.append((number, shlex.split(code), re.findall(r"(?<![\w-])--[a-z][\w-]*", comment)))
    return commands


def target(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """('module' | 'script', name, its arguments) of a command line; None for pip and pytest."""
    if argv[0] == "pip":
        return None
    if argv[0] == "pytest":
        return None
    if argv[0] == "python":
        if argv[1] == "-m":
            return "module", argv[2], argv[3:]
        return "script", argv[1], argv[2:]
    if argv[0] == "torchrun":
        m = argv.index("-m")
        return "module", argv[m + 1], argv[m + 2:]
    if argv[0] == "taichi-softras":
        assert "taichi-softras" in PYPROJECT["project"]["scripts"]
        sub, rest = argv[1], argv[2:]
        if sub == "render":
            return "module", "taichi_softras", rest
        if sub == "demo":
            return "script", f"demos/{rest[0]}.py", rest[1:]
        if sub == "reconstruction":
            return "module", f"reconstruction.{rest[0]}", rest[1:]
    raise AssertionError(f"README: unknown command {argv[0]!r} (teach tests/test_readme.py about it)")


def source_file(kind: str, name: str) -> pathlib.Path:
    if kind == "script":
        return ROOT / name
    path = ROOT / name.replace(".", "/")
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


HELP_SCRIPT = r"""
import contextlib, io, json, runpy, sys
targets = json.loads(sys.argv[1])
out = {}
for kind, name, path in targets:
    buf = io.StringIO()
    saved = list(sys.path)
    sys.argv = [path, "--help"]
    if kind == "script":
        sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
    try:
        with contextlib.redirect_stdout(buf):
            if kind == "script":
                runpy.run_path(path, run_name="__main__")
            else:
                runpy.run_module(name, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        sys.path[:] = saved
    out[name] = buf.getvalue()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """``--help`` of every command the README runs with flags (one interpreter for all of them)."""
    wanted = {}
    for number, argv, comment_flags in shell_commands():
        t = target(argv)
        if t is None:
            continue
        kind, name, args = t
        if any(a.startswith("--") for a in args) or comment_flags:
            path = source_file(kind, name)
            assert any(k in path.read_text() for k in ("ArgumentParser", "make_parser", "add_argument")), \
                f"README line {number}: {name} takes no options, but the README gives it some"
            wanted[name] = (kind, name, str(path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "ENABLE_TAICHI_HEADER_PRINT": "0", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", HELP_SCRIPT, json.dumps(list(wanted.values()))], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_shell_commands_exist():
    commands = shell_commands()
    assert len(commands) >= 15
    for number, argv, _ in commands:
        t = target(argv)
        if t is None:
            if argv[0] == "pip":
                extras = re.findall(r"\[(\w+)\]", " ".join(argv))
                assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"]), number
            continue
        kind, name, args = t
        assert source_file(kind, name).is_file(), f"README line {number}: {name} does not exist"


def test_shell_flags_are_in_each_commands_help(helps):
    for number, argv, comment_flags in shell_commands():
        t = target(argv)
        if t is None:
            continue
        kind, name, args = t
        flags = [a.split("=")[0] for a in args if a.startswith("--")] + comment_flags
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps.get(name, "")), \
                f"README line {number}: {name} has no option {flag}"


def test_shell_repository_paths_exist():
    tops = ("demos/", "benchmarks/", "taichi_softras/", "reconstruction/", "docs/", "tests/")
    for number, argv, _ in shell_commands():
        outputs = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--screenshot")}
        for a in argv:
            if a.startswith(tops) and a not in outputs:
                assert (ROOT / a).exists(), f"README line {number}: {a} does not exist"


def test_readme_outputs_are_ignored_by_git():
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    outputs = set()
    for number, argv, _ in shell_commands():
        t = target(argv)
        outputs |= {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--screenshot")}
        if t and t[0] == "script" and t[1].startswith("demos/") and "--out" not in argv:
            outputs.add(f"out/{pathlib.Path(t[1]).stem}/summary.json")  # the demos' default output folder
    outputs.add("build/lib/x.py")
    outputs.add("dist/taichi_softras-0.1.0.tar.gz")
    assert {"spot.png", "results.json"} <= outputs
    proc = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *sorted(outputs)], capture_output=True, text=True)
    ignored = set(proc.stdout.split())
    assert ignored == outputs, f"not in .gitignore: {sorted(outputs - ignored)}"


def test_links_to_repository_files_exist():
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README):
        if "://" in link:
            continue
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
