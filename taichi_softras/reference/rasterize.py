"""Dense pure-torch SoftRas rasterizer: the specification the Taichi kernels are tested against.

Same signature and conventions as :func:`taichi_softras.soft_rasterize` (see
:mod:`taichi_softras.conventions`). Memory and work are O(B*F*H*W): tiny scenes only (``face_chunk``
bounds the memory of one step, not of the autograd graph). Imports only torch and the spec
(:mod:`taichi_softras.spec`): it runs where Taichi is absent.
"""

from __future__ import annotations

import torch

from ..spec import AUX_WIDTH, RasterSettings, check_extras, check_inputs, raster_outputs, split_softras_args
from ..spec import conventions as C


def _pixel_grid(s: RasterSettings, like: torch.Tensor):
    xs, ys = C.pixel_centres(s.height, s.width)
    x = torch.tensor(xs, dtype=like.dtype, device=like.device)
    y = torch.tensor(ys, dtype=like.dtype, device=like.device)
    py, px = torch.meshgrid(y, x, indexing="ij")
    return px.reshape(1, 1, -1), py.reshape(1, 1, -1)  # (1, 1, P)


def _segment_dist2(px, py, ax, ay, bx, by):
    ex, ey = bx - ax, by - ay
    len2 = torch.clamp(ex * ex + ey * ey, min=1e-30)
    t = torch.clamp(((px - ax) * ex + (py - ay) * ey) / len2, 0.0, 1.0)
    dx, dy = px - (ax + t * ex), py - (ay + t * ey)
    return dx * dx + dy * dy


def _softplus(x):
    """log(1 + exp(x)) without overflow (the kernels use this exact form)."""
    return torch.clamp(x, min=0.0) + torch.log1p(torch.exp(-torch.abs(x)))


def _fragments(fv: torch.Tensor, s: RasterSettings, px, py, padding=None):
    """Per (b, f, p) quantities. fv: (B, Fc, 3, 3); padding (B, Fc, 1) bool marks ragged padding.
    Returns a dict of (B, Fc, P) tensors."""
    x = [fv[:, :, i, 0, None] for i in range(3)]
    y = [fv[:, :, i, 1, None] for i in range(3)]
    z = [fv[:, :, i, 2, None] for i in range(3)]
    culled = (z[0] <= C.Z_CULL) | (z[1] <= C.Z_CULL) | (z[2] <= C.Z_CULL)
    if padding is not None:
        culled = culled | padding
    r = s.threshold**0.5
    xmin = torch.minimum(torch.minimum(x[0], x[1]), x[2])
    xmax = torch.maximum(torch.maximum(x[0], x[1]), x[2])
    ymin = torch.minimum(torch.minimum(y[0], y[1]), y[2])
    ymax = torch.maximum(torch.maximum(y[0], y[1]), y[2])
    in_box = (px >= xmin - r) & (px <= xmax + r) & (py >= ymin - r) & (py <= ymax + r)

    det = (y[1] - y[2]) * (x[0] - x[2]) + (x[2] - x[1]) * (y[0] - y[2])
    det = torch.where(det >= 0, torch.clamp(det, min=C.DET_EPS), torch.clamp(det, max=-C.DET_EPS))
    w0 = ((y[1] - y[2]) * (px - x[2]) + (x[2] - x[1]) * (py - y[2])) / det
    w1 = ((y[2] - y[0]) * (px - x[2]) + (x[0] - x[2]) * (py - y[2])) / det
    w2 = 1.0 - w0 - w1
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)

    if s.dist_func == "barycentric":
        d2 = torch.minimum(torch.minimum(w0, w1), w2) ** 2
    else:
        d2 = torch.minimum(
            torch.minimum(_segment_dist2(px, py, x[0], y[0], x[1], y[1]), _segment_dist2(px, py, x[1], y[1], x[2], y[2])),
            _segment_dist2(px, py, x[2], y[2], x[0], y[0]),
        )
    if s.dist_func == "hard":
        keep = in_box & ~culled & inside
    else:
        keep = in_box & ~culled & (inside | (d2 < s.threshold))
    sign = torch.where(inside, 1.0, -1.0).to(fv.dtype)
    # Skipped fragments get xs = 0 so no inf (and no NaN gradient) arises where they are masked out.
    xs = torch.where(keep, sign * d2 / s.sigma_val, torch.zeros_like(d2))
    D = 1.0 / (1.0 + torch.exp(-xs)) if s.dist_func != "hard" else inside.to(fv.dtype)

    # Clipped, renormalized barycentrics -> perspective-correct depth.
    wc = [torch.clamp(w, 0.0, 1.0) for w in (w0, w1, w2)]
    wsum = torch.clamp(wc[0] + wc[1] + wc[2], min=C.BARY_SUM_EPS)
    wc = [w / wsum for w in wc]
    zp = 1.0 / (wc[0] / z[0] + wc[1] / z[1] + wc[2] / z[2])
    zn = (s.far - zp) / (s.far - s.near)
    front = (y[2] - y[0]) * (x[1] - x[0]) < (y[1] - y[0]) * (x[2] - x[0])
    colours = keep & (zp >= s.near) & (zp <= s.far)
    if not s.fill_back:
        colours = colours & front
    # Perspective-correct barycentrics (auxiliary output).
    q = [wc[i] / z[i] * zp for i in range(3)]
    return dict(keep=keep, inside=inside, xs=xs, D=D, wc=wc, zp=zp, zn=zn, colours=colours, q=q)


