"""Taichi kernels of the soft rasterizer (no torch here).

Data lives in flat, grow-only fields owned by ``ops/rasterize.py``, handed to every kernel as one
:class:`Fields` tuple (a ``ti.template()``: Taichi keys compiled variants by the fields in it) with
the compile-time switches in a :class:`Modes` tuple:

* ``fv``   (B*F*9)        face vertices, x, y NDC and z depth per corner (grad)
* ``tex``  (B*F*T*3)      textures: T = R*R surface texels or 3 vertex colours, or a UV image
                          (B*3*TH*TW) with per-corner ``uv`` (B*F*6) (grad)
* ``nfc`` (B) faces per mesh (ragged batches); ``grp`` (B*F) face groups; ``vn`` (B*F*9) normals
* ``fs``   (B*F, NS)      per-face setup (``S_*``): grown box, edge lines, barycentric coefficients,
                          1/z, 1/|edge|^2, facing — computed once per face by ``setup``
* ``box``  (B*F, 6)       each face's inclusive tile range (x0, x1, y0, y1, 0, 0); empty when x0 > x1
* :class:`Lists` ``off``, ``lst``, ``cell``: faces binned per tile (``kernels/binning.py``), tile c
                          lists ``lst[off[c]:off[c+1]]`` in face order; ``cell[q]`` is entry q's tile
                          (a separate template argument: only the two passes that read it
                          recompile when the lists outgrow their fields)
* ``pm`` (B*P) softmax shift m, ``psel`` (B*P) nearest covering face, ``phard`` (B*P) hard alpha,
  ``pinv`` (B*P) 1 / sum(w) (forward-only: constants for gradients)
* ``acc``  (B*P, 7)       per-pixel sums: log(1-D), D, w, w*z, w*rgb (grad); ``accg`` per group
* ``out``  (B*P, 5)       RGBA + depth (grad); ``outg`` group masks; ``aux`` (B*P, 9) auxiliary
* ``prm``  (16)           real-valued settings (``P_*``), so new sigma/gamma never recompile
* ``dims`` (8)            integer sizes (``D_*``): B, F, H, W, R, TH, TW

Passes: ``setup`` -> binning -> ``rasterize`` (forward) -> ``compose`` [-> ``compose_groups``,
``auxiliary``]. Backward: ``auxiliary.grad``, ``compose_groups.grad``, ``compose.grad``, then
``accumulate.grad``.

``rasterize`` is forward-only: one thread per pixel walks its tile's list, keeping the sums in
locals (online softmax: the running max m rescales the sums when it grows), so the forward is one
pass and bit-repeatable. ``accumulate`` states the same sums as one flat loop over (tile-face pair,
pixel of the tile) that only ``+=`` into ``acc``; it is never run forward, only as
``accumulate.grad`` (Taichi autodiff), which recomputes each fragment and scatters adjoints. It has
no inner loop at all: Taichi's autodiff gives wrong gradients for values carried into a dynamic
inner loop (docs/design.md, "Taichi autodiff rules"), and the SPIR-V backends drop atomics inside
runtime-bound loops. ``compose`` reads the sums and the forward-only m (a constant for gradients).

Cost (covered pairs = (pixel, face) pairs within the cut-off; tile pairs = (tile, face) pairs):
``setup`` O(B*F); binning O(B*F + tile pairs); ``rasterize`` O(B*H*W + 64 * tile pairs) cheap box
and edge-line tests plus O(covered pairs) fragments; ``accumulate.grad`` the same; ``compose`` and
``auxiliary`` O(B*H*W). Extra memory O(B*H*W + B*F + tile pairs); nothing per (pixel, face).
"""

from typing import NamedTuple

import taichi as ti

from ..conventions import AUX_CHANNELS, BARY_SUM_EPS, DET_EPS, Z_CULL
from ..conventions import code as _code

TILE = 8
TILE_PIXELS = TILE * TILE

