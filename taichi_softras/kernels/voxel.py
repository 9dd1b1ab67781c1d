"""Voxelization kernels (Taichi only; no gradients: the outputs are binary).

Inputs: face vertices ``faces (B, F, 3, 3)`` float32 in voxel units (voxel ``[i, j, k]`` spans
``[i, i+1) x [j, j+1) x [k, k+1)``) and grids ``(B, S, S, S)`` int32 indexed [x0, x1, x2].

Work is flat over (item, line) pairs, built by the caller: an *item* is a (batch, face, axis)
triple, ``it = (b F + f) 3 + axis``, with a box of grid lines parallel to ``axis``: ``box[it] =
(i0, j0, nj)``; its ``count`` lines are pairs ``offset[it] .. offset[it] + count - 1``, and
``pair_item[q]`` names the item of pair q. Line l of an item sits at (i0 + l // nj, j0 + l % nj) on
the two other axes (u, v) = (the lower, the higher of them). There is no loop with a runtime bound
in any kernel: on Vulkan an atomic inside such a loop runs at most 2 iterations (docs/design.md,
backends), and the flat form is the GPU-friendly one anyway.

Cost (P pairs = sum over faces and axes of the grid lines in their boxes): ``mark_surface`` and
``count_crossings`` O(P); ``mark_corners`` O(B F); ``seed_outside``/``grow_outside`` O(B S^3) per
sweep. Memory: the pair arrays, O(P) int32 (caller's).
"""

import taichi as ti

#: Offsets (voxel units) of the parity rays from the voxel centres along (u, v), per ray axis:
#: irrational-looking so that no ray of a grid-aligned mesh meets an edge or a vertex exactly.
RAY_NUDGE = ((1.2345e-5, 2.3456e-5), (3.1416e-5, 1.4142e-5), (2.7183e-5, 1.7321e-5))


@ti.func
def _other_axes(axis):
    u = 1 if axis == 0 else 0
    v = 1 if axis == 2 else 2
    return u, v


@ti.func
def _cell(axis, i, j, k):
    """Grid index (x0, x1, x2) of line (i, j) on axes (u, v), position k along ``axis``."""
    x0, x1, x2 = i, j, k
    if axis == 0:
        x0, x1, x2 = k, i, j
    elif axis == 1:
        x0, x1, x2 = i, k, j
    return x0, x1, x2


@ti.func
def _pair(q, pair_item: ti.template(), offset: ti.template(), box: ti.template(), n_faces):
    """(b, f, axis, i, j) of pair q."""
    it = pair_item[q]
    l = q - offset[it]
    nj = box[it, 2]
    face, axis = it // 3, it % 3
    return face // n_faces, face % n_faces, axis, box[it, 0] + l // nj, box[it, 1] + l % nj


@ti.func
def _line_hit(faces: ti.template(), b, f, axis, pu, pv):
    """Where the line through (pu, pv) on axes (u, v), parallel to ``axis``, meets face f:
    (hit, coordinate along axis). Edges count as inside (t1, t2 >= 0, t1 + t2 <= 1)."""
    u, v = _other_axes(axis)
    pu0, pv0, pw0 = faces[b, f, 0, u], faces[b, f, 0, v], faces[b, f, 0, axis]
    du1, dv1, dw1 = faces[b, f, 1, u] - pu0, faces[b, f, 1, v] - pv0, faces[b, f, 1, axis] - pw0
    du2, dv2, dw2 = faces[b, f, 2, u] - pu0, faces[b, f, 2, v] - pv0, faces[b, f, 2, axis] - pw0
    det = du1 * dv2 - du2 * dv1
    hit = False
    w = 0.0
    if det != 0:
        qu, qv = pu - pu0, pv - pv0
        t1 = (dv2 * qu - du2 * qv) / det
        t2 = (-dv1 * qu + du1 * qv) / det
        if t1 >= 0 and t2 >= 0 and t1 + t2 <= 1:
            hit = True
            w = pw0 + t1 * dw1 + t2 * dw2
    return hit, w


@ti.func
def _mark(voxels: ti.template(), b, x0, x1, x2, size):
    if 0 <= x0 < size and 0 <= x1 < size and 0 <= x2 < size:
        voxels[b, x0, x1, x2] = 1


