"""Anchor-ray probing kernels (Taichi only): bin anchors into screen tiles, find each ray's arg-max
probe, and gather its value differentiably.

A ray (o, d), |d| = 1, probes anchor (c, r) when t = (c - o).d > 0 and |(c - o) - t d|^2 < r^2; with
boundary-aware labels it must also carry the anchor's label. The ray's value is the max over its
probes (ties: smallest anchor index), or 0 without probes.

Batches are flattened: ray i of batch element b lives at b * n_rays + i, anchor j at
b * n_anchors + j; ``argmax`` holds flat anchor indices (-1 for none).

Cost (B batch elements, R rays, N anchors, T tiles per element, P = sum of tiles covered per anchor):
``count_tiles``/``fill_tiles`` O(P) integer work; ``find_argmax`` O(sum over rays of the anchors in
their tile), i.e. ~ (ray, anchor) hits for pinhole rays, O(R N) for rays without a tile (tile -1);
``gather`` O(B R). Memory: the tile lists, O(P + B T) int32. ``find_argmax`` is forward-only (max
pooling's Taichi autodiff is wrong, DESIGN.md §3); gradients come from ``gather.grad``.
"""

import taichi as ti


@ti.kernel
def count_tiles(tile_box: ti.types.ndarray(), tiles_per_batch: ti.i32, n_anchors: ti.i32, grid_w: ti.i32,
                counts: ti.types.ndarray()):
    """counts[b T + tile] += 1 for every tile in each anchor's inclusive box (tx0, tx1, ty0, ty1)."""
    for a in range(tile_box.shape[0]):
        base = (a // n_anchors) * tiles_per_batch
        for ty in range(tile_box[a, 2], tile_box[a, 3] + 1):
            for tx in range(tile_box[a, 0], tile_box[a, 1] + 1):
                ti.atomic_add(counts[base + ty * grid_w + tx], 1)


@ti.kernel
def fill_tiles(tile_box: ti.types.ndarray(), tiles_per_batch: ti.i32, n_anchors: ti.i32, grid_w: ti.i32,
               offsets: ti.types.ndarray(), cursor: ti.types.ndarray(), lists: ti.types.ndarray()):
    """Write each anchor's flat index into the lists of its tiles (order within a tile is arbitrary)."""
    for a in range(tile_box.shape[0]):
        base = (a // n_anchors) * tiles_per_batch
        for ty in range(tile_box[a, 2], tile_box[a, 3] + 1):
            for tx in range(tile_box[a, 0], tile_box[a, 1] + 1):
                tile = base + ty * grid_w + tx
                lists[offsets[tile] + ti.atomic_add(cursor[tile], 1)] = a


@ti.kernel
def find_argmax(origins: ti.types.ndarray(), directions: ti.types.ndarray(), anchors: ti.types.ndarray(),
                radius: ti.types.ndarray(), values: ti.types.ndarray(), ray_tile: ti.types.ndarray(),
                offsets: ti.types.ndarray(), lists: ti.types.ndarray(), ray_label: ti.types.ndarray(),
                anchor_label: ti.types.ndarray(), use_labels: ti.template(), n_rays: ti.i32,
                n_anchors: ti.i32, tiles_per_batch: ti.i32, argmax: ti.types.ndarray(),
                count: ti.types.ndarray()):
    """Per ray: the arg-max probe (flat anchor index or -1) and the number of probes.

    A ray with tile >= 0 visits its tile's list, a ray with tile -1 every anchor of its batch element.
    """
    for i in range(origins.shape[0]):
        b = i // n_rays
        tile = ray_tile[i]
        start = b * n_anchors
        end = start + n_anchors
        if tile >= 0:
            start = offsets[b * tiles_per_batch + tile]
            end = offsets[b * tiles_per_batch + tile + 1]
        best = -1
        best_value = values[0] * 0
        hits = 0
        for k in range(start, end):
            a = k
            if tile >= 0:
                a = lists[k]
            keep = 1
            if ti.static(use_labels):
                keep = ray_label[i] == anchor_label[a]
            if keep:
                qx = anchors[a, 0] - origins[i, 0]
                qy = anchors[a, 1] - origins[i, 1]
                qz = anchors[a, 2] - origins[i, 2]
                t = qx * directions[i, 0] + qy * directions[i, 1] + qz * directions[i, 2]
                px = qx - t * directions[i, 0]
                py = qy - t * directions[i, 1]
                pz = qz - t * directions[i, 2]
                if t > 0 and px * px + py * py + pz * pz < radius[a] * radius[a]:
                    hits += 1
                    v = values[a]
                    if best < 0 or v > best_value or (v == best_value and a < best):
                        best = a
                        best_value = v
        argmax[i] = best
        count[i] = hits


@ti.kernel
def gather(values: ti.template(), argmax: ti.template(), out: ti.template(), n: ti.i32):
    """out[i] = values[argmax[i]] (0 where argmax is -1). Differentiable (its adjoint is a scatter-add);
    ``out`` must be zeroed before."""
    for i in range(n):
        a = argmax[i]
        if a >= 0:
            out[i] = values[a]


@ti.kernel
def load(dst: ti.template(), src: ti.types.ndarray(), n: ti.i32):
    """dst[:n] = src (a flat tensor) — copies into a grow-only field without matching its shape."""
    for i in range(n):
        dst[i] = src[i]


@ti.kernel
def store(src: ti.template(), dst: ti.types.ndarray(), n: ti.i32):
    """dst = src[:n]."""
    for i in range(n):
        dst[i] = src[i]
