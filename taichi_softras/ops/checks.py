"""Argument checks shared by the ops and their references: each error names the argument, what was
expected and what was received."""

from __future__ import annotations

from typing import Sequence

import torch


def check_tensor(x, name: str, ndim: int | None = None, last: Sequence[int | None] = (), floating: bool = True) -> None:
    """Check that ``x`` is a tensor with ``ndim`` dims whose trailing sizes match ``last`` (None = any)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(x.shape)}")
    if last:
        tail = tuple(x.shape[-len(last):])
        if any(want is not None and got != want for got, want in zip(tail, last)):
            want_s = ", ".join("*" if w is None else str(w) for w in last)
            raise ValueError(f"{name} must end in ({want_s}), got shape {tuple(x.shape)}")


def check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_choice(value, name: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def image_hw(image_size) -> tuple[int, int]:
    """``image_size`` (int or (H, W)) -> (H, W), both positive ints."""
    if isinstance(image_size, (int,)) and not isinstance(image_size, bool):
        hw = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in image_size
    ):
        hw = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(f"image_size must be an int or a pair (H, W) of ints, got {image_size!r}")
    if hw[0] <= 0 or hw[1] <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return hw


def check_same_device(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}")
