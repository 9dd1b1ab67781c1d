"""Argument checks shared by the ops and their references: each error names the argument, what was
expected and what was received."""

from __future__ import annotations

import math
from typing import Sequence

import torch


#: Devices whose tensors the package reads (Taichi runs on the CPU or a CUDA GPU).
SUPPORTED_DEVICES = ("cpu", "cuda")


def check_device_type(x: torch.Tensor, name: str) -> None:
    """Reject tensors on devices the package cannot read (meta tensors hold no data, mps, ...)."""
    if x.device.type not in SUPPORTED_DEVICES:
        raise ValueError(f"{name} is on device '{x.device}'; taichi_softras supports tensors on {' or '.join(map(repr, SUPPORTED_DEVICES))}")


def check_tensor(x, name: str, ndim: int | None = None, last: Sequence[int | None] = (), floating: bool = True) -> None:
    """Check that ``x`` is a tensor on a supported device with ``ndim`` dims whose trailing sizes
    match ``last`` (None = any); ``floating``: float32 or float64."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    check_device_type(x, name)
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
    check_device_type(x, name)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_integer(x: torch.Tensor, name: str, allow_bool: bool = False) -> None:
    """``x`` must have an integer (or, with ``allow_bool``, bool) dtype: float indices or labels
    would otherwise be truncated or compared exactly."""
    if x.is_floating_point() or x.is_complex() or (x.dtype == torch.bool and not allow_bool):
        raise TypeError(f"{name} must be {'a bool or integer' if allow_bool else 'an integer'} tensor, got {x.dtype}")


def check_face_indices(faces: torch.Tensor, num_vertices: int, name: str = "faces") -> None:
    """Integer face indices, each in [0, num_vertices)."""
    check_device_type(faces, name)
    check_integer(faces, name)
    if faces.numel():
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= num_vertices:
            raise ValueError(f"{name} must index vertices 0..{num_vertices - 1}, got indices {lo}..{hi}")


def check_choice(value, name: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_number(value, name: str, expected: str = "a finite number") -> float:
    """``value`` (a Python or numpy number or a one-element tensor) as a finite float; errors say
    ``expected``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be {expected}, got a tensor of shape {tuple(value.shape)}")
        check_device_type(value, name)
    try:
        if isinstance(value, (str, bytes)):  # float("1e-4") would parse: a config bug, not a number
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be {expected}, got {v}")
    return v


def check_positive(value, name: str) -> float:
    """``value`` as a finite float > 0."""
    return check_in_range(value, name, 0.0, math.inf, "a finite number > 0")


def check_in_range(value, name: str, lo: float, hi: float, expected: str = "") -> float:
    """``value`` as a finite float in the open interval (lo, hi); ``expected`` describes it."""
    expected = expected or f"a finite number in ({lo:g}, {hi:g})"
    v = check_number(value, name, expected)
    if not lo < v < hi:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return v


def check_color(value, name: str) -> tuple[float, float, float]:
    """An RGB triple of finite numbers (a sequence or a tensor of 3 elements)."""
    try:
        if isinstance(value, str):
            raise TypeError
        parts = list(value.reshape(-1) if isinstance(value, torch.Tensor) else value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of 3 numbers (r, g, b), got {type(value).__name__}") from None
    if len(parts) != 3:
        raise ValueError(f"{name} must be a sequence of 3 numbers (r, g, b), got {value!r}")
    return tuple(check_number(c, f"{name}[{i}]") for i, c in enumerate(parts))


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


def check_vec3(value, name: str):
    """A 3-vector setting: a tuple of 3 floats (constants), or a ``(3,)``/``(B, 3)`` tensor kept
    as given (a numpy array becomes one), e.g. per-batch eyes or colours."""
    if hasattr(value, "__array__") and not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if isinstance(value, torch.Tensor):
        if value.shape[-1:] != (3,) or value.ndim > 2:
            raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(value.shape)}")
        return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be 3 numbers, got {value!r}")
    try:
        value = tuple(float(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be 3 numbers, got {type(value).__name__}") from None
    if len(value) != 3:
        raise ValueError(f"{name} must have 3 components, got {value!r}")
    return value


def batched(value, name: str, like: torch.Tensor, shape: tuple = (3,), finite: bool = True) -> torch.Tensor:
    """``value`` (a sequence, array or tensor) as a ``(B, *shape)`` tensor of ``like``'s dtype and
    device; a single one (``shape``) gets B = 1. ``finite``: reject NaN and inf (checked before the
    copy to ``like``'s device when ``value`` is not a tensor)."""
    if isinstance(value, torch.Tensor):
        check_device_type(value, name)
        t = value.to(dtype=like.dtype, device=like.device)
    else:
        t = torch.as_tensor(value, dtype=like.dtype)
    if t.ndim == len(shape):
        t = t[None]
    if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
        want = ", ".join(map(str, shape))
        raise ValueError(f"{name} must have shape {tuple(shape)} or (B, {want}), got {tuple(t.shape)}")
    if finite and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t.to(like.device)
