"""The reconstruction command lines' shared plumbing: parser, one-line errors, ``--debug``.

Each CLI (``train``, ``evaluate``, ``predict``, ``make_dataset``, ``recipe``) builds a
:class:`Parser` and runs its work through :func:`run`. User mistakes — bad arguments, missing or
malformed files and run directories, arguments out of range — end as one ``<prog>: error: ...``
line on stderr and exit status 2, never a traceback; ``--debug`` shows the traceback instead.
Anything else is a bug and keeps its traceback. The machinery is the library's
(:mod:`taichi_softras.cli_kit`, shared with the demos and ``python -m taichi_softras``).
"""

from __future__ import annotations

from typing import Callable, Sequence

from taichi_softras import cli_kit
from taichi_softras.cli_kit import UserError

from .checkpoint import CorruptCheckpointError

#: Exceptions that mean "the user asked for something impossible" (they name the argument or file).
USER_ERRORS = (UserError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, CorruptCheckpointError)


class Parser(cli_kit.Parser):
    """An ArgumentParser whose errors are :class:`UserError` (one line) instead of usage + exit,
    with ``--debug`` as its first option."""

    def __init__(self, **kwargs):
        super().__init__(debug=True, **kwargs)


def run(prog: str, body: Callable[[Sequence[str]], object], argv: Sequence[str] | None = None):
    """Call ``body(argv)``; user errors become one line on stderr and exit status 2; Ctrl-C 130."""
    return cli_kit.run(prog, body, argv, errors=USER_ERRORS)
