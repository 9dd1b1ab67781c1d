"""Grow-only pools of flat Taichi fields, shared by the ops.

Kernels take fields as ``ti.template()`` arguments, so each distinct field compiles its own kernel
variant. Capacities therefore grow in powers of two and are reused across calls: a call with a shape
seen before (or smaller) never allocates or recompiles; a larger one reallocates that field once,
destroying the old SNode tree so memory does not grow with the number of shapes seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import taichi as ti

_MIN_CAPACITY = 1024


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


class FieldPool:
    """Named flat fields ``(capacity,)`` or ``(capacity, width)``, optionally with ``.grad``."""

    def __init__(self) -> None:
        self._entries: dict[tuple, _Entry] = {}
        #: Number of (re)allocations so far; tests use it to check that seen shapes reuse buffers.
        self.allocations = 0

    def get(self, name: str, dtype, n: int, width: int = 1, grad: bool = False):
        """A field holding at least ``n`` rows (of ``width`` values), reallocated only to grow."""
        key = (name, dtype, width, grad)
        entry = self._entries.get(key)
        if entry is None or entry.capacity < n:
            if entry is not None:
                entry.tree.destroy()
            cap = _capacity(n)
            fb = ti.FieldsBuilder()
            field = ti.field(dtype, needs_grad=grad)
            shape_axes = ti.ij if width > 1 else ti.i
            shape = (cap, width) if width > 1 else cap
            fb.dense(shape_axes, shape).place(field)
            if grad:
                fb.dense(shape_axes, shape).place(field.grad)
            entry = _Entry(field, cap, fb.finalize())
            self._entries[key] = entry
            self.allocations += 1
        return entry.field

    def nbytes(self) -> int:
        """Bytes held by the pool's fields (grads included)."""
        total = 0
        for (_, dtype, width, grad), e in self._entries.items():
            size = 8 if dtype in (ti.f64, ti.i64) else 4
            total += e.capacity * width * size * (2 if grad else 1)
        return total
