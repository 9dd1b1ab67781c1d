"""Anchor-ray probing kernels (Taichi only): find each ray's arg-max probe among the anchors binned
to its screen tile or grid cells (binning: ``kernels/binning.py``), and gather its value
differentiably.

A ray (o, d), |d| = 1, probes anchor (c, r) when t = (c - o).d > 0 and |(c - o) - t d|^2 < r^2; with
boundary-aware labels it must also carry the anchor's label. The ray's value is the max over its
probes (ties: smallest anchor index), or 0 without probes.

Batches are flattened: ray i of batch element b lives at b * n_rays + i, anchor j at
b * n_anchors + j; the cell lists (``off``, ``lst``: cell c lists ``lst[off[c]:off[c + 1]]``, local
anchor indices j) are fields, the rest torch tensors (ndarrays); ``argmax`` holds flat anchor
indices (-1 for none).

Cost (B batch elements, R rays, N anchors, T tiles per element, P = sum of tiles covered per anchor):
binning O(B N + P) integer work; ``find_argmax`` O(sum over rays of the anchors in
their tile), i.e. ~ (ray, anchor) hits for pinhole rays, O(R N) for rays without a tile (tile -1);
``find_argmax_grid`` O(sum over rays of the cells crossed (<= 3 G) and the anchors listed in them);
``gather`` O(B R). Memory: the tile lists, O(P + B T) int32. ``find_argmax`` is forward-only (max
pooling's Taichi autodiff is wrong, docs/design.md, Taichi autodiff rules); gradients come from ``gather.grad``.
"""

import taichi as ti


@ti.func
def ray_hits(origins: ti.template(), directions: ti.template(), anchors: ti.template(), radius: ti.template(),
             i, a):
    """(t, hit): the anchor's distance along ray i and whether the ray passes within its radius in
    front of the origin."""
    qx = anchors[a, 0] - origins[i, 0]
    qy = anchors[a, 1] - origins[i, 1]
    qz = anchors[a, 2] - origins[i, 2]
    t = qx * directions[i, 0] + qy * directions[i, 1] + qz * directions[i, 2]
    px = qx - t * directions[i, 0]
    py = qy - t * directions[i, 1]
    pz = qz - t * directions[i, 2]
    return t, t > 0 and px * px + py * py + pz * pz < radius[a] * radius[a]


@ti.func
def _visit(origins: ti.template(), directions: ti.template(), anchors: ti.template(), radius: ti.template(),
           values: ti.template(), ray_label: ti.template(), anchor_label: ti.template(), use_labels: ti.template(),
           i, a, t_lo, t_hi, best, best_value, hits):
    """Probe anchor a with ray i (counted only if its closest approach t lies in [t_lo, t_hi) and the
    labels agree): the updated (arg-max, max value, probe count), ties to the smaller index."""
    keep = 1
    if ti.static(use_labels):
        keep = ray_label[i] == anchor_label[a]
    new_best, new_value, new_hits = best, best_value, hits
    if keep:
        t, hit = ray_hits(origins, directions, anchors, radius, i, a)
        if hit and t >= t_lo and t < t_hi:
            new_hits += 1
            v = values[a]
            if best < 0 or v > best_value or (v == best_value and a < best):
                new_best, new_value = a, v
    return new_best, new_value, new_hits


@ti.kernel
def find_argmax(origins: ti.types.ndarray(), directions: ti.types.ndarray(), anchors: ti.types.ndarray(),
                radius: ti.types.ndarray(), values: ti.types.ndarray(), ray_tile: ti.types.ndarray(),
                offsets: ti.template(), lists: ti.template(), ray_label: ti.types.ndarray(),
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
                a = b * n_anchors + lists[k]
            best, best_value, hits = _visit(origins, directions, anchors, radius, values, ray_label, anchor_label,
                                            use_labels, i, a, -1e30, 1e30, best, best_value, hits)
        argmax[i] = best
        count[i] = hits


@ti.kernel
def find_argmax_grid(origins: ti.types.ndarray(), directions: ti.types.ndarray(), anchors: ti.types.ndarray(),
                     radius: ti.types.ndarray(), values: ti.types.ndarray(), grid_lo: ti.types.ndarray(),
                     cell: ti.types.ndarray(), grid: ti.i32, offsets: ti.template(), lists: ti.template(),
                     ray_label: ti.types.ndarray(), anchor_label: ti.types.ndarray(), use_labels: ti.template(),
                     n_rays: ti.i32, n_anchors: ti.i32, argmax: ti.types.ndarray(), count: ti.types.ndarray()):
    """``find_argmax`` for arbitrary rays: each ray walks the cells of a per-batch-element cubic grid
    (grid³ cells of side cell[b] from grid_lo[b], listing every anchor whose sphere's box meets
    them) with a 3D DDA. An anchor listed in several cells counts once: in the cell whose stretch
    of the ray [t_in, t_out) holds the anchor's closest approach t (the stretches partition the ray,
    the first one open towards the origin, the last one towards infinity)."""
    for i in range(origins.shape[0]):
        b = i // n_rays
        h = cell[b]
        big = h * 0 + 1e30
        # slabs: where the ray is inside the grid's box, from t = 0 on
        t_in = h * 0
        t_out = big
        for k in ti.static(range(3)):
            lo = grid_lo[b, k]
            hi = lo + grid * h
            if directions[i, k] != 0:
                t0 = (lo - origins[i, k]) / directions[i, k]
                t1 = (hi - origins[i, k]) / directions[i, k]
                t_in = ti.max(t_in, ti.min(t0, t1))
                t_out = ti.min(t_out, ti.max(t0, t1))
            elif origins[i, k] < lo or origins[i, k] > hi:
                t_out = -big
        best = -1
        best_value = values[0] * 0
        hits = 0
        if t_in <= t_out:
            c = ti.Vector([0, 0, 0])
            step = ti.Vector([0, 0, 0])
            t_next = ti.Vector([big, big, big])
            t_delta = ti.Vector([big, big, big])
            for k in ti.static(range(3)):
                pos = (origins[i, k] + t_in * directions[i, k] - grid_lo[b, k]) / h
                c[k] = ti.min(ti.max(ti.cast(ti.floor(pos), ti.i32), 0), grid - 1)
                if directions[i, k] > 0:
                    step[k] = 1
                    t_delta[k] = h / directions[i, k]
                    t_next[k] = (grid_lo[b, k] + (c[k] + 1) * h - origins[i, k]) / directions[i, k]
                elif directions[i, k] < 0:
                    step[k] = -1
                    t_delta[k] = -h / directions[i, k]
                    t_next[k] = (grid_lo[b, k] + c[k] * h - origins[i, k]) / directions[i, k]
            t_cur = -big  # the first stretch is open towards the origin
            for _ in range(3 * grid + 3):
                axis = 0
                if t_next[1] < t_next[axis]:
                    axis = 1
                if t_next[2] < t_next[axis]:
                    axis = 2
                t_end = t_next[axis]
                last = c[axis] + step[axis] < 0 or c[axis] + step[axis] >= grid or t_end >= t_out
                if last:
                    t_end = big
                tile = b * grid * grid * grid + (c[2] * grid + c[1]) * grid + c[0]
                for k in range(offsets[tile], offsets[tile + 1]):
                    a = b * n_anchors + lists[k]
                    best, best_value, hits = _visit(origins, directions, anchors, radius, values, ray_label,
                                                    anchor_label, use_labels, i, a, t_cur, t_end, best, best_value, hits)
                if last:
                    break
                t_cur = t_end
                c[axis] += step[axis]
                t_next[axis] += t_delta[axis]
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