def _wrap(i, n, mode):
    return torch.remainder(i, n) if mode == "repeat" else torch.clamp(i, 0, n - 1)


def _sample_uv(image: torch.Tensor, uvs: torch.Tensor, wc, wrap: str):
    """Bilinear colour (B, Fc, P, 3) of an image (B, 3, TH, TW) at UVs (B, Fc, 3, 2) interpolated by wc."""
    b, _, th, tw = image.shape
    u = sum(wc[i] * uvs[:, :, i, 0, None] for i in range(3))
    v = sum(wc[i] * uvs[:, :, i, 1, None] for i in range(3))
    x, y = u * tw - 0.5, (1.0 - v) * th - 0.5
    xf, yf = torch.floor(x), torch.floor(y)
    fx, fy = x - xf, y - yf
    ix, iy = xf.long(), yf.long()
    flat = image.reshape(b, 3, th * tw)

    def at(yy, xx):
        idx = (_wrap(yy, th, wrap) * tw + _wrap(xx, tw, wrap)).reshape(b, 1, -1).expand(b, 3, -1)
        return torch.gather(flat, 2, idx).reshape(b, 3, *x.shape[1:]).permute(0, 2, 3, 1)

    fx, fy = fx[..., None], fy[..., None]
    return (
        (1 - fx) * (1 - fy) * at(iy, ix) + fx * (1 - fy) * at(iy, ix + 1)
        + (1 - fx) * fy * at(iy + 1, ix) + fx * fy * at(iy + 1, ix + 1)
    )


def _sample(tex: torch.Tensor, wc, s: RasterSettings, res: int):
    """Colour (B, Fc, P, 3) of each fragment. tex: (B, Fc, T, 3); res: R of surface textures."""
    if s.texture_type == "vertex":
        return sum(wc[i][..., None] * tex[:, :, i, None, :] for i in range(3))
    wx = torch.clamp(torch.floor(wc[0] * res), max=res - 1)
    wy = torch.clamp(torch.floor(wc[1] * res), max=res - 1)
    lower = (1.0 - wc[2]) * res - wx - wy <= 1  # (1 - w2), not w0 + w1: exact on the edge w2 = 0
    idx = torch.where(lower, wy * res + wx, (res - 1 - wy) * res + (res - 1 - wx)).long()  # (B, Fc, P)
    b, fc, p = idx.shape
    return torch.gather(tex, 2, idx.reshape(b, fc, p, 1).expand(b, fc, p, 3))


