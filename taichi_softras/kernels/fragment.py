"""Per-fragment maths of the soft rasterizer: the ``@ti.func``s every pass of :mod:`.raster` shares
(one (pixel, face) pair's geometry, coverage, depth and texture sample; the face setup's pieces).
Single-assignment throughout: docs/design.md, "Taichi autodiff rules". No torch here.
"""

import taichi as ti

from ..conventions import BARY_SUM_EPS, DET_EPS
from .raster_layout import (
    DIST_BARYCENTRIC, DIST_EUCLIDEAN, DIST_HARD, D_F, D_H, D_LOG_GX, D_LOG_GY, D_R, D_TH, D_TW, D_W, EDGE2_MIN_F32,
    EDGE2_MIN_F64, P_FAR, P_INV_S, P_NEAR, P_THR, S_BARY, S_BOX, S_INVLEN, S_INVZ, S_KLINE, S_LIM, S_LINES, S_XY,
    TEX_UV, TEX_VERTEX, TILE, TILE_LOG, WRAP_REPEAT,
)


@ti.func
def _clamped_det(x0, y0, x1, y1, x2, y2):
    """The barycentric determinant, kept at least DET_EPS from 0 (conventions.py, Guards)."""
    det_raw = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
    return ti.select(det_raw >= 0, ti.max(det_raw, DET_EPS), ti.min(det_raw, -DET_EPS))


@ti.func
def _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, real: ti.template()):
    """Per-face quantities every fragment of the face uses (differentiable). Edges shorter than
    sqrt(EDGE2_MIN) count as points: 1/|e|^2 stays finite and so does its derivative
    (-1/|e|^4: 1e32 for float32's floor of 1e-16)."""
    floor = ti.static(EDGE2_MIN_F64 if real == ti.f64 else EDGE2_MIN_F32)
    idet = 1.0 / _clamped_det(x0, y0, x1, y1, x2, y2)
    a0, b0 = (y1 - y2) * idet, (x2 - x1) * idet
    a1, b1 = (y2 - y0) * idet, (x0 - x2) * idet
    l01 = 1.0 / ti.max((x1 - x0) ** 2 + (y1 - y0) ** 2, floor)
    l12 = 1.0 / ti.max((x2 - x1) ** 2 + (y2 - y1) ** 2, floor)
    l20 = 1.0 / ti.max((x0 - x2) ** 2 + (y0 - y2) ** 2, floor)
    return a0, b0, a1, b1, 1.0 / z0, 1.0 / z1, 1.0 / z2, l01, l12, l20


@ti.func
def _seg_dist2(px, py, ax, ay, bx, by, inv_len2):
    """Squared distance from p to segment ab. The perpendicular part comes from the cross product,
    not from p minus the projected point: the latter carries rounding times the edge length (edges of
    1e4 NDC, e.g. faces crossing close to the eye, lost all float32 precision)."""
    ex, ey = bx - ax, by - ay
    qx, qy = px - ax, py - ay
    u = (qx * ex + qy * ey) * inv_len2
    cross = ex * qy - ey * qx
    rx, ry = px - bx, py - by
    # An edge shorter than the floor of _face_terms (its 1/|e|^2 clamped: the product is < 1) is a point.
    point = inv_len2 * (ex * ex + ey * ey) < 0.5
    return ti.select((u <= 0.0) | point, qx * qx + qy * qy, ti.select(u >= 1.0, rx * rx + ry * ry, cross * cross * inv_len2))


@ti.func
def _pixel_xy(f: ti.template(), col, row):
    """NDC centre of pixel (col, row) (conventions.py), the same expression in every pass."""
    H, W, inv_s = f.dims[D_H], f.dims[D_W], f.prm[P_INV_S]
    return ti.cast(2 * col + 1 - W, f.fv.dtype) * inv_s, ti.cast(H - 1 - 2 * row, f.fv.dtype) * inv_s