@ti.kernel
def mark_surface(faces: ti.types.ndarray(), pair_item: ti.types.ndarray(), offset: ti.types.ndarray(),
                 box: ti.types.ndarray(), voxels: ti.types.ndarray(), size: ti.i32):
    """SoftRas's surface shell: each grid line (integer u, v) that crosses a face marks the four
    voxels around it at the crossing. Plain stores only (races write the same 1)."""
    for q in range(pair_item.shape[0]):
        b, f, axis, i, j = _pair(q, pair_item, offset, box, faces.shape[1])
        hit, w = _line_hit(faces, b, f, axis, ti.cast(i, ti.f32), ti.cast(j, ti.f32))
        if hit:
            k = ti.floor(w, ti.i32)
            for di, dj in ti.static(((0, 0), (1, 0), (0, 1), (1, 1))):
                x0, x1, x2 = _cell(axis, i - di, j - dj, k)
                _mark(voxels, b, x0, x1, x2, size)


@ti.kernel
def mark_corners(faces: ti.types.ndarray(), voxels: ti.types.ndarray(), size: ti.i32):
    """Mark the voxel of every face corner (SoftRas's shell includes them)."""
    for b, f, c in ti.ndrange(faces.shape[0], faces.shape[1], 3):
        _mark(voxels, b, ti.floor(faces[b, f, c, 0], ti.i32), ti.floor(faces[b, f, c, 1], ti.i32),
              ti.floor(faces[b, f, c, 2], ti.i32), size)


@ti.kernel
def seed_outside(voxels: ti.types.ndarray(), outside: ti.types.ndarray(), size: ti.i32):
    """outside = unmarked border voxels."""
    for b, i, j, k in ti.ndrange(voxels.shape[0], size, size, size):
        on_border = i == 0 or j == 0 or k == 0 or i == size - 1 or j == size - 1 or k == size - 1
        outside[b, i, j, k] = 1 if on_border and voxels[b, i, j, k] == 0 else 0


@ti.kernel
def grow_outside(voxels: ti.types.ndarray(), outside: ti.types.ndarray(), size: ti.i32) -> ti.i32:
    """One flood-fill sweep: unmarked voxels next to an outside voxel become outside. Returns how
    many changed (repeat until 0). Monotone 0 -> 1 updates: racing reads only delay propagation."""
    changed = 0
    for b, i, j, k in ti.ndrange(voxels.shape[0], size, size, size):
        if voxels[b, i, j, k] == 0 and outside[b, i, j, k] == 0:
            hit = 0
            for d in ti.static(range(3)):
                for s in ti.static((-1, 1)):
                    ii = i + (s if d == 0 else 0)
                    jj = j + (s if d == 1 else 0)
                    kk = k + (s if d == 2 else 0)
                    if 0 <= ii < size and 0 <= jj < size and 0 <= kk < size:
                        if outside[b, ii, jj, kk] != 0:
                            hit = 1
            if hit:
                outside[b, i, j, k] = 1
                changed += 1
    return changed


@ti.kernel
def count_crossings(faces: ti.types.ndarray(), pair_item: ti.types.ndarray(), offset: ti.types.ndarray(),
                    box: ti.types.ndarray(), crossings: ti.types.ndarray(), size: ti.i32):
    """Parity rays: the ray along ``axis`` through the voxel centres (i + 1/2, j + 1/2) (nudged by
    RAY_NUDGE) that crosses a face adds 1 at ``crossings[b, axis, cell]`` of the first voxel whose
    centre lies beyond the crossing, position S along the axis for crossings beyond the grid (prefix
    sums along the axis then give the crossings below each centre, totals those above).
    ``crossings (B, 3, S + 1, S + 1, S + 1)`` int32."""
    for q in range(pair_item.shape[0]):
        b, f, axis, i, j = _pair(q, pair_item, offset, box, faces.shape[1])
        nu, nv = RAY_NUDGE[0][0], RAY_NUDGE[0][1]
        if axis == 1:
            nu, nv = RAY_NUDGE[1][0], RAY_NUDGE[1][1]
        elif axis == 2:
            nu, nv = RAY_NUDGE[2][0], RAY_NUDGE[2][1]
        hit, w = _line_hit(faces, b, f, axis, i + 0.5 + nu, j + 0.5 + nv)
        if hit:
            k = ti.min(ti.max(ti.ceil(w - 0.5, ti.i32), 0), size)
            if 0 <= i < size and 0 <= j < size:
                x0, x1, x2 = _cell(axis, i, j, k)
                ti.atomic_add(crossings[b, axis, x0, x1, x2], 1)