def _unit(v):
    return v / torch.sqrt(torch.clamp((v * v).sum(-1, keepdim=True), min=1e-20))


def soft_rasterize(face_vertices: torch.Tensor, textures: torch.Tensor, *args, face_chunk: int = 64, **kwargs):
    """Dense reference of :func:`taichi_softras.soft_rasterize` (same arguments and returns)."""
    settings, extras = split_softras_args(args, kwargs)
    return rasterize(face_vertices, textures, settings, face_chunk=face_chunk, **extras)


def rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    s: RasterSettings = RasterSettings(),
    *,
    return_depth=False,
    deterministic=False,
    uvs=None,
    texture_wrap="repeat",
    num_faces=None,
    face_groups=None,
    vertex_normals=None,
    outputs=None,
    face_chunk: int = 64,
):
    """Dense reference of :func:`taichi_softras.ops.rasterize.rasterize` (same arguments and returns)."""
    del deterministic  # the reference is deterministic
    res = check_inputs(face_vertices, textures, s)
    uvs, nfc, grp, vn, extras = check_extras(
        face_vertices, s, res, uvs, texture_wrap, num_faces, face_groups, vertex_normals, outputs
    )
    b, nf = face_vertices.shape[:2]
    h, w = s.height, s.width
    px, py = _pixel_grid(s, face_vertices)
    like = face_vertices
    zeros = lambda *shape: torch.zeros(*shape, dtype=like.dtype, device=like.device)  # noqa: E731
    chunks = [(i, min(i + face_chunk, nf)) for i in range(0, nf, face_chunk)]
    fidx_all = torch.arange(nf, device=like.device)
    padding = (fidx_all[None, :] >= nfc[:, None].long())[..., None]  # (B, F, 1)

    def frags(lo, hi):
        return _fragments(face_vertices[:, lo:hi], s, px, py, padding[:, lo:hi])

    def colours_of(fr, lo, hi):
        if s.texture_type == "uv":
            return _sample_uv(textures, uvs[:, lo:hi], fr["wc"], extras.wrap)
        return _sample(textures[:, lo:hi], fr["wc"], s, res)

    # Pass 1 (no gradients): the softmax shift m, hard alpha and the hard-colour face per pixel.
    m = torch.full((b, 1, h * w), s.eps, dtype=like.dtype, device=like.device)
    any_hard = torch.zeros(b, 1, h * w, dtype=torch.bool, device=like.device)
    best_z = torch.full((b, 1, h * w), float("inf"), dtype=like.dtype, device=like.device)
    best_f = torch.full((b, 1, h * w), -1, dtype=torch.long, device=like.device)
    with torch.no_grad():
        for lo, hi in chunks:
            fr = frags(lo, hi)
            zn = torch.where(fr["colours"], fr["zn"], torch.full_like(fr["zn"], -float("inf")))
            m = torch.maximum(m, zn.amax(dim=1, keepdim=True))
            # D > 0.5 exactly when x > 0 (inside, for hard distances): no sigmoid rounding to 0.5.
            above = fr["inside"] if s.dist_func == "hard" else fr["xs"] > 0
            any_hard |= (fr["keep"] & above).any(dim=1, keepdim=True)
            cand = torch.where(fr["colours"] & fr["inside"], fr["zp"], torch.full_like(fr["zp"], float("inf")))
            cz, cf = cand.min(dim=1, keepdim=True)
            better = cz < best_z
            best_z = torch.where(better, cz, best_z)
            best_f = torch.where(better, cf + lo, best_f)

    # Pass 2 (differentiable): sums over faces.
    logsum, dsum = zeros(b, 1, h * w), zeros(b, 1, h * w)
    wsum, wzsum, wcsum = zeros(b, 1, h * w), zeros(b, 1, h * w), zeros(b, 1, h * w, 3)
    gsum = zeros(b, max(extras.groups, 1), h * w)
    aux = zeros(b, AUX_WIDTH, h * w)
    for lo, hi in chunks:
        fr = frags(lo, hi)
        keep = fr["keep"].to(like.dtype)
        logsum = logsum + (-_softplus(fr["xs"]) * keep).sum(1, keepdim=True)
        dsum = dsum + (fr["D"] * keep).sum(1, keepdim=True)
        if extras.groups:
            onehot = torch.nn.functional.one_hot(grp[:, lo:hi].long(), extras.groups).to(like.dtype)  # (B, Fc, G)
            per = -_softplus(fr["xs"]) * keep if s.dist_func != "hard" else fr["D"] * keep
            gsum = gsum + torch.einsum("bfg,bfp->bgp", onehot, per)
        if s.aggr_func_rgb == "softmax":
            expo = torch.where(fr["colours"], (fr["zn"] - m) / s.gamma_val, torch.full_like(fr["zn"], -float("inf")))
            wf = fr["D"] * torch.exp(expo)
        else:
            wf = (fidx_all[lo:hi].view(1, -1, 1) == best_f).to(like.dtype)
        col = colours_of(fr, lo, hi)
        wsum = wsum + wf.sum(1, keepdim=True)
        wzsum = wzsum + (wf * fr["zp"]).sum(1, keepdim=True)
        wcsum = wcsum + (wf[..., None] * col).sum(1, keepdim=True)
        if extras.aux:
            sel = (fidx_all[lo:hi].view(1, -1, 1) == best_f).to(like.dtype)  # (B, Fc, P)
            q = torch.stack(fr["q"], dim=-1)  # (B, Fc, P, 3)
            fvc = face_vertices[:, lo:hi]
            sn = _unit(torch.cross(fvc[:, :, 1] - fvc[:, :, 0], fvc[:, :, 2] - fvc[:, :, 0], dim=-1))  # (B, Fc, 3)
            parts = [q, q.new_zeros(q.shape), sn[:, :, None, :].expand_as(q)]
            if extras.normals:
                parts[1] = _unit(torch.einsum("bfpi,bfic->bfpc", q, vn[:, lo:hi]))
            stacked = torch.cat(parts, dim=-1)  # (B, Fc, P, AUX_WIDTH), in AUX_CHANNELS order
            aux = aux + torch.einsum("bfp,bfpc->bcp", sel, stacked)

    bg = torch.tensor(s.background_color, dtype=like.dtype, device=like.device)
    if s.aggr_func_rgb == "softmax":
        wb = torch.exp((s.eps - m) / s.gamma_val)
    else:
        wb = (best_f < 0).to(like.dtype)
    rgb = (wcsum + wb[..., None] * bg) / (wsum + wb)[..., None]  # (B, 1, P, 3)
    if s.aggr_func_alpha == "hard" or (s.dist_func == "hard" and s.aggr_func_alpha == "prod"):
        alpha = any_hard.to(like.dtype)
    elif s.aggr_func_alpha == "prod":
        alpha = 1.0 - torch.exp(logsum)
    else:
        alpha = dsum / torch.clamp(nfc, min=1).to(like.dtype).view(b, 1, 1)
    image = torch.cat([rgb[:, 0].permute(0, 2, 1), alpha], dim=1).reshape(b, 4, h, w)
    safe = torch.where(wsum > 0, wsum, torch.ones_like(wsum))
    depth = torch.where(wsum > 0, wzsum / safe, torch.full_like(wsum, s.far)).reshape(b, 1, h, w)
    if outputs is None:
        return (image, depth) if return_depth else image
    masks = 1.0 - torch.exp(gsum) if s.dist_func != "hard" else (gsum > 0).to(like.dtype)
    masks = masks.reshape(b, -1, h, w)[:, : extras.groups]
    return raster_outputs(outputs, image, depth, best_f.reshape(b, h, w), aux.reshape(b, AUX_WIDTH, h, w), masks)
