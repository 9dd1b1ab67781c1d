"""Surface textures: SoftRas's R x R texel layout, sampling UV image maps into texels, and packing
texels back into an image atlas (for saving textured OBJ files).

Texel layout (see :mod:`taichi_softras.conventions`): a face's R*R texels tile its barycentric
triangle with R*(R+1)/2 "lower" cells (index ``w_y*R + w_x``, w_x + w_y <= R - 1) and R*(R-1)/2
"upper" cells stored at the mirrored index. UV maps follow SoftRas's loader: image rows are flipped
(v points up), UVs above 1 wrap (``u % 1``), and the image is sampled bilinearly at
``(u * (W - 1), v * (H - 1))``.
"""

from __future__ import annotations

import math

import torch


def texel_barycentrics(texture_res: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Barycentric coordinates ``(R*R, 3)`` of the centre of every texel, in storage order."""
    if texture_res < 1:
        raise ValueError(f"texture_res must be >= 1, got {texture_res}")
    r = texture_res
    idx = torch.arange(r * r)
    w_x = (idx % r).to(dtype)
    w_y = (idx // r).to(dtype)
    lower = w_x + w_y < r
    w0 = torch.where(lower, (w_x + 1.0 / 3.0) / r, (r - 1.0 - w_x + 2.0 / 3.0) / r)
    w1 = torch.where(lower, (w_y + 1.0 / 3.0) / r, (r - 1.0 - w_y + 2.0 / 3.0) / r)
    return torch.stack((w0, w1, 1.0 - w0 - w1), dim=-1)


def texel_index(w: torch.Tensor, texture_res: int) -> torch.Tensor:
    """Texel index (long, shape ``w.shape[:-1]``) holding clipped barycentrics ``w (..., 3)``
    (the rasterizer's lookup, with w_x, w_y clamped to R - 1)."""
    r = texture_res
    w_x = torch.clamp(torch.floor(w[..., 0] * r), max=r - 1)
    w_y = torch.clamp(torch.floor(w[..., 1] * r), max=r - 1)
    lower = (w[..., 0] + w[..., 1]) * r - w_x - w_y <= 1
    idx = torch.where(lower, w_y * r + w_x, (r - 1 - w_y) * r + (r - 1 - w_x))
    return idx.long()


def wrap_uvs(uvs: torch.Tensor) -> torch.Tensor:
    """SoftRas's wrap: coordinates above 1 are taken modulo 1 (1 itself and values <= 1 are kept)."""
    return torch.where(uvs > 1, torch.remainder(uvs, 1.0), uvs)


def sample_image(image: torch.Tensor, uvs: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``image (H, W, C)`` (row 0 = top, as stored) at ``uvs (..., 2)`` -> ``(..., C)``.

    v points up (row ``(1 - v) * (H - 1)`` of the stored image); positions are clamped to the image."""
    if image.ndim != 3:
        raise ValueError(f"image must have shape (H, W, C), got {tuple(image.shape)}")
    h, w = image.shape[:2]
    flipped = torch.flip(image, dims=(0,))
    uvs = wrap_uvs(uvs.to(image.dtype))
    px = torch.clamp(uvs[..., 0] * (w - 1), 0, w - 1)
    py = torch.clamp(uvs[..., 1] * (h - 1), 0, h - 1)
    x0, y0 = torch.floor(px).long(), torch.floor(py).long()
    x1, y1 = torch.clamp(x0 + 1, max=w - 1), torch.clamp(y0 + 1, max=h - 1)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    return (
        flipped[y0, x0] * (1 - fx) * (1 - fy)
        + flipped[y0, x1] * fx * (1 - fy)
        + flipped[y1, x0] * (1 - fx) * fy
        + flipped[y1, x1] * fx * fy
    )


def sample_surface_textures(image: torch.Tensor, face_uvs: torch.Tensor, texture_res: int) -> torch.Tensor:
    """Sample a UV map into per-face texels: ``image (H, W, 3)``, ``face_uvs (F, 3, 2)`` -> ``(F, R*R, 3)``."""
    if face_uvs.ndim != 3 or face_uvs.shape[1:] != (3, 2):
        raise ValueError(f"face_uvs must have shape (F, 3, 2), got {tuple(face_uvs.shape)}")
    bary = texel_barycentrics(texture_res, image.dtype).to(image.device)  # (T, 3)
    uv = torch.einsum("tk,fkc->ftc", bary, wrap_uvs(face_uvs.to(image.dtype)))
    return sample_image(image, uv)


def texture_atlas(textures: torch.Tensor, tile: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack surface texels ``(F, R*R, 3)`` into an image atlas and per-corner UVs.

    Each face owns a ``tile x tile`` square holding its triangle (corners at three tile corners);
    every pixel of the square, inside the triangle or not, takes the texel of its clipped barycentrics,
    so bilinear reads near the triangle's edges never mix faces. Reading back is exact for
    ``tile >= 6 R + 1`` (each texel centre's bilinear taps then lie in its own cell); smaller tiles
    blend neighbouring texels slightly (so does SoftRas's atlas). Returns ``image (H, W, 3)`` (row 0 =
    top, ready to save) and ``uvs (F, 3, 2)`` that :func:`sample_surface_textures` reads back."""
    if textures.ndim != 3 or textures.shape[-1] != 3:
        raise ValueError(f"textures must have shape (F, R*R, 3), got {tuple(textures.shape)}")
    if tile < 2:
        raise ValueError(f"tile (texture_res_out) must be >= 2, got {tile}")
    nf = textures.shape[0]
    r = math.isqrt(textures.shape[1])
    if r * r != textures.shape[1]:
        raise ValueError(f"textures must have R*R texels per face, got {textures.shape[1]}")
    cols = max(1, math.ceil(math.sqrt(nf)))
    rows = max(1, math.ceil(nf / cols))
    dtype, device = textures.dtype, textures.device
    # Barycentrics of the tile's pixels w.r.t. corners (0, 0), (t-1, 0), (0, t-1) in (x, v-up y).
    t = tile
    ys, xs = torch.meshgrid(torch.arange(t, dtype=dtype), torch.arange(t, dtype=dtype), indexing="ij")
    w1, w2 = xs / (t - 1), ys / (t - 1)
    w = torch.stack((1 - w1 - w2, w1, w2), dim=-1).clamp(0, 1)
    w = w / w.sum(-1, keepdim=True)
    tile_texel = texel_index(w, r).to(device)  # (t, t), rows in v-up order
    tiles = textures[:, tile_texel.reshape(-1)].reshape(nf, t, t, 3)  # (F, t, t, 3)
    pad = rows * cols - nf
    if pad:
        tiles = torch.cat([tiles, torch.ones(pad, t, t, 3, dtype=dtype, device=device)])
    image_up = tiles.reshape(rows, cols, t, t, 3).permute(0, 2, 1, 3, 4).reshape(rows * t, cols * t, 3)
    face = torch.arange(nf, device=device)
    x0 = (face % cols).to(dtype) * t
    y0 = (face // cols).to(dtype) * t
    corners_x = torch.stack((x0, x0 + t - 1, x0), dim=-1)
    corners_y = torch.stack((y0, y0, y0 + t - 1), dim=-1)
    width, height = cols * t, rows * t
    uvs = torch.stack((corners_x / (width - 1), corners_y / (height - 1)), dim=-1)
    return torch.flip(image_up, dims=(0,)), uvs