@ti.func
def _seg_min(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20):
    return ti.min(
        _seg_dist2(px, py, x0, y0, x1, y1, l01), _seg_dist2(px, py, x1, y1, x2, y2, l12), _seg_dist2(px, py, x2, y2, x0, y0, l20)
    )


@ti.func
def _dist2(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20, w0, w1, w2, lines, dist: ti.template()):
    """Squared distance of the pixel to the triangle's boundary (or min barycentric squared).

    ``lines``: forward-only passes give (k0, k1, k2), k_i = det^2 / |edge opposite i|^2 (k0 < 0 when
    the determinant was clamped), so that inside the triangle d^2 = min_i w_i^2 k_i (the nearest edge's perpendicular foot lies on it)
    costs three products instead of three segment projections; differentiable passes give ()
    and always project (a branch there would cost the reverse pass a stack)."""
    if ti.static(dist == DIST_BARYCENTRIC):
        return ti.min(w0, w1, w2) ** 2
    elif ti.static(dist == DIST_EUCLIDEAN):
        if ti.static(len(lines) == 0):
            return _seg_min(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20)
        else:
            d = 0.0 * px
            if w0 > 0 and w1 > 0 and w2 > 0 and lines[0] >= 0:
                d = ti.min(w0 * w0 * lines[0], w1 * w1 * lines[1], w2 * w2 * lines[2])
            else:
                d = _seg_min(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20)
            return d
    else:
        return 0.0 * px


@ti.func
def _fragment(px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, thr, lines: ti.template(),
              dist: ti.template()):
    """One (pixel, face) pair inside the face's grown box (conventions.py): keep (takes part), inside,
    the signed squared distance sd2 = delta d^2, the clipped barycentrics c0..c2 and the
    perspective-correct depth zp. Single-assignment throughout (docs/design.md, autodiff rules)."""
    w0 = a0 * (px - x2) + b0 * (py - y2)
    w1 = a1 * (px - x2) + b1 * (py - y2)
    w2 = 1.0 - w0 - w1
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
    d2 = _dist2(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20, w0, w1, w2, lines, dist)
    keep = inside if ti.static(dist == DIST_HARD) else inside | (d2 < thr)
    u0, u1, u2 = ti.min(ti.max(w0, 0.0), 1.0), ti.min(ti.max(w1, 0.0), 1.0), ti.min(ti.max(w2, 0.0), 1.0)
    inv_usum = 1.0 / ti.max(u0 + u1 + u2, BARY_SUM_EPS)
    c0, c1, c2 = u0 * inv_usum, u1 * inv_usum, u2 * inv_usum
    zp = 1.0 / (c0 * iz0 + c1 * iz1 + c2 * iz2)
    return keep, inside, ti.select(inside, d2, -d2), c0, c1, c2, zp


@ti.func
def _within_line(fs, fb, e: ti.template(), px, py):
    k = S_LINES + 3 * e
    return fs[fb, k] * px + fs[fb, k + 1] * py + fs[fb, k + 2] <= fs[fb, S_LIM]


@ti.func
def _in_box(fs, fb, px, py, dist: ti.template()):
    """Cheap, non-differentiable pre-test: is the pixel in the face's grown box (empty if culled) and,
    for distance cut-offs, not farther than the cut-off radius (plus a rounding margin) beyond one of
    its edge lines (the triangle lies wholly on the other side, so its distance is at least that)?
    Exact for the box (SoftRas's border check); conservative for the lines. Single-assignment: a
    re-stored local makes Taichi's autodiff give it a stack in every pass that calls this."""
    box = (px >= fs[fb, S_BOX]) & (px <= fs[fb, S_BOX + 1]) & (py >= fs[fb, S_BOX + 2]) & (py <= fs[fb, S_BOX + 3])
    if ti.static(dist == DIST_EUCLIDEAN):
        return box & _within_line(fs, fb, 0, px, py) & _within_line(fs, fb, 1, px, py) & _within_line(fs, fb, 2, px, py)
    else:
        return box