# Real settings in ``prm``.
P_SIGMA, P_GAMMA, P_EPS, P_NEAR, P_FAR, P_THR, P_RAD, P_BG = 0, 1, 2, 3, 4, 5, 6, 7  # P_BG..P_BG+2
P_INV_S = 10  # 1 / min(H, W): pixel centres by multiplication (a division per pixel costs ~15 cycles)
N_PRM = 16
#: Squared edge lengths below these count as points (see _face_terms).
EDGE2_MIN_F32, EDGE2_MIN_F64 = 1e-16, 1e-30
#: Bound on softmax exponents in the backward (exp(30) is finite in float32).
EXP_ARG_MAX = 30.0
# Integer sizes in ``dims``.
D_B, D_F, D_H, D_W, D_R, D_TH, D_TW = 0, 1, 2, 3, 4, 5, 6
D_LOG_GX, D_LOG_GY = 7, 8  # log2 of the tile grid's padded width and height (see tile_grid)
N_DIMS = 9


class Dims(NamedTuple):
    """The integer sizes written to ``dims``, in its layout (field i is ``dims[i]``, the ``D_*``)."""

    B: int
    F: int
    H: int
    W: int
    R: int  # surface texture resolution (R*R texels), 0 otherwise
    TH: int  # UV image height, 0 otherwise
    TW: int
    log_gx: int
    log_gy: int


assert Dims._fields.index("log_gy") == D_LOG_GY and len(Dims._fields) == N_DIMS


def tile_grid(height: int, width: int) -> tuple[int, int]:
    """log2 of the tile grid's columns and rows: tiles per side rounded up to a power of two, so
    that the per-(tile, pixel) passes find a tile's batch element and position by shifts and masks
    (runtime integer division costs ~30 cycles per pixel); the padding tiles hold no faces."""
    ntx, nty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    return max(ntx - 1, 0).bit_length(), max(nty - 1, 0).bit_length()
# Per-face setup in ``fs``.
S_BOX = 0  # xmin, xmax, ymin, ymax of the box grown by the cut-off radius (empty when culled)
S_LINES = 4  # 3 edge lines (nx, ny, c), each with the triangle on its side n.p + c <= 0
S_LIM = 13  # rejection threshold for the edge-line test
S_BARY = 14  # A0, B0, A1, B1: w0 = A0 (px - x2) + B0 (py - y2), w1 = A1 (px - x2) + B1 (py - y2)
S_INVZ = 18  # 1 / z of the three corners
S_INVLEN = 21  # 1 / |edge|^2 of edges 01, 12, 20
S_FRONT = 24  # 1.0 if front-facing
S_XY = 25  # x0, y0, x1, y1, x2, y2
S_KLINE = 31  # det^2 / |edge opposite corner i|^2: inside, d^2 = min_i w_i^2 k_i (see _dist2)
NS = 34

# Channels of ``aux`` (conventions.AUX_CHANNELS).
AUX_Q, AUX_N, AUX_S = (AUX_CHANNELS[name][0] for name in ("barycentrics", "normals", "screen_normals"))

# Compile-time mode codes: the index of the name in conventions' tables.
DIST_EUCLIDEAN, DIST_BARYCENTRIC, DIST_HARD = (_code("dist_func", n) for n in ("euclidean", "barycentric", "hard"))
ALPHA_PROD, ALPHA_SUM, ALPHA_HARD = (_code("aggr_func_alpha", n) for n in ("prod", "sum", "hard"))
RGB_SOFTMAX, RGB_HARD = (_code("aggr_func_rgb", n) for n in ("softmax", "hard"))
TEX_SURFACE, TEX_VERTEX, TEX_UV = (_code("texture_type", n) for n in ("surface", "vertex", "uv"))
WRAP_REPEAT, WRAP_CLAMP = (_code("texture_wrap", n) for n in ("repeat", "clamp"))


class Fields(NamedTuple):
    """Every field a call uses (see the module docstring)."""

    fv: object
    tex: object
    uv: object
    vn: object
    nfc: object
    grp: object
    fs: object
    box: object
    pm: object
    psel: object
    phard: object
    pinv: object
    acc: object
    accg: object
    out: object
    outg: object
    aux: object
    prm: object
    dims: object


class Lists(NamedTuple):
    """Faces binned per tile (kernels/binning.py): tile c lists ``lst[off[c]:off[c + 1]]``."""

    off: object
    lst: object
    cell: object


