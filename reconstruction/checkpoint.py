"""Atomic, checksummed training checkpoints: model + optimizer + step + RNG state + loss history.

Written to a temporary file in the same directory, fsync'ed, then renamed over the old one (and the
directory fsync'ed), so a crash never leaves a half-written checkpoint; temporaries left by a killed
writer (``checkpoint.pt.*.tmp``) are removed at the next save. The file is torch's serialization
followed by a 36-byte footer (``TSCK`` + SHA-256 of the payload), so flipped bytes are detected.
Loaded with ``torch.load(weights_only=True)`` and checked: structure (model, optimizer, step, rng),
``step`` an integer >= 0, every model tensor finite, ``history`` JSON. Any problem raises
:class:`CorruptCheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import tempfile

import torch

FILENAME = "checkpoint.pt"
MAGIC = b"TSCK"
FOOTER = len(MAGIC) + 32


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read back, or holds invalid values."""


def remove_stale_temporaries(path: pathlib.Path) -> list[pathlib.Path]:
    """Delete ``<name>.*.tmp`` left in ``path``'s folder by a writer that was killed; returns them."""
    stale = sorted(path.parent.glob(path.name + ".*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def save_checkpoint(path: str | pathlib.Path, state: dict) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts) to ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.write(MAGIC + hashlib.sha256(payload).digest())
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


def _check(path: pathlib.Path, state) -> None:
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"checkpoint {path} lacks ['(a dict)']")
    missing = {"model", "optimizer", "step", "rng"} - set(state)
    if missing:
        raise CorruptCheckpointError(f"checkpoint {path} lacks {sorted(missing)}")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CorruptCheckpointError(f"checkpoint {path}: step must be an integer >= 0, got {step!r}")
    if not isinstance(state["model"], dict):
        raise CorruptCheckpointError(f"checkpoint {path}: model is not a state dict")
    for name, value in state["model"].items():
        if not isinstance(value, torch.Tensor):
            raise CorruptCheckpointError(f"checkpoint {path}: model entry {name!r} is not a tensor")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CorruptCheckpointError(f"checkpoint {path}: model weights {name!r} contain NaN or inf")
    if "history" in state:
        try:
            history = json.loads(state["history"])
        except (TypeError, ValueError) as exc:
            raise CorruptCheckpointError(f"checkpoint {path}: history is not valid JSON ({exc})") from None
        if not isinstance(history, list):
            raise CorruptCheckpointError(f"checkpoint {path}: history must be a JSON list, got {type(history).__name__}")


def load_checkpoint(path: str | pathlib.Path) -> dict:
    """Read and check a checkpoint written by :func:`save_checkpoint` (weights_only, on the CPU).
    Files without the checksum footer (older runs) are read without the checksum test."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = path.read_bytes()
    if len(data) >= FOOTER and data[-FOOTER:-32] == MAGIC:
        payload = data[:-FOOTER]
        if hashlib.sha256(payload).digest() != data[-32:]:
            raise CorruptCheckpointError(f"checkpoint {path} is corrupt: its SHA-256 checksum does not match")
        data = payload
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbled files
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt or unreadable: {exc}") from exc
    _check(path, state)
    return state
