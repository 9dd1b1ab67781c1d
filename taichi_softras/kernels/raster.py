"""Taichi kernels of the soft rasterizer (no torch here).

Data lives in flat, grow-only fields owned by ``ops/rasterize.py`` (see ``ops/_buffers.py``):

* ``fv``   (B*F*9)        face vertices, x, y NDC and z depth per corner (grad)
* ``tex``  (B*F*T*3)      textures: T = R*R surface texels or 3 vertex colours, or a UV image
                          (B*3*TH*TW) with per-corner ``uv`` (B*F*6) (grad)
* ``nfc`` (B) faces per mesh (ragged batches); ``grp`` (B*F) face groups; ``vn`` (B*F*9) normals
* ``box``  (B*F, 4)       each face's tile range tx0, tx1, ty0, ty1 (empty when tx0 > tx1)
* ``fbox`` (B*F, 14)      its NDC box grown by the cut-off radius, its 3 edge lines, a threshold
* ``cnt``, ``fill`` (B*NT), ``off`` (B*NT + 1), ``lst`` (sum of cnt): faces binned per screen tile
* ``pm`` (B*P) softmax shift m, ``psel`` (B*P) hard-colour face, ``phard`` (B*P) hard alpha
* ``acc``  (B*P, 7)       per-pixel sums: log(1-D), D, w, w*z, w*rgb (grad); ``accg`` per group
* ``out``  (B*P, 5)       RGBA + depth (grad); ``outg`` group masks; ``aux`` (B*P, 9) auxiliary
* ``prm``  (16)           real-valued settings (see ``P_*``), so new sigma/gamma never recompile

Passes: ``bin_count`` -> ``bin_offsets`` -> ``bin_fill`` (binning, integer work) -> ``prepass``
(forward-only) -> ``accumulate`` -> ``compose`` [-> ``compose_groups``, ``auxiliary``].
Cost: binning is O(B*F + face-tile pairs); ``prepass`` and ``accumulate`` visit, for each pixel,
the faces binned to its tile, rejecting most with a cheap box/edge-line test (O(B*H*W + covered
pairs + tile slack)); ``compose`` and ``auxiliary`` are O(B*H*W). Extra memory is
O(B*H*W + B*F + face-tile pairs); nothing is per (pixel, face).

Autodiff (DESIGN.md section 3): ``accumulate`` only ``+=`` into ``acc`` and ``compose`` reads
``acc``; their ``.grad`` kernels run compose then accumulate. ``prepass`` (the max m, hard
selections) is forward-only: m is a constant for gradients. Risky math (exp of large arguments)
sits inside the ``if`` that guards its use, so a zero adjoint never meets an inf.
"""

import taichi as ti

from ..conventions import BARY_SUM_EPS, DET_EPS, Z_CULL
from .common import load, load_image, store, store_image, zero, zero2  # noqa: F401  (used by ops)

TILE = 8

# Indices into the settings field ``prm``.
P_SIGMA, P_GAMMA, P_EPS, P_NEAR, P_FAR, P_THR, P_RAD, P_BG = 0, 1, 2, 3, 4, 5, 6, 7  # P_BG..P_BG+2
N_PRM = 16

# Static mode codes.
DIST_EUCLIDEAN, DIST_BARYCENTRIC, DIST_HARD = 0, 1, 2
ALPHA_PROD, ALPHA_SUM, ALPHA_HARD = 0, 1, 2
RGB_SOFTMAX, RGB_HARD = 0, 1
TEX_SURFACE, TEX_VERTEX, TEX_UV = 0, 1, 2
WRAP_REPEAT, WRAP_CLAMP = 0, 1


@ti.func
def _seg_dist2(px, py, ax, ay, bx, by):
    ex, ey = bx - ax, by - ay
    len2 = ti.max(ex * ex + ey * ey, 1e-30)
    t = ti.min(ti.max(((px - ax) * ex + (py - ay) * ey) / len2, 0.0), 1.0)
    dx, dy = px - (ax + t * ex), py - (ay + t * ey)
    return dx * dx + dy * dy


