"""What every command line of the project shares: a parser whose mistakes are one line, the argparse
number types, ``--debug`` and the one-line ``<prog>: error: ...`` exit.

Used by ``python -m taichi_softras`` (``__main__.py``), ``taichi-softras`` (``commands.py``), the demos
(``demos/demo_kit/cli.py``) and the reconstruction tools (``reconstruction/cli.py``). User mistakes
(bad arguments, missing or malformed files) end as one ``<prog>: error: ...`` line on stderr and
exit status 2, never a traceback; ``--debug`` shows the traceback instead; Ctrl-C ends with
``<prog>: interrupted`` and status 130. Anything else is a bug and keeps its traceback. No torch
or Taichi here.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Sequence

DEBUG_HELP = "show the traceback of user errors too"


class UserError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends every option's default to its help."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UserError` (one line) instead of usage + exit.
    ``debug=True`` adds ``--debug`` first (:func:`add_debug` adds it where the caller wants it)."""

    def __init__(self, *, debug: bool = False, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)
        if debug:
            add_debug(self)

    def error(self, message: str) -> None:  # argparse would print the usage and the message
        raise UserError(message)


def add_debug(parser: argparse.ArgumentParser) -> None:
    """The ``--debug`` option :func:`run` looks for."""
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)


def number(kind: type, what: str, ok: Callable[[float], bool] = lambda value: True):
    """argparse type: a ``kind`` (int or float; a float must be finite) for which ``ok`` holds;
    else ``expected <what>, got '<text>'``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not ((not isinstance(value, float) or math.isfinite(value)) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__}_type"
    return parse


positive_float = number(float, "a positive number", lambda v: v > 0)
finite_float = number(float, "a finite number")
positive_int = number(int, "a positive integer", lambda v: v > 0)
count = number(int, "an integer >= 0", lambda v: v >= 0)


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (non-numbers get :data:`finite_float`'s message)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def run(prog: str, body: Callable[[Sequence[str]], object], argv: Sequence[str] | None = None, *,
        errors: tuple = (UserError,), debug: bool = True, exit: bool = True):
    """``body(argv)`` (default ``sys.argv[1:]``) and what it returns. One of ``errors`` becomes one
    line ``<prog>: error: ...`` on stderr (its message's first line) and status 2, Ctrl-C status 130:
    ``sys.exit`` with it when ``exit``, else returned. ``debug``: ``--debug`` in argv re-raises."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return body(argv)
    except errors as exc:
        if debug and "--debug" in argv:
            raise
        text = str(exc).strip().splitlines()
        print(f"{prog}: error: {text[0] if text else type(exc).__name__}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        status = 130
    if exit:
        sys.exit(status)
    return status
