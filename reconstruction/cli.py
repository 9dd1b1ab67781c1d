"""The reconstruction command lines' shared plumbing: parser, one-line errors, ``--debug``.

Each CLI (``train``, ``evaluate``, ``predict``, ``make_dataset``, ``recipe``) builds a
:class:`Parser` and runs its work through :func:`run`. User mistakes — bad arguments, missing or
malformed files and run directories, arguments out of range — end as one ``<prog>: error: ...``
line on stderr and exit status 2, never a traceback; ``--debug`` shows the traceback instead.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .checkpoint import CorruptCheckpointError


class UserError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


#: Exceptions that mean "the user asked for something impossible" (they name the argument or file).
USER_ERRORS = (UserError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, CorruptCheckpointError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends every option's default to its help."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UserError` (one line) instead of usage + exit."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of user errors too")

    def error(self, message: str) -> None:  # argparse would print the usage and the message
        raise UserError(message)


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def run(prog: str, body: Callable[[Sequence[str]], object], argv: Sequence[str] | None = None):
    """Call ``body(argv)``; user errors become one line on stderr and exit status 2; Ctrl-C 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return body(argv)
    except USER_ERRORS as exc:
        if "--debug" in argv:
            raise
        text = str(exc).strip().splitlines()
        print(f"{prog}: error: {text[0] if text else type(exc).__name__}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
