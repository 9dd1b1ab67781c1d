"""Taichi kernels of the soft rasterizer (no torch here): the passes over the fields of
:mod:`.raster_layout` (``Fields``, ``Lists``, ``Modes``), built from the per-fragment maths of
:mod:`.fragment`.

Passes: ``setup`` -> binning -> ``rasterize`` (forward) -> ``compose`` [-> ``compose_groups``,
``auxiliary``]. Backward: ``auxiliary.grad``, ``compose_groups.grad``, ``compose.grad``, then
``gather_corners`` (forward), ``accumulate.grad`` and ``gather_corners.grad``.

``rasterize`` is forward-only: one thread per pixel walks its tile's list, keeping the sums in
locals (online softmax: the running max m rescales the sums when it grows), so the forward is one
pass and bit-repeatable. ``accumulate`` states the same sums as a loop over tile-face pairs (one
thread each) and the 64 pixels of the pair's tile (an inner loop with a constant bound) that only
``+=`` into ``acc``; it is never run forward, only as ``accumulate.grad`` (Taichi autodiff), which
recomputes each fragment. Its differentiable inputs are loaded inside the inner loop (Taichi's
autodiff gives wrong gradients for float values carried into an inner loop: docs/design.md,
"Taichi autodiff rules"); the face's corners come from ``pv``, the pair's own copy
(``gather_corners``), whose adjoint is indexed by the parallel loop's index alone, so Taichi
writes it without atomics; ``gather_corners.grad`` adds it to the face once per pair instead of
nine atomics per fragment. ``compose`` reads the sums and the forward-only m (a constant for
gradients).

Cost (covered pairs = (pixel, face) pairs within the cut-off; tile pairs = (tile, face) pairs):
``setup`` O(B*F); binning O(B*F + tile pairs); ``rasterize`` O(B*H*W + 64 * tile pairs) cheap box
and edge-line tests plus O(covered pairs) fragments; ``accumulate.grad`` 64 integer box tests per
tile pair plus O(covered pairs) fragments; ``compose`` and ``auxiliary`` O(B*H*W). Extra memory
O(B*H*W + B*F + tile pairs); nothing per (pixel, face).
"""

import taichi as ti

from ..conventions import DET_EPS, Z_CULL
from .fragment import (
    _chosen_fragment, _clamped_det, _colours, _corners, _coverage, _edge_line, _face_terms, _fragment, _in_box,
    _pixel_of, _pixel_xy, _stored_fragment, _texel,
)
from .raster_layout import (
    ALPHA_HARD, ALPHA_PROD, AUX_N, AUX_Q, AUX_S, DIST_HARD, D_F, D_H, D_W, EXP_ARG_MAX, P_BG, P_EPS, P_FAR, P_GAMMA,
    P_NEAR, P_RAD, P_SIGMA, P_THR, RGB_HARD, RGB_SOFTMAX, S_BARY, S_BOX, S_FRONT, S_INVLEN, S_INVZ, S_KLINE, S_LIM,
    S_LINES, S_XY, TILE, TILE_PIXELS,
)


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
        f.pbox[i, 0], f.pbox[i, 1], f.pbox[i, 2], f.pbox[i, 3] = ti.select(empty, 1, c0), ti.select(empty, 0, c1), r0, r1
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
                        D, lg = _coverage(xs, inside, m.dist)
                        if ti.static(m.log_sum):
                            log_sum += lg
                        if ti.static(m.d_sum):
                            d_sum += D
                        # D > 0.5 exactly when delta d^2 > 0 (or inside, for hard distances); testing
                        # the sigmoid would round a tiny positive x to 0.5 and miss it.
                        if sd2 > 0 or (ti.static(m.dist == DIST_HARD) and inside):
                            hard = 1.0
                        if ti.static(m.groups):  # plain load/store: one thread owns the pixel
                            g = f.grp[fb]
                            if ti.static(m.dist != DIST_HARD):
                                f.accg[p, g] = f.accg[p, g] + lg
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
def _accumulate_fragment(f: ti.template(), m: ti.template(), b, fi, fb, row, col, px, py, x0, y0, x1, y1, x2, y2, z0,
                         z1, z2):
    """The differentiable part of ``accumulate`` for one fragment: straight-line code whose sums are
    gated by ``ti.select`` (nested ``if``s around differentiable code make Taichi's reverse pass keep
    a stack per branch value and run ~4x slower: docs/design.md). Values of fragments a select
    discards are kept finite (x = 0 there), so their zero adjoints cannot meet an inf."""
    H, W = f.dims[D_H], f.dims[D_W]
    p = (b * H + row) * W + col
    prm = ti.static(f.prm)
    a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20 = _face_terms(x0, y0, x1, y1, x2, y2, z0, z1, z2, f.fv.dtype)
    keep, inside, sd2, c0, c1, c2, zp = _fragment(
        px, py, x0, y0, x1, y1, x2, y2, a0, b0, a1, b1, iz0, iz1, iz2, l01, l12, l20, prm[P_THR], (), m.dist
    )
    xs = ti.select(keep, sd2 / prm[P_SIGMA], 0.0)
    D, lg = _coverage(xs, inside, m.dist)
    if ti.static(m.log_sum):
        f.acc[p, 0] += ti.select(keep, lg, 0.0)
    if ti.static(m.d_sum):
        f.acc[p, 1] += ti.select(keep, D, 0.0)
    if ti.static(m.groups):
        if ti.static(m.dist != DIST_HARD):
            f.accg[p, f.grp[fb]] += ti.select(keep, lg, 0.0)
        else:
            f.accg[p, f.grp[fb]] += ti.select(keep, D, 0.0)
    if ti.static(m.rgb == RGB_SOFTMAX):
        colours = keep & _colours(f.fs[fb, S_FRONT] > 0.5, zp, prm, m.fill_back)
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
def gather_corners(f: ti.template(), t: ti.template(), pv: ti.template(), n_pairs: ti.i32):
    """Per tile-face pair q, its face's corners into ``pv`` (nine fields of n_pairs, differentiable),
    in the order of ``_corners``: x0, y0, x1, y1, x2, y2, z0, z1, z2. Its ``.grad`` adds each pair's
    corner adjoints into ``fv.grad``: serialized, so the sums are bit-repeatable and no two threads
    contend for ``fv.grad``'s cache lines (run in parallel it was no faster on the 64-view training
    batch and made a single 64^2 view's backward 20-40 % slower)."""
    ti.loop_config(serialize=True)
    for q in range(n_pairs):
        fb = _pixel_of(f, t.cell[q], 0)[0] * f.dims[D_F] + t.lst[q]
        x0, y0, x1, y1, x2, y2, z0, z1, z2 = _corners(f.fv, fb)  # in _corners' order
        pv[0][q], pv[1][q], pv[2][q], pv[3][q], pv[4][q], pv[5][q] = x0, y0, x1, y1, x2, y2
        pv[6][q], pv[7][q], pv[8][q] = z0, z1, z2