@ti.func
def _softplus(x):
    return ti.max(x, 0.0) + ti.log(1.0 + ti.exp(-ti.abs(x)))


@ti.func
def _pixel_xy(col, row, H, W, real: ti.template()):
    s = ti.cast(ti.min(H, W), real)
    return ti.cast(2 * col + 1 - W, real) / s, ti.cast(H - 1 - 2 * row, real) / s


@ti.func
def _dist2(px, py, x0, y0, x1, y1, x2, y2, w0, w1, w2, dist: ti.template()):
    """Squared distance of the pixel to the triangle's boundary (or min barycentric squared)."""
    if ti.static(dist == DIST_BARYCENTRIC):
        return ti.min(w0, w1, w2) ** 2
    else:
        return ti.min(
            _seg_dist2(px, py, x0, y0, x1, y1), _seg_dist2(px, py, x1, y1, x2, y2), _seg_dist2(px, py, x2, y2, x0, y0)
        )


@ti.func
def _fragment(fv, base, px, py, prm, dist: ti.template()):
    """Coverage of one (pixel, face) pair; see conventions.py. Values only meaningful when keep.

    Written single-assignment (no local is stored twice): inside the dynamic face loop a re-stored
    local would take Taichi's adstack path, whose gradients are wrong (DESIGN.md section 3)."""
    x0, y0, z0 = fv[base + 0], fv[base + 1], fv[base + 2]
    x1, y1, z1 = fv[base + 3], fv[base + 4], fv[base + 5]
    x2, y2, z2 = fv[base + 6], fv[base + 7], fv[base + 8]
    rad = prm[P_RAD]
    in_box = (
        px >= ti.min(x0, x1, x2) - rad
        and px <= ti.max(x0, x1, x2) + rad
        and py >= ti.min(y0, y1, y2) - rad
        and py <= ti.max(y0, y1, y2) + rad
    )
    det_raw = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
    det = ti.select(det_raw >= 0, ti.max(det_raw, DET_EPS), ti.min(det_raw, -DET_EPS))
    w0 = ((y1 - y2) * (px - x2) + (x2 - x1) * (py - y2)) / det
    w1 = ((y2 - y0) * (px - x2) + (x0 - x2) * (py - y2)) / det
    w2 = 1.0 - w0 - w1
    inside = w0 > 0 and w1 > 0 and w2 > 0
    d2 = _dist2(px, py, x0, y0, x1, y1, x2, y2, w0, w1, w2, dist)
    keep = in_box and (inside or (dist != DIST_HARD and d2 < prm[P_THR]))
    # Clipped, renormalized barycentrics -> perspective-correct depth.
    u0, u1, u2 = ti.min(ti.max(w0, 0.0), 1.0), ti.min(ti.max(w1, 0.0), 1.0), ti.min(ti.max(w2, 0.0), 1.0)
    usum = ti.max(u0 + u1 + u2, BARY_SUM_EPS)
    c0, c1, c2 = u0 / usum, u1 / usum, u2 / usum
    zp = 1.0 / (c0 / z0 + c1 / z1 + c2 / z2)
    front = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
    sign = ti.select(inside, 1.0, -1.0)
    return keep, inside, front, sign * d2 / prm[P_SIGMA], c0, c1, c2, zp


@ti.func
def _in_box(fbox, fb, px, py, dist: ti.template()):
    """Cheap, non-differentiable pre-test: may the face touch this pixel? False when the pixel is
    outside the face's grown box (empty if culled) or, for distance cut-offs, farther than the
    cut-off radius (plus a rounding margin) beyond one of its edge lines — the triangle lies wholly
    on the other side of that line, so its distance is at least that far. Conservative: it only
    rejects pixels the exact test would reject too."""
    ok = px >= fbox[fb, 0] and px <= fbox[fb, 1] and py >= fbox[fb, 2] and py <= fbox[fb, 3]
    if ti.static(dist == DIST_EUCLIDEAN):
        if ok:
            lim = fbox[fb, 13]
            for e in ti.static(range(3)):
                if fbox[fb, 4 + 3 * e] * px + fbox[fb, 5 + 3 * e] * py + fbox[fb, 6 + 3 * e] > lim:
                    ok = False
    return ok