@ti.func
def _edge_line(ax, ay, bx, by, cx, cy):
    """Unit normal (nx, ny) and offset c of the line through a, b with n.p + c <= 0 on c's side;
    (0, 0, -1) (never rejects) when the edge or the triangle is degenerate."""
    ex, ey = bx - ax, by - ay
    length = ti.sqrt(ex * ex + ey * ey)
    nx, ny = ey / ti.max(length, 1e-30), -ex / ti.max(length, 1e-30)
    side = nx * (cx - ax) + ny * (cy - ay)
    sgn = ti.select(side > 0, -1.0, 1.0)
    good = length > 1e-12 and ti.abs(side) > 1e-12
    return ti.select(good, sgn * nx, 0.0), ti.select(good, sgn * ny, 0.0), ti.select(good, -sgn * (nx * ax + ny * ay), -1.0)


@ti.func
def _colours(front, zp, prm, fill_back: ti.template()):
    """Does a kept fragment take part in colour? (depth in [near, far]; front unless fill_back)"""
    if ti.static(fill_back):
        return (zp >= prm[P_NEAR]) & (zp <= prm[P_FAR])
    else:
        return (zp >= prm[P_NEAR]) & (zp <= prm[P_FAR]) & front


@ti.func
def _coverage(xs, inside, dist: ti.template()):
    """D of a kept fragment from x = delta d^2 / sigma (>= -ln(1/dist_eps - 1): exp(-|x|) is finite)
    and log(1 - D) = -softplus(x), both from one exp(-|x|): D = 1/(1+e) for x >= 0, e/(1+e) below;
    softplus(x) = max(x, 0) + log(1 + e). Hard distances: D = inside, log(1 - D) = 0 (unused)."""
    if ti.static(dist == DIST_HARD):
        return ti.select(inside, 1.0, 0.0), 0.0 * xs
    else:
        e = ti.exp(-ti.abs(xs))
        r = 1.0 / (1.0 + e)
        return ti.select(xs >= 0.0, r, e * r), -(ti.max(xs, 0.0) + ti.log(1.0 + e))


@ti.func
def _wrap(i, n, wrap: ti.template()):
    if ti.static(wrap == WRAP_REPEAT):
        return ((i % n) + n) % n
    else:
        return ti.min(ti.max(i, 0), n - 1)


@ti.func
def _texel(f: ti.template(), fb, b, c0, c1, c2, ch, m: ti.template()):
    """Colour channel ch of face fb = b*F + f at clipped barycentrics (c0, c1, c2).

    surface: texel of ``tex`` (R*R per face, SoftRas's layout); vertex: ``tex`` corners interpolated;
    uv: the image ``tex`` (B, 3, TH, TW) sampled bilinearly at the interpolated per-corner UVs (v up:
    row 0 of the image is v = 1; pixel centres at (i + 0.5) / size)."""
    tex = ti.static(f.tex)
    if ti.static(m.texmode == TEX_VERTEX):
        return c0 * tex[(fb * 3 + 0) * 3 + ch] + c1 * tex[(fb * 3 + 1) * 3 + ch] + c2 * tex[(fb * 3 + 2) * 3 + ch]
    elif ti.static(m.texmode == TEX_UV):
        TH, TW = f.dims[D_TH], f.dims[D_TW]
        uv = ti.static(f.uv)
        u = c0 * uv[fb * 6 + 0] + c1 * uv[fb * 6 + 2] + c2 * uv[fb * 6 + 4]
        v = c0 * uv[fb * 6 + 1] + c1 * uv[fb * 6 + 3] + c2 * uv[fb * 6 + 5]
        x = u * TW - 0.5
        y = (1.0 - v) * TH - 0.5
        xf, yf = ti.floor(x), ti.floor(y)
        fx, fy = x - xf, y - yf
        ix, iy = ti.cast(xf, ti.i32), ti.cast(yf, ti.i32)
        x0, x1 = _wrap(ix, TW, m.wrap), _wrap(ix + 1, TW, m.wrap)
        y0, y1 = _wrap(iy, TH, m.wrap), _wrap(iy + 1, TH, m.wrap)
        base = (b * 3 + ch) * TH
        return (
            (1.0 - fx) * (1.0 - fy) * tex[(base + y0) * TW + x0]
            + fx * (1.0 - fy) * tex[(base + y0) * TW + x1]
            + (1.0 - fx) * fy * tex[(base + y1) * TW + x0]
            + fx * fy * tex[(base + y1) * TW + x1]
        )
    else:
        R = f.dims[D_R]
        wx = ti.min(ti.cast(ti.floor(c0 * R), ti.i32), R - 1)
        wy = ti.min(ti.cast(ti.floor(c1 * R), ti.i32), R - 1)
        k = ti.select((1.0 - c2) * R - wx - wy > 1, (R - 1 - wy) * R + (R - 1 - wx), wy * R + wx)
        return tex[(fb * R * R + k) * 3 + ch]


