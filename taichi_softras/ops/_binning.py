"""Run the binning kernels (:mod:`taichi_softras.kernels.binning`) on pooled fields."""

from __future__ import annotations

from typing import NamedTuple

from ._buffers import FieldPool, check_budget


class Bins(NamedTuple):
    """Per-cell item lists: cell c lists ``lst[off[c]:off[c + 1]]``; ``cell[q]`` is entry q's cell."""

    off: object
    lst: object
    cell: object
    n_pairs: int


def count_field(pool: FieldPool, n_items: int):
    """The field ``bin_items`` reads per-item cell counts from when its caller wrote them itself."""
    import taichi as ti

    return pool.get("bin_count", ti.i32, max(n_items, 1))


def bin_items(pool: FieldPool, box, n_items: int, per_batch: int, grid: tuple[int, int, int], n_batches: int,
              serial: bool, what: str, counted: bool = False) -> Bins:
    """Bin ``n_items`` items with integer cell boxes ``box (n_items, 6)`` into ``n_batches`` grids of
    ``grid = (gx, gy, gz)`` cells. ``serial`` (the CPU) fills lists in item order; otherwise they are
    filled atomically and sorted. ``counted``: the caller already wrote each item's cell count into
    :func:`count_field` (the raster setup does, saving a pass). ``what`` names the inputs that set the pair count, for the budget
    error (e.g. ``"sigma_val and image_size"``)."""
    import taichi as ti

    from ..kernels import binning as K

    gx, gy, gz = grid
    cells = gx * gy * gz
    n_cells = n_batches * cells
    i32 = ti.i32
    n_items = max(n_items, 0)
    part = pool.get("bin_part", i32, max(n_items, n_cells) // K.SCAN_BLOCK + 1)
    cnt = count_field(pool, n_items)
    ioff = pool.get("bin_item_off", i32, n_items + 1)
    if n_items and not counted:
        K.count(box, n_items, cnt)
    K.exclusive_scan(cnt, ioff, part, n_items, n_items // K.SCAN_BLOCK + 1)
    n_pairs = int(ioff[n_items])
    check_budget({what: (n_pairs * 16, n_pairs)}, "binning")
    key = pool.get("bin_key", i32, max(n_pairs, 1))
    item = pool.get("bin_item", i32, max(n_pairs, 1))
    if n_pairs:
        K.emit(box=box, ioff=ioff, n=n_items, per_batch=per_batch, gx=gx, gy=gy, cells=cells, key=key, item=item)
    ccnt = pool.get("bin_cell_count", i32, max(n_cells, 1))
    K.histogram(key, n_pairs, ccnt, n_cells)
    off = pool.get("bin_cell_off", i32, n_cells + 1)
    K.exclusive_scan(ccnt, off, part, n_cells, n_cells // K.SCAN_BLOCK + 1)
    lst = pool.get("bin_list", i32, max(n_pairs, 1))
    cell = pool.get("bin_cell", i32, max(n_pairs, 1))
    if n_pairs:
        fill = pool.get("bin_fill", i32, max(n_cells, 1))
        K.scatter(key=key, item=item, n_pairs=n_pairs, off=off, fill=fill, lst=lst, cell=cell, serial=serial)
        if not serial:
            K.sort_lists(off, lst, n_cells)
    return Bins(off, lst, cell, n_pairs)