@ti.func
def _edge_line(ax, ay, bx, by, cx, cy):
    """Unit normal (nx, ny) and offset c of the line through a, b with L(p) = n.p + c <= 0 on c's
    side; (0, 0, -1) (never rejects) when the edge or the triangle is degenerate."""
    ex, ey = bx - ax, by - ay
    length = ti.sqrt(ex * ex + ey * ey)
    nx, ny = ey / ti.max(length, 1e-30), -ex / ti.max(length, 1e-30)
    side = nx * (cx - ax) + ny * (cy - ay)
    sgn = ti.select(side > 0, -1.0, 1.0)
    good = length > 1e-12 and ti.abs(side) > 1e-12
    return ti.select(good, sgn * nx, 0.0), ti.select(good, sgn * ny, 0.0), ti.select(good, -sgn * (nx * ax + ny * ay), -1.0)


@ti.func
def _colours(keep, front, zp, prm, fill_back: ti.template()):
    """Does a kept fragment take part in colour? (depth in [near, far]; front unless fill_back)"""
    in_range = keep and zp >= prm[P_NEAR] and zp <= prm[P_FAR]
    if ti.static(fill_back):
        return in_range
    else:
        return in_range and front


@ti.func
def _coverage(xs, inside, dist: ti.template()):
    """D of a kept fragment (xs >= -ln(1/dist_eps - 1) there, so exp(-xs) cannot overflow)."""
    if ti.static(dist == DIST_HARD):
        return ti.select(inside, 1.0, 0.0)
    else:
        return 1.0 / (1.0 + ti.exp(-xs))


@ti.func
def _wrap(i, n, wrap: ti.template()):
    if ti.static(wrap == WRAP_REPEAT):
        return ((i % n) + n) % n
    else:
        return ti.min(ti.max(i, 0), n - 1)


@ti.func
def _texel(tex, uv, fb, b, R, TH, TW, c0, c1, c2, ch, texmode: ti.template(), wrap: ti.template()):
    """Colour channel ch of face fb = b*F + f at clipped barycentrics (c0, c1, c2).

    surface: texel of ``tex`` (R*R per face); vertex: ``tex`` corners interpolated; uv: the image
    ``tex`` (B, 3, TH, TW) sampled bilinearly at the interpolated per-corner UVs ``uv`` (v up: row 0
    of the image is v = 1; pixel centres at (i + 0.5) / size)."""
    if ti.static(texmode == TEX_VERTEX):
        return c0 * tex[(fb * 3 + 0) * 3 + ch] + c1 * tex[(fb * 3 + 1) * 3 + ch] + c2 * tex[(fb * 3 + 2) * 3 + ch]
    elif ti.static(texmode == TEX_UV):
        u = c0 * uv[fb * 6 + 0] + c1 * uv[fb * 6 + 2] + c2 * uv[fb * 6 + 4]
        v = c0 * uv[fb * 6 + 1] + c1 * uv[fb * 6 + 3] + c2 * uv[fb * 6 + 5]
        x = u * TW - 0.5
        y = (1.0 - v) * TH - 0.5
        xf, yf = ti.floor(x), ti.floor(y)
        fx, fy = x - xf, y - yf
        ix, iy = ti.cast(xf, ti.i32), ti.cast(yf, ti.i32)
        x0, x1 = _wrap(ix, TW, wrap), _wrap(ix + 1, TW, wrap)
        y0, y1 = _wrap(iy, TH, wrap), _wrap(iy + 1, TH, wrap)
        base = (b * 3 + ch) * TH
        return (
            (1.0 - fx) * (1.0 - fy) * tex[(base + y0) * TW + x0]
            + fx * (1.0 - fy) * tex[(base + y0) * TW + x1]
            + (1.0 - fx) * fy * tex[(base + y1) * TW + x0]
            + fx * fy * tex[(base + y1) * TW + x1]
        )
    else:
        T = R * R
        wx = ti.min(ti.cast(ti.floor(c0 * R), ti.i32), R - 1)
        wy = ti.min(ti.cast(ti.floor(c1 * R), ti.i32), R - 1)
        k = ti.select((1.0 - c2) * R - wx - wy > 1, (R - 1 - wy) * R + (R - 1 - wx), wy * R + wx)
        return tex[(fb * T + k) * 3 + ch]


