"""Importance sampling for field probing (NeurIPS'19 §3.3): ray pixels near silhouette contours
and anchors near the visual-hull boundary, each mixed with a uniform fraction.

Both samplers draw from an explicit discrete density (pixels, voxels), so the returned sampling
densities are exact, not estimates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._lazy import filters, measure, ndimage
from .ops.checks import check_tensor
from .camera import Camera, as_camera


def _check_fraction(value: float, name: str) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def contour_pixel_density(silhouette: torch.Tensor, sigma: float = 2.0, uniform_fraction: float = 0.2) -> torch.Tensor:
    """Probability of each pixel ``(H, W)`` (sums to 1): a Gaussian mixture of width ``sigma`` pixels
    centred on the silhouette's contour points (scikit-image, level 0.5), discretized on the pixel
    grid, mixed with a uniform density with weight ``uniform_fraction``. No contour: uniform."""
    check_tensor(silhouette, "silhouette", ndim=2)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma!r}")
    u = _check_fraction(uniform_fraction, "uniform_fraction")
    sil = silhouette.detach().cpu().double().numpy()
    h, w = sil.shape
    # pad so contours close around shapes touching the border (the border is a boundary too)
    contours = measure.find_contours(np.pad(sil, 1), 0.5)
    hist = np.zeros((h, w))
    for c in contours:
        rows = np.clip(np.round(c[:, 0] - 1).astype(int), 0, h - 1)
        cols = np.clip(np.round(c[:, 1] - 1).astype(int), 0, w - 1)
        np.add.at(hist, (rows, cols), 1.0)
    uniform = np.full((h, w), 1.0 / (h * w))
    if hist.sum() == 0:
        return torch.as_tensor(uniform, device=silhouette.device)
    mixture = filters.gaussian(hist, sigma=sigma, mode="constant", preserve_range=True)
    mixture /= mixture.sum()
    return torch.as_tensor((1 - u) * mixture + u * uniform, device=silhouette.device)


def sample_contour_pixels(
    silhouettes: torch.Tensor,
    n: int,
    sigma: float = 2.0,
    uniform_fraction: float = 0.2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` ray pixels per view from :func:`contour_pixel_density`.

    silhouettes ``(B, H, W)`` (inside > 0.5). Returns flat pixel indices ``(B, n)`` int64
    (row * W + col, the order of :func:`taichi_softras.cameras.pixel_rays`) and their per-draw
    probabilities ``(B, n)`` float64 (divide a per-sample loss by H W p for an unbiased mean).
    """
    check_tensor(silhouettes, "silhouettes", ndim=3)
    pixels, probs = [], []
    for sil in silhouettes:
        p = contour_pixel_density(sil, sigma, uniform_fraction).flatten()
        idx = torch.multinomial(p.cpu(), n, replacement=True, generator=generator).to(p.device)
        pixels.append(idx)
        probs.append(p[idx])
    return torch.stack(pixels), torch.stack(probs)


def grid_points(resolution: int, bounds: Sequence[float] = (-0.5, 0.5), device=None, dtype=torch.float32) -> torch.Tensor:
    """Voxel centres ``(res, res, res, 3)`` of the cube ``bounds`` (lo, hi), indexed [x, y, z]."""
    lo, hi = float(bounds[0]), float(bounds[1])
    c = lo + (torch.arange(resolution, dtype=dtype, device=device) + 0.5) * (hi - lo) / resolution
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), dim=-1)


