"""The Taichi runtime as the library uses it: lazy, shared, and safe inside real programs.

Which backend
    ``TAICHI_SOFTRAS_ARCH=cpu|cuda|vulkan|metal`` or :func:`use` (before first use) chooses; otherwise
    the device of the first tensors handed to an op does (CPU tensors -> ``cpu``, CUDA -> ``cuda``).
    ``cpu`` and ``cuda`` share memory with torch (zero-copy); ``vulkan`` and ``metal`` take CPU tensors
    and Taichi copies them to and from the device around each kernel launch.

Coexistence (see the README, "Using it inside a training program")
    * Importing :mod:`taichi_softras` imports no Taichi; the first op does, with Taichi's banner
      suppressed (``ENABLE_TAICHI_HEADER_PRINT`` set by the user wins).
    * If Taichi is already initialized when the library first needs it (the user's own
      ``ti.init``), that runtime is used as it is, never re-initialized; its arch must suit the
      tensors. The user's fields and kernels keep working.
    * A ``ti.reset()`` or a new ``ti.init()`` by anyone is detected at the next call: the library's
      pooled buffers (which died with the old runtime) are dropped and rebuilt, giving the same
      results.
    * In a child made by ``fork`` (DataLoader workers, ``multiprocessing``), the inherited runtime is
      unusable (its worker threads did not survive the fork); the child's first call starts a fresh
      one on the same arch. The parent's runtime object is left alone (never finalized in the child).
    * Calls from several Python threads are serialized by one re-entrant lock, :data:`LOCK`.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import threading
from typing import Callable, Iterator

import torch

ENV = "TAICHI_SOFTRAS_ARCH"
#: Threads of Taichi's CPU backend (unset: one per core), e.g. 1 in each of several training processes.
CPU_THREADS_ENV = "TAICHI_SOFTRAS_CPU_THREADS"
ARCHS = ("cpu", "cuda", "vulkan", "metal")
#: Archs whose kernels read torch tensors in place; the others copy CPU tensors to the device.
ZERO_COPY = {"cpu": "cpu", "cuda": "cuda"}

#: Serializes every use of Taichi by the library (kernel launches, buffer pools, initialization).
LOCK = threading.RLock()

_chosen: str | None = None  # set by use()
_active: str | None = None  # arch of the runtime in use
_tag = object()  # marks the Taichi runtime this process's library state belongs to
_generation = 0  # bumped whenever a new Taichi runtime is adopted
_reset_hooks: list[Callable[[], None]] = []
_f64_checked: dict[int, bool] = {}
_orphans: list = []  # Taichi programs inherited through fork: finalized, never destroyed


def use(arch: str) -> None:
    """Choose the backend (``'cpu' | 'cuda' | 'vulkan' | 'metal'``) before the library's first call.

    Raises ValueError for an unknown name and RuntimeError if Taichi already runs on another arch.
    """
    global _chosen
    arch = _check_arch(arch, "arch")
    with LOCK:
        current = _current_arch()
        if current is not None and current != arch:
            raise RuntimeError(
                f"Taichi already runs on '{current}' in this process; runtime.use('{arch}') must come before "
                f"the first render (or call ti.reset() first)"
            )
        _chosen = arch


def active_arch() -> str | None:
    """The arch name the library runs on ('cpu', 'cuda', 'vulkan', 'metal'), or None before first use
    (and between a ``ti.reset()`` and the next call)."""
    with LOCK:
        return _active if _current_arch() is not None else None


def generation() -> int:
    """A counter that changes whenever the library starts using a new Taichi runtime."""
    return _generation


def on_reset(hook: Callable[[], None]) -> None:
    """Register ``hook()`` to drop state tied to the Taichi runtime (pooled fields); it runs when a
    new runtime is adopted (after ``ti.reset``, a re-``ti.init`` or a fork)."""
    _reset_hooks.append(hook)


def _check_arch(arch, name: str) -> str:
    value = str(arch).strip().lower()
    if value not in ARCHS:
        raise ValueError(f"{name} must be one of {ARCHS}, got {arch!r}")
    return value


def _requested_arch(device: torch.device | None) -> str:
    """The environment wins, then :func:`use`, then the arch the library last ran on (after a reset
    or a fork), then the tensors' device."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return _check_arch(env, ENV)
    if _chosen is not None:
        return _chosen
    if _active is not None:
        return _active
    if device is not None and device.type == "cuda":
        return "cuda"
    return "cpu"