@ti.kernel
def bin_count(
    fv: ti.template(), nfc: ti.template(), box: ti.template(), fbox: ti.template(), cnt: ti.template(), prm: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32, det: ti.template(),
):
    """Tile range of every face's screen box grown by the cut-off radius; count faces per tile."""
    ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    ti.loop_config(serialize=det)
    for i in range(B * F):
        base = i * 9
        b = i // F
        x0, y0, z0 = fv[base + 0], fv[base + 1], fv[base + 2]
        x1, y1, z1 = fv[base + 3], fv[base + 4], fv[base + 5]
        x2, y2, z2 = fv[base + 6], fv[base + 7], fv[base + 8]
        rad = prm[P_RAD]
        s = ti.cast(ti.min(H, W), fv.dtype)
        # Pixel centre k sits at x = (2k + 1 - W) / S, so k = (x S + W - 1) / 2 (rows likewise, y down).
        lo_x = ((ti.min(x0, x1, x2) - rad) * s + W - 1) * 0.5
        hi_x = ((ti.max(x0, x1, x2) + rad) * s + W - 1) * 0.5
        lo_y = (H - 1 - (ti.max(y0, y1, y2) + rad) * s) * 0.5
        hi_y = (H - 1 - (ti.min(y0, y1, y2) - rad) * s) * 0.5
        # Pixels k with lo <= k <= hi, widened by 0.01 px against rounding (the exact per-pixel box
        # test decides); clamp before the int cast (huge NDC near the eye).
        c0 = ti.cast(ti.ceil(ti.max(lo_x - 0.01, -2.0)), ti.i32)
        c1 = ti.cast(ti.floor(ti.min(hi_x + 0.01, W + 2.0)), ti.i32)
        r0 = ti.cast(ti.ceil(ti.max(lo_y - 0.01, -2.0)), ti.i32)
        r1 = ti.cast(ti.floor(ti.min(hi_y + 0.01, H + 2.0)), ti.i32)
        c0, c1 = ti.max(c0, 0), ti.min(c1, W - 1)
        r0, r1 = ti.max(r0, 0), ti.min(r1, H - 1)
        # Culled: a corner at or behind the eye, or padding beyond this mesh's face count (ragged).
        culled = z0 <= Z_CULL or z1 <= Z_CULL or z2 <= Z_CULL or i - b * F >= nfc[b]
        tx0, tx1, ty0, ty1 = c0 // TILE, c1 // TILE, r0 // TILE, r1 // TILE
        if culled or c0 > c1 or r0 > r1:
            tx0, tx1 = 1, 0
        box[i, 0], box[i, 1], box[i, 2], box[i, 3] = tx0, tx1, ty0, ty1
        fbox[i, 0], fbox[i, 1] = ti.min(x0, x1, x2) - rad, ti.max(x0, x1, x2) + rad
        fbox[i, 2], fbox[i, 3] = ti.min(y0, y1, y2) - rad, ti.max(y0, y1, y2) + rad
        if culled:
            fbox[i, 0], fbox[i, 1] = 1.0, -1.0
        fbox[i, 4], fbox[i, 5], fbox[i, 6] = _edge_line(x0, y0, x1, y1, x2, y2)
        fbox[i, 7], fbox[i, 8], fbox[i, 9] = _edge_line(x1, y1, x2, y2, x0, y0)
        fbox[i, 10], fbox[i, 11], fbox[i, 12] = _edge_line(x2, y2, x0, y0, x1, y1)
        # Rejection threshold: the cut-off radius plus a margin for rounding in L(p).
        scale = ti.max(ti.abs(x0), ti.abs(x1), ti.abs(x2), ti.abs(y0), ti.abs(y1), ti.abs(y2), 1.0)
        fbox[i, 13] = rad * 1.001 + scale * 1e-5
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                ti.atomic_add(cnt[b * ntx * nty + ty * ntx + tx], 1)


