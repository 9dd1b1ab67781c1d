"""Grow-only pools of flat Taichi fields, shared by the ops.

Kernels take fields as ``ti.template()`` arguments, so each distinct field compiles its own kernel
variant. Capacities therefore grow in powers of two and are reused across calls: a call with a shape
seen before (or smaller) never allocates or recompiles; a larger one reallocates that field once
(capacities double, so all allocations together stay under twice the live size).
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
        self._retired_bytes = 0  # outgrown fields, kept alive (see get)

    def get(self, name: str, dtype, n: int, width: int = 1, grad: bool = False):
        """A field holding at least ``n`` rows (of ``width`` values), reallocated only to grow."""
        key = (name, dtype, width, grad)
        entry = self._entries.get(key)
        if entry is None or entry.capacity < n:
            # The outgrown field's SNode tree is kept, not destroyed: destroying any tree makes Taichi
            # drop every compiled kernel (all shapes, both engines would recompile). Capacities
            # double, so the kept trees total less than the live ones: memory stays bounded (< 2x).
            if entry is not None:
                self._retired_bytes += self._bytes(key, entry.capacity)
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

    @staticmethod
    def _bytes(key, capacity: int) -> int:
        _, dtype, width, grad = key
        size = 8 if dtype in (ti.f64, ti.i64) else 4
        return capacity * width * size * (2 if grad else 1)

    def nbytes(self) -> int:
        """Bytes held by the pool's fields (grads and outgrown fields included)."""
        return self._retired_bytes + sum(self._bytes(k, e.capacity) for k, e in self._entries.items())
