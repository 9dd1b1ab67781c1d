"""Grow-only pools of flat Taichi fields, shared by the ops, and the allocation budget.

Kernels take fields as ``ti.template()`` arguments, so each distinct field compiles its own kernel
variant. Capacities therefore grow in powers of two and are reused across calls: a call with a shape
seen before (or smaller) never allocates or recompiles; a larger one reallocates that field once
(capacities double, so all allocations together stay under twice the live size).

Pools belong to one Taichi runtime: every pool is emptied when :mod:`taichi_softras.runtime` adopts a
new one (after ``ti.reset()``, a new ``ti.init()`` or a fork), and refills on the next call.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

from .. import runtime

_MIN_CAPACITY = 1024
#: Environment variable raising (or lowering) the per-call allocation budget, in bytes.
BUDGET_ENV = "TAICHI_SOFTRAS_MAX_BYTES"
_DEFAULT_BUDGET = 4 << 30
#: Kernels index flat buffers with 32-bit integers.
INDEX_LIMIT = 2**31 - 1


def budget_bytes() -> int:
    """The most bytes one call may ask the pools for (``TAICHI_SOFTRAS_MAX_BYTES``, default 4 GiB)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return _DEFAULT_BUDGET
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{BUDGET_ENV} must be a number of bytes, got {raw!r}") from None


def check_budget(needs: dict[str, tuple[int, int]], what: str) -> None:
    """Refuse a call before anything is allocated.

    ``needs`` maps a description of the argument responsible (e.g. ``"image_size=(H, W) x batch"``) to
    ``(bytes, largest flat index)`` of the buffers it makes ``what`` allocate. Raises ValueError naming
    the biggest contributor when the total exceeds :func:`budget_bytes` or an index overflows int32.
    """
    for arg, (_, index) in needs.items():
        if index > INDEX_LIMIT:
            raise ValueError(
                f"{arg} makes {what} index {index:,} buffer elements, beyond the 32-bit limit of the kernels "
                f"({INDEX_LIMIT:,}); reduce it (or split the batch)"
            )
    total = sum(b for b, _ in needs.values())
    limit = budget_bytes()
    if total > limit:
        arg, (worst, _) = max(needs.items(), key=lambda kv: kv[1][0])
        raise ValueError(
            f"{what} would need {_fmt(total)} of buffers ({_fmt(worst)} for {arg}), above the budget of {_fmt(limit)}; "
            f"reduce {arg.split('=')[0]} or raise the budget with {BUDGET_ENV}=<bytes>"
        )


def _fmt(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def _capacity(n: int) -> int:
    cap = _MIN_CAPACITY
    while cap < n:
        cap *= 2
    return cap


@dataclass
class _Entry:
    field: object
    capacity: int
    tree: object


_pools: "weakref.WeakSet[FieldPool]" = weakref.WeakSet()


def _drop_all() -> None:
    for pool in list(_pools):
        pool.clear()


runtime.on_reset(_drop_all)


class FieldPool:
    """Named flat fields ``(capacity,)`` or ``(capacity, width)``, optionally with ``.grad``."""

    def __init__(self) -> None:
        self._entries: dict[tuple, _Entry] = {}
        #: Number of (re)allocations so far; tests use it to check that seen shapes reuse buffers.
        self.allocations = 0
        self._retired_bytes = 0  # outgrown fields, kept alive (see get)
        self._retired: list = []
        _pools.add(self)

    def clear(self) -> None:
        """Forget every field (their runtime is gone); the next ``get`` allocates afresh."""
        self._entries.clear()
        self._retired.clear()
        self._retired_bytes = 0

    def get(self, name: str, dtype, n: int, width: int = 1, grad: bool = False):
        """A field holding at least ``n`` rows (of ``width`` values), reallocated only to grow."""
        key = (name, dtype, width, grad)
        entry = self._entries.get(key)
        if entry is None or entry.capacity < n:
            import taichi as ti
            from taichi.lang import impl

            cap = _capacity(n)
            fb = ti.FieldsBuilder()
            try:
                field = ti.field(dtype, needs_grad=grad)
                shape_axes = ti.ij if width > 1 else ti.i
                shape = (cap, width) if width > 1 else cap
                fb.dense(shape_axes, shape).place(field)
                if grad:
                    fb.dense(shape_axes, shape).place(field.grad)
                tree = fb.finalize()
            except Exception:
                # An unfinalized builder would make every later kernel launch fail.
                impl.get_runtime().unfinalized_fields_builder.pop(fb, None)
                raise
            # The outgrown field's SNode tree is kept, not destroyed: destroying any tree makes Taichi
            # drop every compiled kernel (all shapes, both engines would recompile). Capacities
            # double, so the kept trees total less than the live ones: memory stays bounded (< 2x).
            if entry is not None:
                self._retired_bytes += self._bytes(key, entry.capacity)
                self._retired.append(entry)
            entry = _Entry(field, cap, tree)
            self._entries[key] = entry
            self.allocations += 1
        return entry.field

    @staticmethod
    def _bytes(key, capacity: int) -> int:
        _, dtype, width, grad = key
        import taichi as ti

        size = 8 if dtype in (ti.f64, ti.i64) else 4
        return capacity * width * size * (2 if grad else 1)

    def nbytes(self) -> int:
        """Bytes held by the pool's fields (grads and outgrown fields included)."""
        return self._retired_bytes + sum(self._bytes(k, e.capacity) for k, e in self._entries.items())