@ti.kernel
def bin_offsets(cnt: ti.template(), off: ti.template(), fill: ti.template(), n: ti.i32):
    """Exclusive prefix sum of the tile counts (serial: n is the number of tiles, small)."""
    off[0] = 0
    ti.loop_config(serialize=True)
    for i in range(n):
        off[i + 1] = off[i] + cnt[i]
        fill[i] = 0


@ti.kernel
def bin_fill(
    box: ti.template(), off: ti.template(), fill: ti.template(), lst: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32, serial: ti.template(),
):
    """Write each face's index into the lists of the tiles its box covers. ``serial`` fills in face
    order, so every list is sorted and sums run in the same order on every call (bit-identical
    forward results); it costs O(face-tile pairs) on one thread, a few ms on a CPU."""
    ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    ti.loop_config(serialize=serial)
    for i in range(B * F):
        b = i // F
        for ty in range(box[i, 2], box[i, 3] + 1):
            for tx in range(box[i, 0], box[i, 1] + 1):
                t = b * ntx * nty + ty * ntx + tx
                slot = ti.atomic_add(fill[t], 1)
                lst[off[t] + slot] = i - b * F


@ti.kernel
def sort_tiles(off: ti.template(), lst: ti.template(), n: ti.i32):
    """Sort each tile's face list (insertion sort, one tile per thread): the parallel fill's order
    depends on thread timing; sorted lists make sums, hence results, repeatable (used on GPUs, where
    a serial fill would be slow)."""
    for t in range(n):
        for j in range(off[t] + 1, off[t + 1]):
            v = lst[j]
            k = j - 1
            while k >= off[t] and lst[k] > v:
                lst[k + 1] = lst[k]
                k -= 1
            lst[k + 1] = v


