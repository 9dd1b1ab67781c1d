"""The generic binning kernels (kernels/binning.py) against a plain-Python statement of the lists."""

import numpy as np
import pytest

from taichi_softras.ops._binning import bin_items
from taichi_softras.ops._buffers import FieldPool


def _expected(boxes, per_batch, grid, n_batches):
    gx, gy, gz = grid
    lists = [[] for _ in range(n_batches * gx * gy * gz)]
    for i, (x0, x1, y0, y1, z0, z1) in enumerate(boxes):
        b = i // per_batch
        for z in range(z0, z1 + 1):
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    lists[b * gx * gy * gz + (z * gy + y) * gx + x].append(i - b * per_batch)
    return lists


def _random_boxes(rng, n, grid):
    boxes = []
    for _ in range(n):
        box = []
        for g in grid:
            a, b = sorted(rng.integers(0, g, 2).tolist())
            box += [a, b]
        if rng.random() < 0.15:  # empty boxes (culled items)
            box[0], box[1] = 1, 0
        boxes.append(box)
    return np.array(boxes, dtype=np.int32).reshape(n, 6)


@pytest.mark.backend
@pytest.mark.parametrize("serial", [True, False])
@pytest.mark.parametrize("seed, n_batches, per_batch, grid", [(0, 1, 40, (5, 4, 1)), (1, 3, 25, (3, 3, 3)), (2, 2, 300, (8, 8, 1))])
def test_lists_match_a_plain_statement(seed, n_batches, per_batch, grid, serial):
    """Every (cell, item) pair once, lists in item order, cell[q] right; the non-serial (GPU) path's
    atomic scatter + sort gives the same lists. Boxes span many cells (the case the SPIR-V atomic
    defect broke) and many items share cells."""
    import taichi as ti

    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, n_batches * per_batch, grid)
    pool = FieldPool()
    box = pool.get("box", ti.i32, len(boxes), width=6)
    box.from_numpy(np.pad(boxes, ((0, box.shape[0] - len(boxes)), (0, 0))))
    bins = bin_items(pool, box, len(boxes), per_batch, grid, n_batches, serial, "test boxes")
    want = _expected(boxes, per_batch, grid, n_batches)
    off = bins.off.to_numpy()[: len(want) + 1]
    lst, cell = bins.lst.to_numpy(), bins.cell.to_numpy()
    assert bins.n_pairs == sum(len(w) for w in want) > 0
    for c, items in enumerate(want):
        assert lst[off[c] : off[c + 1]].tolist() == items
        assert (cell[off[c] : off[c + 1]] == c).all()


@pytest.mark.backend
def test_no_items_gives_empty_lists():
    import taichi as ti

    pool = FieldPool()
    box = pool.get("box", ti.i32, 1, width=6)
    bins = bin_items(pool, box, 0, 1, (4, 4, 1), 2, True, "test boxes")
    assert bins.n_pairs == 0
    assert (bins.off.to_numpy()[:33] == 0).all()