def visual_hull(
    silhouettes: torch.Tensor,
    eyes,
    resolution: int = 64,
    bounds: Sequence[float] = (-0.5, 0.5),
    viewing_angle: float = 30.0,
    at: Sequence[float] = (0, 0, 0),
    up: Sequence[float] = (0, 1, 0),
) -> torch.Tensor:
    """Voxels ``(res, res, res)`` bool ([x, y, z], centres of the cube ``bounds``) whose centre
    projects inside every silhouette ``(V, H, W)`` seen from the cameras ``eyes``: a
    :class:`~taichi_softras.camera.Camera` of batch V (its image size that of the silhouettes) or
    the look_at cameras of eyes ``(V, 3)`` (a centre projecting outside an image is outside).
    Silhouettes ``(N, V, H, W)`` (N shapes seen by the same V cameras) give hulls ``(N, res, res,
    res)``: each centre is projected once for all N."""
    check_tensor(silhouettes, "silhouettes")
    if silhouettes.ndim not in (3, 4):
        raise ValueError(f"silhouettes must be (V, H, W) or (N, V, H, W), got {tuple(silhouettes.shape)}")
    v, h, w = silhouettes.shape[-3:]
    if isinstance(eyes, Camera):
        if eyes.batch_size != v:
            raise ValueError(f"the camera must have one view per silhouette ({v}), got batch {eyes.batch_size}")
    else:
        check_tensor(eyes, "eyes", ndim=2, last=(3,))
        if eyes.shape[0] != v:
            raise ValueError(f"eyes must have one row per silhouette ({v}), got {tuple(eyes.shape)}")
    camera = as_camera(eyes, (h, w), viewing_angle, at, up, dtype=torch.float64, name="eyes")
    pts = grid_points(resolution, bounds, silhouettes.device, torch.float64).reshape(1, -1, 3)
    shapes = silhouettes.reshape(-1, v, h * w)  # (N, V, H*W)
    inside = torch.ones(len(shapes), pts.shape[1], dtype=torch.bool, device=silhouettes.device)
    for k in range(v):
        row, col, valid = camera[k].to_pixels(pts)
        inside &= (shapes[:, k, (row * w + col)[0]] > 0.5) & valid
    return inside.reshape(silhouettes.shape[:-3] + (resolution,) * 3)


def hull_band(hull: torch.Tensor, band: int = 2) -> torch.Tensor:
    """Voxels ``(res,)*3`` bool within ``band`` voxels (chessboard distance) of where ``hull`` changes."""
    if band < 1:
        raise ValueError(f"band must be >= 1 voxel, got {band!r}")
    occ = hull.cpu().numpy()
    struct = np.ones((3, 3, 3), dtype=bool)
    grown = ndimage.binary_dilation(occ, struct, iterations=band)
    shrunk = ndimage.binary_erosion(occ, struct, iterations=band, border_value=0)
    return torch.as_tensor(grown & ~shrunk, device=hull.device)


def sample_hull_boundary(
    hull: torch.Tensor,
    n: int,
    bounds: Sequence[float] = (-0.5, 0.5),
    band: int = 2,
    uniform_fraction: float = 0.2,
    generator: torch.Generator | None = None,
    band_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` anchor points near the visual-hull boundary: with probability 1 - uniform_fraction
    uniformly inside a voxel of :func:`hull_band`, else uniformly in the cube ``bounds``.

    hull ``(res, res, res)`` bool from :func:`visual_hull`. ``band_mask``: ``hull_band(hull, band)``
    computed beforehand (a caller drawing from the same hull many times keeps it; the morphology
    is most of this function's time). Returns points ``(n, 3)`` float32 and their sampling density
    per unit volume ``(n,)`` float64 (exact: a piecewise-constant mixture).
    """
    u = _check_fraction(uniform_fraction, "uniform_fraction")
    res = hull.shape[0]
    lo, hi = float(bounds[0]), float(bounds[1])
    cell = (hi - lo) / res
    if band_mask is None:
        band_mask = hull_band(hull, band)
    elif band_mask.shape != hull.shape:
        raise ValueError(f"band_mask must have the hull's shape {tuple(hull.shape)}, got {tuple(band_mask.shape)}")
    band_mask = band_mask.cpu()
    band_idx = band_mask.reshape(-1).nonzero()[:, 0]
    if band_idx.numel() == 0:
        u = 1.0
    uniform_pick = torch.rand(n, generator=generator) < u
    voxel = band_idx[torch.randint(max(1, band_idx.numel()), (n,), generator=generator)] if band_idx.numel() else torch.zeros(n, dtype=torch.long)
    ijk = torch.stack((voxel // (res * res), (voxel // res) % res, voxel % res), -1).double()
    jitter = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    near = lo + (ijk + jitter) * cell
    anywhere = lo + torch.rand(n, 3, generator=generator, dtype=torch.float64) * (hi - lo)
    points = torch.where(uniform_pick[:, None], anywhere, near)
    # density of the mixture at each point (a uniform draw may land in the band too)
    in_band = band_mask[tuple(((points - lo) / cell).long().clamp(0, res - 1).T)]
    density = u / (hi - lo) ** 3 + (1 - u) * in_band.double() / max(1, band_idx.numel()) / cell**3
    return points.float().to(hull.device), density.to(hull.device)
