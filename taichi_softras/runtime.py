"""Lazy, idempotent Taichi initialization.

The Taichi arch is chosen once per process, at the first use of a kernel:

* ``TAICHI_SOFTRAS_ARCH=cpu|cuda`` if set, else
* the device of the first tensor handed to an op (CPU tensors -> ``ti.cpu``, CUDA -> ``ti.cuda``).

Importing :mod:`taichi_softras` initializes nothing. Later inputs on another device than the
active arch's raise a clear error (Taichi cannot switch arch inside a process without dropping
every compiled kernel).
"""

from __future__ import annotations

import os
import threading

import torch

_ENV = "TAICHI_SOFTRAS_ARCH"
_ARCHS = ("cpu", "cuda")
_lock = threading.Lock()
_active: str | None = None


def active_arch() -> str | None:
    """The arch name ('cpu' or 'cuda') Taichi was initialized with, or None before first use."""
    return _active


def _requested_arch(device: torch.device | None) -> str:
    env = os.environ.get(_ENV, "").strip().lower()
    if env:
        if env not in _ARCHS:
            raise ValueError(f"{_ENV} must be one of {_ARCHS}, got {env!r}")
        return env
    if device is not None and device.type == "cuda":
        return "cuda"
    return "cpu"


def ensure_initialized(device: torch.device | str | None = None) -> str:
    """Initialize Taichi once (idempotent) and return the active arch name.

    ``device``: the device of the tensors about to be processed; it picks the arch at first use
    and is checked against the active arch afterwards.
    """
    global _active
    if device is not None:
        device = torch.device(device)
    with _lock:
        if _active is None:
            import taichi as ti

            arch = _requested_arch(device)
            if arch == "cuda" and not torch.cuda.is_available():
                raise RuntimeError(f"{_ENV}=cuda (or CUDA inputs) but torch sees no CUDA device")
            ti.init(
                arch=ti.cuda if arch == "cuda" else ti.cpu,
                default_fp=ti.f32,
                default_ip=ti.i32,
                # Compiled kernels are cached on disk across processes; =0 measures a cold first call.
                offline_cache=os.environ.get("TAICHI_SOFTRAS_OFFLINE_CACHE", "1") != "0",
                log_level=ti.WARN,
                device_memory_GB=float(os.environ.get("TAICHI_SOFTRAS_DEVICE_MEMORY_GB", "2")),
            )
            _active = arch
    if device is not None:
        check_device(device)
    return _active


def check_device(device: torch.device, name: str = "input") -> None:
    """Raise ValueError if ``device`` does not match the active Taichi arch."""
    if _active is None:
        return
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    if kind != _active:
        raise ValueError(
            f"{name} is on device {device}, but taichi_softras runs Taichi on '{_active}' in this "
            f"process (fixed at first use; set {_ENV} before the first call to choose). "
            f"Move the tensors with .to('{'cuda' if _active == 'cuda' else 'cpu'}')."
        )


def torch_to_taichi_sync(device: torch.device) -> None:
    """Make Taichi's kernels see torch's pending CUDA work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def taichi_to_torch_sync(device: torch.device) -> None:
    """Make torch see Taichi's finished CUDA work (no-op on CPU)."""
    if device.type == "cuda":
        import taichi as ti

        ti.sync()
