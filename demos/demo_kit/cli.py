"""The demos' command line: options, one-line errors, the progress bar and the one-line result.

A demo builds its parser with :func:`make_parser`, does its work in ``main(args)`` and is started
with :func:`run`. User mistakes (bad arguments, unreadable or malformed input files, an unwritable
``--out``) end as one ``<demo>: error: ...`` line on stderr and exit status 2, never a traceback;
``--debug`` shows the traceback instead. Anything else is a bug and keeps its traceback. The
parser, the argument types and the one-line exit are the library's (:mod:`taichi_softras.cli_kit`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Callable, Iterable, Sequence

from taichi_softras import cli_kit
from taichi_softras.cli_kit import UserError, count, finite_float, nonnegative_float, positive_float, positive_int  # noqa: F401

OUT_ROOT = pathlib.Path("out")
UIS = ("ggui", "gui")


#: A user-facing error: printed as one line, exit status 2 (the library's, under the demos' name).
DemoError = UserError


def make_parser(name: str, description: str, image_size: int, sigma: float, gamma: float,
                front_ends: Sequence[str] = ("gui",)) -> cli_kit.Parser:
    """The options every demo has; ``image_size``, ``sigma``, ``gamma`` are the demo's defaults.

    ``front_ends``: the window kinds the demo offers; with more than one, ``--ui`` chooses
    (default: GGUI where Vulkan works, else ``ti.GUI``).
    """
    p = cli_kit.Parser(prog=name, description=description)
    p.add_argument("--headless", action="store_true", help="no window: write PNGs/GIF/plots to --out")
    if len(front_ends) > 1:
        p.add_argument("--ui", choices=front_ends, default=None,
                       help="window: ggui (ti.ui: ImGui widgets, 3D view; needs Vulkan) or gui (ti.GUI); "
                            "None picks ggui when Vulkan works here, else gui")
    p.add_argument("--out", type=pathlib.Path, default=OUT_ROOT / name, help="output folder")
    p.add_argument("--image-size", type=positive_int, default=image_size, help="rendered image side, pixels")
    p.add_argument("--sigma", type=positive_float, default=sigma, help="SoftRas sigma: edge blur, squared NDC units")
    p.add_argument("--gamma", type=positive_float, default=gamma, help="SoftRas gamma: depth softness of the colour blend")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--frames", type=count, default=0, help="window: close after this many frames (0: when it is closed)")
    p.add_argument("--screenshot", type=pathlib.Path, default=None, help="window: save the last frame to this PNG")
    cli_kit.add_debug(p)
    return p


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and call ``main``; user errors become one line on stderr and exit status 2."""
    import numpy as np
    import torch

    def body(argv: Sequence[str]) -> None:
        args = parser.parse_args(argv)
        out_dir(args)  # fail before the work, not after it
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        main(args)

    cli_kit.run(parser.prog, body, argv, errors=(DemoError, OSError))


def front_end(args: argparse.Namespace) -> str:
    """'headless', 'gui' (ti.GUI) or 'ggui' (ti.ui) for this run; falls back to headless without a display."""
    if args.headless:
        return "headless"
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        print(f"no display (DISPLAY unset): running headless, outputs in {args.out}", file=sys.stderr)
        args.headless = True
        return "headless"
    ui = getattr(args, "ui", "gui")
    if ui is None or ui == "ggui":
        from . import ggui

        reason = ggui.unavailable_reason()
        if reason and ui == "ggui":
            raise DemoError(f"argument --ui: ggui needs Vulkan, which does not work here ({reason}); use --ui gui")
        ui = "gui" if reason else "ggui"
    return ui


def out_dir(args: argparse.Namespace) -> pathlib.Path:
    """The output folder, created (DemoError if it cannot be)."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DemoError(f"--out {args.out}: cannot create the folder ({e.strerror or e})") from None
    return args.out


def check_file(path: str | pathlib.Path, option: str) -> pathlib.Path:
    """``path`` as a Path; DemoError naming ``option`` unless it is an existing file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DemoError(f"{option} {path}: no such file")
    return path


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", **kwargs):
    """A tqdm bar on stderr, also when stderr is not a terminal (a log file: then refreshed every
    10 s, and its last state stays on its own line)."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, mininterval=0.1 if tty else 10.0, dynamic_ncols=True,
                leave=not tty, **kwargs)


def finish(args: argparse.Namespace, name: str, summary: dict) -> None:
    """Print the one-line result and write the summary as ``summary.json`` in --out."""
    path = out_dir(args) / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items() if not isinstance(v, (list, dict))]
    print(f"{name}: " + " ".join(parts) + f" (summary: {path})")
