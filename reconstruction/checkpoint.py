"""Atomic training checkpoints: model + optimizer + step + RNG state + loss history.

Written to a temporary file in the same directory, fsync'ed, then renamed over the old one (and the
directory fsync'ed), so a crash never leaves a half-written checkpoint. Loaded with
``torch.load(weights_only=True)``; an unreadable file raises :class:`CorruptCheckpointError`.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import torch

FILENAME = "checkpoint.pt"


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read back."""


def save_checkpoint(path: str | pathlib.Path, state: dict) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts) to ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | pathlib.Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (weights_only, on the CPU)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbled files
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt or unreadable: {exc}") from exc
    missing = {"model", "optimizer", "step", "rng"} - set(state) if isinstance(state, dict) else {"(a dict)"}
    if missing:
        raise CorruptCheckpointError(f"checkpoint {path} lacks {sorted(missing)}")
    return state