@ti.kernel
def accumulate(f: ti.template(), t: ti.template(), pv: ti.template(), m: ti.template(), n_pairs: ti.i32):
    """The sums of ``rasterize``, one thread per tile-face pair q and its tile's pixels in an inner
    loop, only ``+=`` into ``acc``/``accg``; run as ``accumulate.grad`` only (see the module
    docstring: ``pv`` is the pair's copy of its face's corners, loaded inside the inner loop)."""
    ti.loop_config(serialize=m.serial)
    for q in range(n_pairs):
        c = t.cell[q]
        fi = t.lst[q]
        for k in range(TILE_PIXELS):
            b, row, col, _ = _pixel_of(f, c, k)
            fb = b * f.dims[D_F] + fi
            pb = ti.static(f.pbox)
            # Most of a tile's pixels lie outside a small face's box: reject them on the face's pixel
            # range (integers; within the image) before any float work. Then one `if`, on a
            # gradient-free test (stored setup only), around the differentiable part.
            in_range = (col >= pb[fb, 0]) & (col <= pb[fb, 1]) & (row >= pb[fb, 2]) & (row <= pb[fb, 3])
            px, py = _pixel_xy(f, col, row)
            take = False
            if in_range:
                take = _in_box(f.fs, fb, px, py, m.dist) & _stored_fragment(f, fb, px, py, m.dist)[0]
            if take:
                _accumulate_fragment(f, m, b, fi, fb, row, col, px, py, pv[0][q], pv[1][q], pv[2][q], pv[3][q], pv[4][q],
                                     pv[5][q], pv[6][q], pv[7][q], pv[8][q])


@ti.kernel
def accumulate_chosen(f: ti.template(), m: ti.template(), n: ti.i32):
    """Hard colours: the colour and depth of each pixel's chosen face (``psel``), the rest of the
    sums of ``rasterize`` (``acc`` 2..6). O(B*H*W); run as ``accumulate_chosen.grad`` only."""
    for p in range(n):
        sel = f.psel[p]
        if sel >= 0:
            b, fb, x0, y0, x1, y1, x2, y2, z0, z1, z2, iz0, iz1, iz2, c0, c1, c2, zp = _chosen_fragment(f, p, sel)
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
            vn, aux = ti.static(f.vn, f.aux)
            b, fb, x0, y0, x1, y1, x2, y2, z0, z1, z2, iz0, iz1, iz2, c0, c1, c2, zp = _chosen_fragment(f, p, sel)
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