class Modes(NamedTuple):
    """Compile-time switches of a call."""

    dist: int
    alpha: int
    rgb: int
    texmode: int
    wrap: int
    fill_back: bool
    groups: bool  # face groups given (group masks)
    normals: bool  # vertex normals given (aux output)
    serial: bool  # one thread (deterministic=True)


# ---------------------------------------------------------------------------------------------
# Per-fragment maths, shared by every pass (single-assignment: see the autodiff rules)


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
    return ti.select(u <= 0.0 or point, qx * qx + qy * qy, ti.select(u >= 1.0, rx * rx + ry * ry, cross * cross * inv_len2))


@ti.func
def _softplus(x):
    return ti.max(x, 0.0) + ti.log(1.0 + ti.exp(-ti.abs(x)))


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
    inside = w0 > 0 and w1 > 0 and w2 > 0
    d2 = _dist2(px, py, x0, y0, x1, y1, x2, y2, l01, l12, l20, w0, w1, w2, lines, dist)
    keep = inside or (dist != DIST_HARD and d2 < thr)
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
    box = px >= fs[fb, S_BOX] and px <= fs[fb, S_BOX + 1] and py >= fs[fb, S_BOX + 2] and py <= fs[fb, S_BOX + 3]
    if ti.static(dist == DIST_EUCLIDEAN):
        return box and _within_line(fs, fb, 0, px, py) and _within_line(fs, fb, 1, px, py) and _within_line(fs, fb, 2, px, py)
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
        return zp >= prm[P_NEAR] and zp <= prm[P_FAR]
    else:
        return zp >= prm[P_NEAR] and zp <= prm[P_FAR] and front


@ti.func
def _coverage(xs, inside, dist: ti.template()):
    """D of a kept fragment from x = delta d^2 / sigma (>= -ln(1/dist_eps - 1): exp(-x) is finite)."""
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
    row, col = ty * TILE + (k >> 3), tx * TILE + (k & 7)
    return b, row, col, row < f.dims[D_H] and col < f.dims[D_W]


# ---------------------------------------------------------------------------------------------
# Kernels


