"""taichi-softras: the renderer's command line, the demos and the reconstruction tools in one command.

    taichi-softras render [OPTIONS]              one PNG of a mesh (= python -m taichi_softras)
    taichi-softras demo NAME [OPTIONS]           a demo (= python demos/NAME.py)
    taichi-softras reconstruction TOOL [OPTIONS] make_dataset, train, evaluate, predict, recipe
                                                 (= python -m reconstruction.TOOL from a checkout)

``taichi-softras COMMAND [NAME] --help`` describes the command's own options. The demos and the
reconstruction tools run from the source checkout this package was imported from, else from the
installed packages ``taichi_softras_demos`` and ``taichi_softras_reconstruction`` (the names the
repository's ``demos/`` and ``reconstruction/`` folders install under). Mistakes end with one
``error:`` line and exit status 2.
"""

from __future__ import annotations

import importlib.util
import pathlib
import runpy
import sys
from typing import Sequence

from .cli_kit import UserError, run

PROG = "taichi-softras"
DEMOS = ("render", "gradients", "deform", "pose_rigid", "pose_nonrigid", "implicit_fit")
TOOLS = ("make_dataset", "train", "evaluate", "predict", "recipe")
COMMANDS = {
    "render": "render a mesh to an RGBA PNG (python -m taichi_softras)",
    "demo": "run a demo: " + ", ".join(DEMOS),
    "reconstruction": "single-view reconstruction: " + ", ".join(TOOLS),
}


def _checkout() -> pathlib.Path | None:
    """The source checkout this package was imported from (the folder holding pyproject.toml,
    demos/ and reconstruction/ beside taichi_softras/), or None for an installed copy."""
    root = pathlib.Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "demos" / "demo_kit").is_dir() and (root / "reconstruction").is_dir():
        return root
    return None


def demos_dir() -> pathlib.Path:
    """The folder of the demo scripts: the checkout's ``demos/``, else the installed ``taichi_softras_demos``."""
    root = _checkout()
    if root is not None:
        return root / "demos"
    spec = importlib.util.find_spec("taichi_softras_demos")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("demo: the demos are not installed here (package taichi_softras_demos not found)")
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def reconstruction_package() -> str:
    """The importable name of the reconstruction package: the checkout's ``reconstruction``, else
    the installed ``taichi_softras_reconstruction``."""
    root = _checkout()
    if root is not None:
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return "reconstruction"
    if importlib.util.find_spec("taichi_softras_reconstruction") is None:
        raise UserError("reconstruction: not installed here (package taichi_softras_reconstruction not found)")
    return "taichi_softras_reconstruction"


def usage() -> str:
    lines = [f"usage: {PROG} {{{','.join(COMMANDS)}}} ...", "", __doc__.strip().splitlines()[0], "", "commands:"]
    lines += [f"  {name:<16}{text}" for name, text in COMMANDS.items()]
    lines += ["", "options:", "  -h, --help      show this message and exit", "  --version       show the version and exit",
              "", f"'{PROG} COMMAND [NAME] --help' describes each command's options."]
    return "\n".join(lines)


def _pick(kind: str, name: str | None, choices: Sequence[str]) -> str:
    if name is None:
        raise UserError(f"{kind}: the following arguments are required: NAME (choose from {', '.join(choices)})")
    if name not in choices:
        raise UserError(f"{kind}: argument NAME: invalid choice: {name!r} (choose from {', '.join(choices)})")
    return name


def _run_script(path: pathlib.Path, argv: Sequence[str]) -> int:
    """Run a demo script as ``python path argv...`` would (its folder first on sys.path)."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.parent))
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return 0


def _run_module(module: str, argv: Sequence[str]) -> int:
    """Run ``module`` as ``python -m module argv...`` would."""
    saved_argv = sys.argv
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``); returns the exit status of what it ran (the
    demos and tools exit with their own status through ``SystemExit``)."""
    return run(PROG, _dispatch, argv, debug=False, exit=False)


def _dispatch(argv: Sequence[str]) -> int:
    if not argv:
        raise UserError(f"the following arguments are required: COMMAND (choose from {', '.join(COMMANDS)})")
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help"):
        print(usage())
        return 0
    if command == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"{PROG} {version('taichi_softras')}")
        except PackageNotFoundError:
            print(f"{PROG} (not installed: running from {pathlib.Path(__file__).parent})")
        return 0
    if command not in COMMANDS:
        raise UserError(f"argument COMMAND: invalid choice: {command!r} (choose from {', '.join(COMMANDS)})")
    if command == "render":
        from .__main__ import main as render_main

        return render_main(rest, prog=f"{PROG} render")
    name = rest[0] if rest else None
    if command == "demo":
        if name in ("-h", "--help"):
            print(f"usage: {PROG} demo NAME [OPTIONS]\n\nNAME: one of {', '.join(DEMOS)}; "
                  f"'{PROG} demo NAME --help' describes its options.")
            return 0
        script = demos_dir() / f"{_pick('demo', name, DEMOS)}.py"
        return _run_script(script, rest[1:])
    if name in ("-h", "--help"):
        print(f"usage: {PROG} reconstruction TOOL [OPTIONS]\n\nTOOL: one of {', '.join(TOOLS)}; "
              f"'{PROG} reconstruction TOOL --help' describes its options.")
        return 0
    tool = _pick("reconstruction", name, TOOLS)
    return _run_module(f"{reconstruction_package()}.{tool}", rest[1:])


if __name__ == "__main__":
    sys.exit(main())
