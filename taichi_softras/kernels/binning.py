"""Binning of items (faces, anchors) into cells (screen tiles, 3D grid cells), Taichi only.

Every item ``i`` has an inclusive integer box ``box[i] = (x0, x1, y0, y1, z0, z1)`` of cells (empty
when x0 > x1) in the grid of its batch element ``b = i // per_batch`` (``gx * gy * gz`` cells; a
cell's index is ``b * cells + (z * gy + y) * gx + x``). The result is one list per cell of the items
touching it, as the CSR pair ``(off, lst)`` — cell c lists ``lst[off[c]:off[c + 1]]`` — plus
``cell[q]``, the cell of list entry q, so that kernels can also loop over all (cell, item) pairs.
Lists hold item indices local to their batch element, in increasing order (so sums over a list run
in the same order on every call: bit-repeatable results).

Passes (``ops/_binning.py`` runs them): ``count`` (cells per item) -> ``exclusive_scan`` ->
``emit`` (the pairs in item order) -> ``histogram`` (items per cell) -> ``exclusive_scan`` ->
``scatter`` (serialized on the CPU, where it keeps item order; atomic on GPUs) -> ``sort_lists``
(GPUs only). Cost: O(items + pairs + cells); ``sort_lists`` is an insertion sort per cell,
O(sum over cells of n_c^2) at worst but ~O(pairs) for the nearly ordered lists a GPU scatter makes.

Backend rule these kernels obey (docs/design.md, "Backends"): no atomic whose address changes
inside a loop with a runtime bound (Taichi's SPIR-V path runs such loops' atomics for at most two
iterations); runtime-bound loops here only load, store and update locals, and atomics sit in
top-level loops.
"""

import taichi as ti

#: Elements per block of :func:`exclusive_scan` (one thread scans a block serially).
SCAN_BLOCK = 1024


@ti.kernel
def count(box: ti.template(), n: ti.i32, cnt: ti.template()):
    """cnt[i] = number of cells in item i's box (0 if empty)."""
    for i in range(n):
        nx = box[i, 1] - box[i, 0] + 1
        ny = box[i, 3] - box[i, 2] + 1
        nz = box[i, 5] - box[i, 4] + 1
        c = 0
        if nx > 0 and ny > 0 and nz > 0:
            c = nx * ny * nz
        cnt[i] = c


@ti.kernel
def exclusive_scan(src: ti.template(), dst: ti.template(), part: ti.template(), n: ti.i32, blocks: ti.i32):
    """dst[i] = src[0] + ... + src[i - 1] for i in [0, n] (dst[n] is the total).

    ``blocks`` = n // SCAN_BLOCK + 1; ``part`` holds that many block sums. Three top-level loops (run
    in order): per-block serial scans in parallel, a serial scan of the block sums, the block offsets
    added."""
    for blk in range(blocks):
        s = 0
        for k in range(SCAN_BLOCK):
            i = blk * SCAN_BLOCK + k
            if i <= n:
                dst[i] = s
                if i < n:
                    s += src[i]
        part[blk] = s
    for _ in range(1):
        s = 0
        for blk in range(blocks):
            v = part[blk]
            part[blk] = s
            s += v
    for i in range(n + 1):
        dst[i] += part[i // SCAN_BLOCK]


@ti.kernel
def emit(
    box: ti.template(), ioff: ti.template(), n: ti.i32, per_batch: ti.i32,
    gx: ti.i32, gy: ti.i32, cells: ti.i32, key: ti.template(), item: ti.template(),
):
    """For each item, its (cell, item) pairs at ioff[i]..ioff[i + 1], cells in x-fastest order."""
    for i in range(n):
        b = i // per_batch
        nx = ti.max(box[i, 1] - box[i, 0] + 1, 1)
        ny = ti.max(box[i, 3] - box[i, 2] + 1, 1)
        start = ioff[i]
        for k in range(ioff[i + 1] - start):
            x = box[i, 0] + k % nx
            y = box[i, 2] + (k // nx) % ny
            z = box[i, 4] + k // (nx * ny)
            key[start + k] = b * cells + (z * gy + y) * gx + x
            item[start + k] = i - b * per_batch


@ti.kernel
def histogram(key: ti.template(), n_pairs: ti.i32, cnt: ti.template(), n_cells: ti.i32):
    """cnt[c] = number of pairs in cell c (zeroed first: top-level loops run in order)."""
    for c in range(n_cells):
        cnt[c] = 0
    for q in range(n_pairs):
        ti.atomic_add(cnt[key[q]], 1)


@ti.kernel
def scatter(
    key: ti.template(), item: ti.template(), n_pairs: ti.i32, off: ti.template(), fill: ti.template(),
    lst: ti.template(), cell: ti.template(), serial: ti.template(),
):
    """Place each pair in its cell's list (``fill``: per-cell cursors, zeroed first). ``serial`` keeps
    the item order."""
    for c in range(fill.shape[0]):
        fill[c] = 0
    ti.loop_config(serialize=serial)
    for q in range(n_pairs):
        c = key[q]
        pos = off[c] + ti.atomic_add(fill[c], 1)
        lst[pos] = item[q]
        cell[pos] = c


@ti.kernel
def sort_lists(off: ti.template(), lst: ti.template(), n_cells: ti.i32):
    """Sort each cell's list in place (insertion sort, one cell per thread)."""
    for c in range(n_cells):
        lo = off[c]
        for j in range(lo + 1, off[c + 1]):
            v = lst[j]
            k = j - 1
            while k >= lo:  # Taichi's `and` does not short-circuit: test the bound first
                if lst[k] <= v:
                    break
                lst[k + 1] = lst[k]
                k -= 1
            lst[k + 1] = v