@ti.kernel
def setup(f: ti.template(), cnt: ti.template(), n: ti.i32):
    """Per face: its setup ``fs``, its tile range ``box`` (empty if culled or off-screen) and the
    number of tiles in it ``cnt`` (binning's first pass, kernels/binning.py ``count``)."""
    for i in range(n):
        F, H, W = f.dims[D_F], f.dims[D_H], f.dims[D_W]
        b = i // F
        x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(f.fv, i)
        rad = f.prm[P_RAD]
        s = ti.cast(ti.min(H, W), f.fv.dtype)
        xmin, xmax = ti.min(x0, x1, x2) - rad, ti.max(x0, x1, x2) + rad
        ymin, ymax = ti.min(y0, y1, y2) - rad, ti.max(y0, y1, y2) + rad
        # Pixel centre k sits at x = (2k + 1 - W) / S, so k = (x S + W - 1) / 2 (rows likewise, y down).
        # Pixels k with lo <= k <= hi, widened by 0.01 px against rounding (the exact per-pixel box
        # test decides); clamp before the int cast (huge NDC near the eye).
        c0 = ti.cast(ti.ceil(ti.max((xmin * s + W - 1) * 0.5 - 0.01, -2.0)), ti.i32)
        c1 = ti.cast(ti.floor(ti.min((xmax * s + W - 1) * 0.5 + 0.01, W + 2.0)), ti.i32)
        r0 = ti.cast(ti.ceil(ti.max((H - 1 - ymax * s) * 0.5 - 0.01, -2.0)), ti.i32)
        r1 = ti.cast(ti.floor(ti.min((H - 1 - ymin * s) * 0.5 + 0.01, H + 2.0)), ti.i32)
        c0, c1 = ti.max(c0, 0), ti.min(c1, W - 1)
        r0, r1 = ti.max(r0, 0), ti.min(r1, H - 1)
        # Culled: a corner at or behind the eye, or padding beyond this mesh's face count (ragged).
        culled = z0 <= Z_CULL or z1 <= Z_CULL or z2 <= Z_CULL or i - b * F >= f.nfc[b]
        empty = culled or c0 > c1 or r0 > r1
        f.box[i, 0] = ti.select(empty, 1, c0 // TILE)
        f.box[i, 1] = ti.select(empty, 0, c1 // TILE)
        f.box[i, 2], f.box[i, 3] = r0 // TILE, r1 // TILE
        cnt[i] = ti.select(empty, 0, (c1 // TILE - c0 // TILE + 1) * (r1 // TILE - r0 // TILE + 1))
        f.box[i, 4], f.box[i, 5] = 0, 0
        fs = ti.static(f.fs)
        fs[i, S_BOX] = ti.select(culled, 1.0, xmin)
        fs[i, S_BOX + 1] = ti.select(culled, -1.0, xmax)
        fs[i, S_BOX + 2], fs[i, S_BOX + 3] = ymin, ymax
        fs[i, S_LINES + 0], fs[i, S_LINES + 1], fs[i, S_LINES + 2] = _edge_line(x0, y0, x1, y1, x2, y2)
        fs[i, S_LINES + 3], fs[i, S_LINES + 4], fs[i, S_LINES + 5] = _edge_line(x1, y1, x2, y2, x0, y0)
        fs[i, S_LINES + 6], fs[i, S_LINES + 7], fs[i, S_LINES + 8] = _edge_line(x2, y2, x0, y0, x1, y1)
        # Rejection threshold: the cut-off radius plus a margin for rounding in the line test.
        scale = ti.max(ti.abs(x0), ti.abs(x1), ti.abs(x2), ti.abs(y0), ti.abs(y1), ti.abs(y2), 1.0)
        fs[i, S_LIM] = rad * 1.001 + scale * 1e-5
        a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
        fs[i, S_BARY], fs[i, S_BARY + 1], fs[i, S_BARY + 2], fs[i, S_BARY + 3] = a0, b0, a1, b1
        if culled:  # keep 1/z finite for faces no pass reads
            iz0, iz1, iz2 = 1.0, 1.0, 1.0
        fs[i, S_INVZ], fs[i, S_INVZ + 1], fs[i, S_INVZ + 2] = iz0, iz1, iz2
        fs[i, S_INVLEN], fs[i, S_INVLEN + 1], fs[i, S_INVLEN + 2] = l01, l12, l20
        det = _clamped_det(x0, y0, x1, y1, x2, y2)
        exact = ti.abs(det) > DET_EPS  # a clamped determinant scales the barycentrics: no shortcut
        fs[i, S_KLINE] = ti.select(exact, det * det * l12, -1.0)
        fs[i, S_KLINE + 1], fs[i, S_KLINE + 2] = det * det * l20, det * det * l01
        fs[i, S_XY], fs[i, S_XY + 1], fs[i, S_XY + 2], fs[i, S_XY + 3], fs[i, S_XY + 4], fs[i, S_XY + 5] = x0, y0, x1, y1, x2, y2
        fs[i, S_FRONT] = ti.select((y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0), 1.0, 0.0)


@ti.kernel
def rasterize(f: ti.template(), t: ti.template(), m: ti.template(), n_cells: ti.i32):
    """Forward only: per pixel, the sums ``acc`` (and ``accg``) over the faces binned to its tile,
    the softmax shift m (``pm``), the nearest covering colouring face (``psel``, ties to the lower
    index) and the hard alpha (``phard``). ``accg`` must be zeroed before."""
    ti.loop_config(serialize=m.serial)
    for c, k in ti.ndrange(n_cells, TILE_PIXELS):
        b, row, col, on_image = _pixel_of(f, c, k)
        if on_image:
            F, H, W = f.dims[D_F], f.dims[D_H], f.dims[D_W]
            p = (b * H + row) * W + col
            px, py = _pixel_xy(f, col, row)
            prm = ti.static(f.prm)
            far, near, gamma = prm[P_FAR], prm[P_NEAR], prm[P_GAMMA]
            zero = 0.0 * px
            log_sum, d_sum, hard = zero, zero, zero
            mx = zero + prm[P_EPS]
            w_sum, wz_sum, r_sum, g_sum, b_sum = zero, zero, zero, zero, zero
            best_z, best_f = far * 2.0 + 1.0, -1
            for j in range(t.off[c], t.off[c + 1]):
                fi = t.lst[j]
                fb = b * F + fi
                if _in_box(f.fs, fb, px, py, m.dist):
                    keep, inside, sd2, c0, c1, c2, zp = _stored_fragment(f, fb, px, py, m.dist)
                    if keep:
                        xs = sd2 / prm[P_SIGMA]
                        D = _coverage(xs, inside, m.dist)
                        if ti.static(m.dist != DIST_HARD):
                            log_sum += -_softplus(xs)
                        d_sum += D
                        # D > 0.5 exactly when delta d^2 > 0 (or inside, for hard distances); testing
                        # the sigmoid would round a tiny positive x to 0.5 and miss it.
                        if sd2 > 0 or (ti.static(m.dist == DIST_HARD) and inside):
                            hard = 1.0
                        if ti.static(m.groups):  # plain load/store: one thread owns the pixel
                            g = f.grp[fb]
                            if ti.static(m.dist != DIST_HARD):
                                f.accg[p, g] = f.accg[p, g] - _softplus(xs)
                            else:
                                f.accg[p, g] = f.accg[p, g] + D
                        if _colours(f.fs[fb, S_FRONT] > 0.5, zp, prm, m.fill_back):
                            if ti.static(m.rgb == RGB_SOFTMAX):
                                zn = (far - zp) / (far - near)
                                if zn > mx:  # online softmax: rescale the sums to the new max
                                    scale = ti.exp((mx - zn) / gamma)
                                    w_sum *= scale
                                    wz_sum *= scale
                                    r_sum *= scale
                                    g_sum *= scale
                                    b_sum *= scale
                                    mx = zn
                                w = D * ti.exp((zn - mx) / gamma)
                                w_sum += w
                                wz_sum += w * zp
                                r_sum += w * _texel(f, fb, b, c0, c1, c2, 0, m)
                                g_sum += w * _texel(f, fb, b, c0, c1, c2, 1, m)
                                b_sum += w * _texel(f, fb, b, c0, c1, c2, 2, m)
                            if inside and (zp < best_z or (zp == best_z and fi < best_f)):
                                best_z, best_f = zp, fi
            if ti.static(m.rgb == RGB_HARD):
                if best_f >= 0:
                    fb = b * F + best_f
                    keep, inside, sd2, c0, c1, c2, zp = _stored_fragment(f, fb, px, py, m.dist)
                    w_sum, wz_sum = 1.0 + zero, zp
                    r_sum = _texel(f, fb, b, c0, c1, c2, 0, m)
                    g_sum = _texel(f, fb, b, c0, c1, c2, 1, m)
                    b_sum = _texel(f, fb, b, c0, c1, c2, 2, m)
            acc = ti.static(f.acc)
            acc[p, 0], acc[p, 1], acc[p, 2], acc[p, 3] = log_sum, d_sum, w_sum, wz_sum
            acc[p, 4], acc[p, 5], acc[p, 6] = r_sum, g_sum, b_sum
            f.pm[p], f.psel[p], f.phard[p] = mx, best_f, hard
            f.pinv[p] = ti.select(w_sum > 0, 1.0 / w_sum, 0.0)


@ti.func
def _accumulate_fragment(f: ti.template(), m: ti.template(), b, fi, fb, row, col, px, py):
    """The differentiable part of ``accumulate`` for one fragment: straight-line code whose sums are
    gated by ``ti.select`` (nested ``if``s around differentiable code make Taichi's reverse pass keep
    a stack per branch value and run ~4x slower: docs/design.md). Values of fragments a select
    discards are kept finite (x = 0 there), so their zero adjoints cannot meet an inf."""
    H, W = f.dims[D_H], f.dims[D_W]
    p = (b * H + row) * W + col
    prm = ti.static(f.prm)
    x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(f.fv, fb)
    a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
    keep, inside, sd2, c0, c1, c2, zp = _fragment(
        px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, prm[P_THR], (), m.dist
    )
    xs = ti.select(keep, sd2 / prm[P_SIGMA], 0.0)
    D = _coverage(xs, inside, m.dist)
    if ti.static(m.dist != DIST_HARD):
        f.acc[p, 0] += ti.select(keep, -_softplus(xs), 0.0)
    f.acc[p, 1] += ti.select(keep, D, 0.0)
    if ti.static(m.groups):
        if ti.static(m.dist != DIST_HARD):
            f.accg[p, f.grp[fb]] += ti.select(keep, -_softplus(xs), 0.0)
        else:
            f.accg[p, f.grp[fb]] += ti.select(keep, D, 0.0)
    if ti.static(m.rgb == RGB_SOFTMAX):
        colours = keep and _colours(f.fs[fb, S_FRONT] > 0.5, zp, prm, m.fill_back)
        zn = (prm[P_FAR] - zp) / (prm[P_FAR] - prm[P_NEAR])
        # zn <= m up to rounding (the forward read the stored setup, this pass recomputes it, so the
        # max fragment may land a few ulps above m: its gradient must survive). The bound only keeps
        # a fragment rounded very differently (or a discarded one) from overflowing exp.
        arg = (zn - f.pm[p]) / prm[P_GAMMA]
        w = ti.select(colours, D * ti.exp(ti.select(arg > EXP_ARG_MAX, EXP_ARG_MAX, arg)), 0.0)
        f.acc[p, 2] += w
        f.acc[p, 3] += w * zp
        for ch in ti.static(range(3)):
            f.acc[p, 4 + ch] += w * _texel(f, fb, b, c0, c1, c2, ch, m)
    # Hard colours: the one chosen face per pixel is accumulated by ``accumulate_chosen``.


@ti.kernel
def accumulate(f: ti.template(), t: ti.template(), m: ti.template(), n_pairs: ti.i32):
    """The sums of ``rasterize`` as a flat loop over (tile-face pair, pixel of the tile) that only
    ``+=`` into ``acc``/``accg``; run as ``accumulate.grad`` only (see the module docstring)."""
    ti.loop_config(serialize=m.serial)
    for q, k in ti.ndrange(n_pairs, TILE_PIXELS):
        c = t.cell[q]
        b, row, col, on_image = _pixel_of(f, c, k)
        fi = t.lst[q]
        fb = b * f.dims[D_F] + fi
        px, py = _pixel_xy(f, col, row)
        # One `if`, on a gradient-free test (stored setup only): the differentiable loads, whose
        # adjoints are atomics, run only for fragments that take part.
        take = False
        if on_image and _in_box(f.fs, fb, px, py, m.dist):
            take = _stored_fragment(f, fb, px, py, m.dist)[0]
        if take:
            _accumulate_fragment(f, m, b, fi, fb, row, col, px, py)


@ti.kernel
def accumulate_chosen(f: ti.template(), m: ti.template(), n: ti.i32):
    """Hard colours: the colour and depth of each pixel's chosen face (``psel``), the rest of the
    sums of ``rasterize`` (``acc`` 2..6). O(B*H*W); run as ``accumulate_chosen.grad`` only."""
    for p in range(n):
        sel = f.psel[p]
        if sel >= 0:
            F, H, W = f.dims[D_F], f.dims[D_H], f.dims[D_W]
            b, pix = p // (H * W), p % (H * W)
            px, py = _pixel_xy(f, pix % W, pix // W)
            fb = b * F + sel
            x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(f.fv, fb)
            a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
            keep, inside, sd2, c0, c1, c2, zp = _fragment(
                px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, f.prm[P_THR], (), DIST_HARD
            )
            f.acc[p, 2] += 1.0
            f.acc[p, 3] += zp
            for ch in ti.static(range(3)):
                f.acc[p, 4 + ch] += _texel(f, fb, b, c0, c1, c2, ch, m)


@ti.func
def _background_weight(mx, sel, prm, rgb: ti.template()):
    if ti.static(rgb == RGB_HARD):
        return ti.select(sel < 0, 1.0, 0.0)
    else:
        return ti.exp((prm[P_EPS] - mx) / prm[P_GAMMA])


@ti.kernel
def compose(f: ti.template(), m: ti.template(), n: ti.i32):
    """RGBA + depth from the sums: out[p] = (r, g, b, alpha, depth)."""
    for p in range(n):
        acc, out, prm = ti.static(f.acc, f.out, f.prm)
        H, W = f.dims[D_H], f.dims[D_W]
        wsum = acc[p, 2]
        wb = _background_weight(f.pm[p], f.psel[p], prm, m.rgb)
        # wsum + wb > 0: the fragment that set m has weight D >= dist_eps (softmax), and the hard
        # mode has weight 1 for the face or the background.
        for ch in ti.static(range(3)):
            out[p, ch] = (acc[p, 4 + ch] + wb * prm[P_BG + ch]) / (wsum + wb)
        if ti.static(m.alpha == ALPHA_HARD or (m.alpha == ALPHA_PROD and m.dist == DIST_HARD)):
            out[p, 3] = f.phard[p]
        elif ti.static(m.alpha == ALPHA_PROD):
            out[p, 3] = 1.0 - ti.exp(acc[p, 0])
        else:
            out[p, 3] = acc[p, 1] / ti.max(f.nfc[p // (H * W)], 1)
        # Soft depth sum(w z) / sum(w), both scaled by 1 / sum(w) from the forward (a constant here):
        # faint faces (w ~ e^-60 of the background) would otherwise overflow the division's adjoint
        # (1 / sum(w)^2) into inf and NaN gradients.
        inv = f.pinv[p]
        ratio = (acc[p, 3] * inv) / ti.select(wsum > 0, wsum * inv, 1.0)  # finite either way
        out[p, 4] = ti.select(wsum > 0, ratio, prm[P_FAR])


@ti.kernel
def compose_groups(f: ti.template(), m: ti.template(), n: ti.i32, G: ti.i32):
    """Soft silhouette per face group. A flat (pixel, group) loop: an inner dynamic loop over the
    groups would carry values into a loop, which Taichi's autodiff gets wrong."""
    for p, g in ti.ndrange(n, G):
        if ti.static(m.dist != DIST_HARD):
            f.outg[p, g] = 1.0 - ti.exp(f.accg[p, g])
        else:
            f.outg[p, g] = ti.select(f.accg[p, g] > 0, 1.0, 0.0)


@ti.func
def _unit(x, y, z):
    n = ti.sqrt(ti.max(x * x + y * y + z * z, 1e-20))
    return x / n, y / n, z / n


@ti.kernel
def auxiliary(f: ti.template(), m: ti.template(), n: ti.i32):
    """Per pixel, for the nearest covering face (``psel``): perspective-correct barycentrics (aux
    channels AUX_Q..), interpolated unit vertex normals ``vn`` (AUX_N.., if ``normals``) and the unit
    screen-space face normal cross(v1 - v0, v2 - v0) of (x_ndc, y_ndc, z) (AUX_S..). Zeros elsewhere.
    O(B*H*W)."""
    for p in range(n):
        sel = f.psel[p]
        if sel >= 0:
            F, H, W = f.dims[D_F], f.dims[D_H], f.dims[D_W]
            b, pix = p // (H * W), p % (H * W)
            px, py = _pixel_xy(f, pix % W, pix // W)
            fb = b * F + sel
            fv, vn, aux = ti.static(f.fv, f.vn, f.aux)
            x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(fv, fb)
            a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
            keep, inside, sd2, c0, c1, c2, zp = _fragment(
                px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, f.prm[P_THR], (), DIST_HARD
            )
            q0, q1, q2 = c0 * iz0 * zp, c1 * iz1 * zp, c2 * iz2 * zp
            aux[p, AUX_Q + 0], aux[p, AUX_Q + 1], aux[p, AUX_Q + 2] = q0, q1, q2
            if ti.static(m.normals):
                base = fb * 9
                nx = q0 * vn[base + 0] + q1 * vn[base + 3] + q2 * vn[base + 6]
                ny = q0 * vn[base + 1] + q1 * vn[base + 4] + q2 * vn[base + 7]
                nz = q0 * vn[base + 2] + q1 * vn[base + 5] + q2 * vn[base + 8]
                aux[p, AUX_N + 0], aux[p, AUX_N + 1], aux[p, AUX_N + 2] = _unit(nx, ny, nz)
            ex, ey, ez = x1 - x0, y1 - y0, z1 - z0
            gx, gy, gz = x2 - x0, y2 - y0, z2 - z0
            aux[p, AUX_S + 0], aux[p, AUX_S + 1], aux[p, AUX_S + 2] = _unit(ey * gz - ez * gy, ez * gx - ex * gz, ex * gy - ey * gx)