def _taichi():
    # The banner goes to stdout at import; keep it quiet unless the user asked for it.
    os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")
    import taichi as ti

    return ti


def _arch_name(arch) -> str:
    ti = _taichi()
    if arch in (ti.x64, ti.arm64):
        return "cpu"
    for name in ("cuda", "vulkan", "metal"):
        if arch == getattr(ti, name):
            return name
    raise RuntimeError(
        f"Taichi was initialized on arch {arch}, which taichi_softras does not support; use one of {ARCHS}"
    )


def _current_arch() -> str | None:
    """Arch of the live Taichi runtime (ours or the user's), or None if Taichi is not initialized."""
    import sys

    if "taichi" not in sys.modules:
        return None
    from taichi.lang import impl

    if impl.get_runtime().prog is None:
        return None
    return _arch_name(impl.current_cfg().arch)


def _after_fork_in_child() -> None:
    """In a forked child the parent's lock may be held by a thread that did not survive the fork,
    and the inherited Taichi program is unusable (see :func:`_detach_inherited_program`)."""
    global LOCK, _forked
    LOCK = threading.RLock()
    _forked = True


_forked = False
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _detach_inherited_program() -> None:
    """Let a forked child start its own Taichi program.

    The inherited one's worker threads did not survive the fork: launching its kernels or destroying
    it (which joins those threads) would hang. It is finalized — on the CPU that only releases its
    instance slot (Taichi allows one program at a time) — and pinned so it is never destroyed, even
    at interpreter exit. CUDA and Vulkan device state cannot be carried into a forked child: those
    raise, pointing to the 'spawn' start method."""
    global _forked
    _forked = False
    import sys

    if "taichi" not in sys.modules:
        return
    from taichi.lang import impl

    rt = impl.get_runtime()
    if rt.prog is None:
        return
    arch = _arch_name(impl.current_cfg().arch)
    if arch != "cpu":
        raise RuntimeError(
            f"taichi_softras cannot run Taichi's '{arch}' backend in a forked child process (the parent's "
            f"device state does not survive fork); start workers with the 'spawn' method, e.g. "
            f"DataLoader(..., multiprocessing_context='spawn') or multiprocessing.get_context('spawn')"
        )
    prog = rt.prog
    prog.finalize()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(prog))  # never destroyed in this process
    _orphans.append(prog)
    rt.prog = None
    rt.materialized = False


def _init_taichi(arch: str) -> None:
    ti = _taichi()
    if arch == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"the 'cuda' backend was requested ({ENV}=cuda, runtime.use or CUDA inputs) but torch sees no CUDA device")
    target = {"cpu": ti.cpu, "cuda": ti.cuda, "vulkan": ti.vulkan, "metal": ti.metal}[arch]
    extra = {}
    threads = os.environ.get(CPU_THREADS_ENV, "").strip()
    if threads and arch == "cpu":  # Taichi's CPU thread pool (default: one thread per core)
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"{CPU_THREADS_ENV} must be a positive integer, got {threads!r}")
        extra["cpu_max_num_threads"] = int(threads)
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet):  # "[Taichi] Starting on arch=..." is a print
            ti.init(
                **extra,
                arch=target,
                enable_fallback=False,  # a missing backend is an error, not a silent CPU run
                default_fp=ti.f32,
                default_ip=ti.i32,
                # Compiled kernels are cached on disk across processes; =0 measures a cold first call.
                offline_cache=os.environ.get("TAICHI_SOFTRAS_OFFLINE_CACHE", "1") != "0",
                log_level=ti.WARN,
                device_memory_GB=float(os.environ.get("TAICHI_SOFTRAS_DEVICE_MEMORY_GB", "2")),
            )
    except Exception as exc:  # Taichi raises assorted types for a missing driver
        hint = {
            "vulkan": "install a Vulkan driver and loader (e.g. apt-get install -y mesa-vulkan-drivers libvulkan1)",
            "metal": "Metal needs macOS on Apple hardware",
            "cuda": "check the NVIDIA driver",
            "cpu": "",
        }[arch]
        raise RuntimeError(f"Taichi could not start the '{arch}' backend: {exc}. {hint}".strip()) from exc
    if os.environ.get("ENABLE_TAICHI_HEADER_PRINT") not in (None, "0"):
        print(quiet.getvalue(), end="")