@ti.kernel
def prepass(
    fv: ti.template(), fbox: ti.template(), off: ti.template(), lst: ti.template(), prm: ti.template(),
    pm: ti.template(), psel: ti.template(), phard: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32,
    dist: ti.template(), rgb: ti.template(), fill_back: ti.template(), det: ti.template(),
):
    """Forward-only: per pixel the softmax shift m = max(eps, max z_n), the hard-colour face (nearest
    colouring face containing the pixel, ties to the lower index) and the hard alpha.

    With hard colours m is unused and both other results only need inside tests (D > 0.5 holds
    exactly inside, for every dist_func), so the fragments are tested as 'hard' ones: the segment
    distances are never computed (dead code for the compiler)."""
    ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    ti.loop_config(serialize=det)
    for p in range(B * H * W):
        b, pix = p // (H * W), p % (H * W)
        row, col = pix // W, pix % W
        px, py = _pixel_xy(col, row, H, W, fv.dtype)
        t = b * ntx * nty + (row // TILE) * ntx + col // TILE
        far, near = prm[P_FAR], prm[P_NEAR]
        m = prm[P_EPS]
        best_z = far * 2.0 + 1.0
        best_f = -1
        hard = 0.0
        tested = ti.static(DIST_HARD if rgb == RGB_HARD else dist)
        for j in range(off[t], off[t + 1]):
            f = lst[j]
            if _in_box(fbox, b * F + f, px, py, dist):
                keep, inside, front, xs, c0, c1, c2, zp = _fragment(fv, (b * F + f) * 9, px, py, prm, tested)
                if keep:
                    if _coverage(xs, inside, tested) > 0.5:
                        hard = 1.0
                    if _colours(keep, front, zp, prm, fill_back):
                        m = ti.max(m, (far - zp) / (far - near))
                        if inside and (zp < best_z or (zp == best_z and f < best_f)):
                            best_z, best_f = zp, f
        pm[p], psel[p], phard[p] = m, best_f, hard


@ti.kernel
def accumulate(
    fv: ti.template(), fbox: ti.template(), tex: ti.template(), uv: ti.template(),
    grp: ti.template(), off: ti.template(), lst: ti.template(), prm: ti.template(),
    pm: ti.template(), psel: ti.template(), acc: ti.template(), accg: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32, R: ti.i32, TH: ti.i32, TW: ti.i32,
    dist: ti.template(), rgb: ti.template(), texmode: ti.template(), wrap: ti.template(),
    fill_back: ti.template(), groups: ti.template(), det: ti.template(),
):
    """Differentiable per-pixel sums over the faces binned to the pixel's tile (``+=`` only)."""
    ti.loop_config(serialize=det)
    for p in range(B * H * W):
        ntx, nty = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE  # in the loop: autodiff kernels are loops only
        b, pix = p // (H * W), p % (H * W)
        row, col = pix // W, pix % W
        px, py = _pixel_xy(col, row, H, W, fv.dtype)
        t = b * ntx * nty + (row // TILE) * ntx + col // TILE
        m = pm[p]
        sel = psel[p]
        for j in range(off[t], off[t + 1]):
            f = lst[j]
            fb = b * F + f
            # The cheap non-differentiable box/edge-line test first, so the reverse pass replays (and
            # scatters adjoints for) only the few faces near the pixel, not every face binned to the
            # tile. Nested ifs, not `and`: Taichi does not short-circuit.
            if _in_box(fbox, fb, px, py, dist):
                keep, inside, front, xs, c0, c1, c2, zp = _fragment(fv, fb * 9, px, py, prm, dist)
                if keep:
                    D = _coverage(xs, inside, dist)
                    if ti.static(dist != DIST_HARD):
                        acc[p, 0] += -_softplus(xs)
                    acc[p, 1] += D
                    if ti.static(groups):  # per-group log(1 - D) (soft) or coverage count (hard)
                        if ti.static(dist != DIST_HARD):
                            accg[p, grp[fb]] += -_softplus(xs)
                        else:
                            accg[p, grp[fb]] += D
                    if ti.static(rgb == RGB_SOFTMAX):
                        if _colours(keep, front, zp, prm, fill_back):
                            zn = (prm[P_FAR] - zp) / (prm[P_FAR] - prm[P_NEAR])
                            w = D * ti.exp((zn - m) / prm[P_GAMMA])
                            acc[p, 2] += w
                            acc[p, 3] += w * zp
                            for ch in ti.static(range(3)):
                                acc[p, 4 + ch] += w * _texel(tex, uv, fb, b, R, TH, TW, c0, c1, c2, ch, texmode, wrap)
                    else:
                        if f == sel:
                            acc[p, 2] += 1.0
                            acc[p, 3] += zp
                            for ch in ti.static(range(3)):
                                acc[p, 4 + ch] += _texel(tex, uv, fb, b, R, TH, TW, c0, c1, c2, ch, texmode, wrap)


@ti.kernel
def compose(
    acc: ti.template(), nfc: ti.template(), pm: ti.template(), psel: ti.template(),
    phard: ti.template(), prm: ti.template(), out: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32,
    dist: ti.template(), alpha: ti.template(), rgb: ti.template(),
):
    """RGBA + depth from the sums: out[p] = (r, g, b, alpha, depth)."""
    for p in range(B * H * W):
        wsum = acc[p, 2]
        wb = _background_weight(pm[p], psel[p], prm, rgb)
        for ch in ti.static(range(3)):
            out[p, ch] = (acc[p, 4 + ch] + wb * prm[P_BG + ch]) / (wsum + wb)
        if ti.static(alpha == ALPHA_HARD or (alpha == ALPHA_PROD and dist == DIST_HARD)):
            out[p, 3] = phard[p]
        elif ti.static(alpha == ALPHA_PROD):
            out[p, 3] = 1.0 - ti.exp(acc[p, 0])
        else:
            out[p, 3] = acc[p, 1] / ti.max(nfc[p // (H * W)], 1)
        if wsum > 0:
            out[p, 4] = acc[p, 3] / wsum
        else:
            out[p, 4] = prm[P_FAR]


@ti.kernel
def compose_groups(accg: ti.template(), outg: ti.template(), n: ti.i32, G: ti.i32, dist: ti.template()):
    """Soft silhouette per face group. A flat (pixel, group) loop: an inner dynamic loop over the
    groups would put its temporaries on Taichi's adstack, whose gradients are wrong (DESIGN.md 3)."""
    for p, g in ti.ndrange(n, G):
        if ti.static(dist != DIST_HARD):
            outg[p, g] = 1.0 - ti.exp(accg[p, g])
        else:
            outg[p, g] = ti.select(accg[p, g] > 0, 1.0, 0.0)


@ti.func
def _background_weight(m, sel, prm, rgb: ti.template()):
    if ti.static(rgb == RGB_HARD):
        return ti.select(sel < 0, 1.0, 0.0)
    else:
        return ti.exp((prm[P_EPS] - m) / prm[P_GAMMA])


@ti.func
def _unit(x, y, z):
    n = ti.sqrt(ti.max(x * x + y * y + z * z, 1e-20))
    return x / n, y / n, z / n


@ti.kernel
def auxiliary(
    fv: ti.template(), vn: ti.template(), psel: ti.template(), prm: ti.template(), aux: ti.template(),
    B: ti.i32, F: ti.i32, H: ti.i32, W: ti.i32, normals: ti.template(),
):
    """Per pixel, for the nearest covering face (``psel``, from the prepass): perspective-correct
    barycentrics (aux 0..2), interpolated unit vertex normals ``vn`` (3..5, if ``normals``) and the unit
    screen-space face normal cross(v1 - v0, v2 - v0) of (x_ndc, y_ndc, z) (6..8). Zeros elsewhere.
    O(B*H*W): one face per pixel."""
    for p in range(B * H * W):
        sel = psel[p]
        if sel >= 0:
            b, pix = p // (H * W), p % (H * W)
            px, py = _pixel_xy(pix % W, pix // W, H, W, fv.dtype)
            fb = b * F + sel
            keep, inside, front, xs, c0, c1, c2, zp = _fragment(fv, fb * 9, px, py, prm, DIST_EUCLIDEAN)
            base = fb * 9
            q0, q1, q2 = c0 / fv[base + 2] * zp, c1 / fv[base + 5] * zp, c2 / fv[base + 8] * zp
            aux[p, 0], aux[p, 1], aux[p, 2] = q0, q1, q2
            if ti.static(normals):
                nx = q0 * vn[base + 0] + q1 * vn[base + 3] + q2 * vn[base + 6]
                ny = q0 * vn[base + 1] + q1 * vn[base + 4] + q2 * vn[base + 7]
                nz = q0 * vn[base + 2] + q1 * vn[base + 5] + q2 * vn[base + 8]
                aux[p, 3], aux[p, 4], aux[p, 5] = _unit(nx, ny, nz)
            ex, ey, ez = fv[base + 3] - fv[base + 0], fv[base + 4] - fv[base + 1], fv[base + 5] - fv[base + 2]
            gx, gy, gz = fv[base + 6] - fv[base + 0], fv[base + 7] - fv[base + 1], fv[base + 8] - fv[base + 2]
            aux[p, 6], aux[p, 7], aux[p, 8] = _unit(ey * gz - ez * gy, ez * gx - ex * gz, ex * gy - ey * gx)