@ti.func
def _corners(fv, fb):
    base = fb * 9
    return (fv[base + 0], fv[base + 1], fv[base + 3], fv[base + 4], fv[base + 6], fv[base + 7],
            fv[base + 2], fv[base + 5], fv[base + 8])


@ti.func
def _stored_fragment(f: ti.template(), fb, px, py, dist: ti.template()):
    """``_fragment`` from the face's stored setup only (no differentiable loads, so no adjoints)."""
    s = ti.static(f.fs)
    return _fragment(
        px, py, s[fb, S_XY], s[fb, S_XY + 1], s[fb, S_XY + 2], s[fb, S_XY + 3], s[fb, S_XY + 4], s[fb, S_XY + 5],
        s[fb, S_BARY], s[fb, S_BARY + 1], s[fb, S_BARY + 2], s[fb, S_BARY + 3],
        s[fb, S_INVZ], s[fb, S_INVZ + 1], s[fb, S_INVZ + 2], s[fb, S_INVLEN], s[fb, S_INVLEN + 1], s[fb, S_INVLEN + 2],
        f.prm[P_THR], (s[fb, S_KLINE], s[fb, S_KLINE + 1], s[fb, S_KLINE + 2]), dist,
    )


@ti.func
def _pixel_of(f: ti.template(), c, k):
    """Batch element, row, column (and whether it lies in the image) of pixel k of tile cell c."""
    lgx, lgy = f.dims[D_LOG_GX], f.dims[D_LOG_GY]
    tx, ty, b = c & ((1 << lgx) - 1), (c >> lgx) & ((1 << lgy) - 1), c >> (lgx + lgy)
    row, col = ty * TILE + (k >> TILE_LOG), tx * TILE + (k & (TILE - 1))
    return b, row, col, (row < f.dims[D_H]) & (col < f.dims[D_W])


@ti.func
def _chosen_fragment(f: ti.template(), p, sel):
    """Pixel p's chosen face ``sel`` (``psel`` >= 0) as a hard-distance fragment from the
    differentiable corners: batch element b, face fb = b*F + sel, the corners, 1/z, the clipped
    barycentrics and the depth (``accumulate_chosen`` and ``auxiliary``)."""
    F, H, W = f.dims[D_F], f.dims[D_H], f.dims[D_W]
    b, pix = p // (H * W), p % (H * W)
    px, py = _pixel_xy(f, pix % W, pix // W)
    fb = b * F + sel
    x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(f.fv, fb)
    a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
    keep, inside, sd2, c0, c1, c2, zp = _fragment(
        px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, f.prm[P_THR], (), DIST_HARD
    )
    return b, fb, x0, y0, x1, y1, x2, y2, z0, z1, z2, iz0, iz1, iz2, c0, c1, c2, zp