def _adopt() -> None:
    """Tag the live runtime as the one our state belongs to, dropping state of any earlier one."""
    global _generation, _active
    from taichi.lang import impl

    rt = impl.get_runtime()
    if getattr(rt, "_taichi_softras_tag", None) is _tag and _active is not None:
        return
    for hook in _reset_hooks:
        hook()
    _f64_checked.clear()
    _generation += 1
    rt._taichi_softras_tag = _tag
    _active = _arch_name(impl.current_cfg().arch)


def ensure_initialized(device: torch.device | str | None = None) -> str:
    """Make sure a usable Taichi runtime exists (ours or the user's) and return its arch name.

    ``device``: the device of the tensors about to be processed; before first use it picks the arch
    (unless :data:`ENV` or :func:`use` did), afterwards it is checked against the arch. Call with
    :data:`LOCK` held or not (it takes it).
    """
    if device is not None:
        device = torch.device(device)
    with LOCK:
        if _forked:
            _detach_inherited_program()
        if _current_arch() is None:  # never initialized or reset by someone
            _init_taichi(_requested_arch(device))
        _adopt()
        arch = _active
    if device is not None:
        check_device(device)
    return arch


def check_device(device: torch.device, name: str = "input") -> None:
    """Raise ValueError if tensors on ``device`` cannot be used with the active arch."""
    if _active is None:
        return
    device = torch.device(device)
    want = ZERO_COPY.get(_active, "cpu")
    if device.type != want:
        how = (
            f"Taichi's '{_active}' backend shares memory with torch's {want} tensors"
            if _active in ZERO_COPY
            else f"Taichi's '{_active}' backend takes CPU tensors (copied to the device around each kernel)"
        )
        raise ValueError(
            f"{name} is on device {device}, but taichi_softras runs Taichi on '{_active}' in this process: {how}. "
            f"Move the tensors with .to('{want}'), or choose the backend before the first call "
            f"({ENV}=... or taichi_softras.runtime.use(...))."
        )


def require_float64(what: str = "float64 inputs", transcendentals: bool = False) -> None:
    """Raise TypeError if the active backend cannot run the float64 kernels ``what`` needs.

    Metal has no float64; Taichi's Vulkan code generator has no 64-bit exp/log
    (``transcendentals``), and a Vulkan device may lack shaderFloat64 altogether (checked once per
    runtime with a tiny kernel)."""
    if _active in ("cpu", "cuda") or _active is None:
        return
    if _active == "metal":
        reason = "Metal has no float64"
    elif transcendentals:
        reason = "Taichi's Vulkan code generator has no 64-bit exp/log"
    else:
        ok = _f64_checked.get(_generation)
        if ok is None:
            ok = _f64_checked[_generation] = _probe_float64()
        if ok:
            return
        reason = "the Vulkan device lacks shaderFloat64"
    raise TypeError(
        f"{what} need 64-bit floats on the '{_active}' backend, which it cannot provide ({reason}); "
        f"pass float32 tensors, or run on the cpu or cuda backend ({ENV}=cpu)"
    )


def _probe_float64() -> bool:
    ti = _taichi()
    try:
        x = ti.field(ti.f64, shape=2)

        @ti.kernel
        def probe():
            for i in range(2):
                x[i] = ti.sqrt(ti.cast(i + 2, ti.f64))

        probe()
        return abs(float(x[0]) - 2.0**0.5) < 1e-12
    except Exception:
        return False


@contextlib.contextmanager
def launch(device: torch.device) -> Iterator[None]:
    """Hold :data:`LOCK` and order torch's and Taichi's work on ``device`` around a block of kernel
    launches: Taichi sees torch's pending CUDA work on entry, torch sees Taichi's on exit (no-op on
    other devices)."""
    with LOCK:
        ensure_initialized(device)
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()
        try:
            yield
        finally:
            if device.type == "cuda":
                _taichi().sync()
