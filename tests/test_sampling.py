"""Importance sampling: samples concentrate near the 2D contour / 3D hull boundary, stay inside the
image / volume, and the returned densities are the ones the samples follow."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from taichi_softras import cameras, sampling

RADIUS = 0.3


def sphere_silhouettes(eyes, size=32, radius=RADIUS, viewing_angle=15.0):
    """Exact silhouettes ``(V, H, W)`` of a centred sphere: rays passing within ``radius`` of 0."""
    o, d = cameras.pixel_rays(eyes.double(), viewing_angle=viewing_angle, image_size=size)
    t = -(o * d).sum(-1, keepdim=True)
    dist = (o + t * d).norm(dim=-1)
    return (dist < radius).double().reshape(-1, size, size)


def _eyes(n=8, elevation=20.0):
    az = torch.arange(n, dtype=torch.float64) * 360.0 / n
    el = torch.tensor([elevation, -elevation] * (n // 2), dtype=torch.float64)
    return cameras.get_points_from_angles(torch.full((n,), 2.732, dtype=torch.float64), el, az)


def test_contour_density_is_a_distribution():
    sil = sphere_silhouettes(_eyes(2))[0]
    p = sampling.contour_pixel_density(sil, sigma=1.5, uniform_fraction=0.1)
    assert p.shape == sil.shape and float(p.min()) >= 0.1 / sil.numel() - 1e-15
    assert abs(float(p.sum()) - 1) < 1e-12
    # no contour: uniform
    q = sampling.contour_pixel_density(torch.zeros(8, 8))
    assert torch.allclose(q, torch.full((8, 8), 1 / 64, dtype=torch.float64))


def test_contour_samples_concentrate_near_the_contour():
    sils = sphere_silhouettes(_eyes(2))
    g = torch.Generator().manual_seed(0)
    pix, prob = sampling.sample_contour_pixels(sils, 4000, sigma=1.5, uniform_fraction=0.2, generator=g)
    assert pix.shape == prob.shape == (2, 4000)
    assert int(pix.min()) >= 0 and int(pix.max()) < 32 * 32
    for k in range(2):
        inside = sils[k].numpy() > 0.5
        edge = inside ^ ndimage.binary_erosion(inside)
        near = ndimage.distance_transform_edt(~edge) <= 3  # within 2 sigma of the contour
        frac = near.reshape(-1)[pix[k].numpy()].mean()
        area = near.mean()
        assert frac > 0.75 and area < 0.35, (frac, area)
        # the empirical mass near the contour matches the density's
        p = sampling.contour_pixel_density(sils[k], 1.5, 0.2).numpy()
        expected = p[near].sum()
        assert abs(frac - expected) < 4 * np.sqrt(expected * (1 - expected) / 4000)
        assert torch.allclose(prob[k], torch.as_tensor(p.reshape(-1))[pix[k]])


def test_visual_hull_of_a_sphere():
    eyes = _eyes(8)
    hull = sampling.visual_hull(sphere_silhouettes(eyes, 64), eyes, resolution=32, viewing_angle=15.0)
    pts = sampling.grid_points(32, dtype=torch.float64)
    truth = pts.norm(dim=-1) < RADIUS
    iou = float((hull & truth).sum()) / float((hull | truth).sum())
    # a hull contains the shape (up to voxel centres on the silhouette edge) and is close to it
    assert float((truth & ~hull).sum()) <= 0.02 * float(truth.sum())
    assert iou > 0.85, iou


def test_visual_hull_of_a_batch_is_each_hull():
    eyes = _eyes(8)
    sphere = sphere_silhouettes(eyes, 32)
    batch = torch.stack((sphere, sphere[:, :, torch.arange(31, -1, -1)], torch.zeros_like(sphere)))
    hulls = sampling.visual_hull(batch, eyes, resolution=16, viewing_angle=15.0)
    assert hulls.shape == (3, 16, 16, 16)
    for i in range(3):
        assert torch.equal(hulls[i], sampling.visual_hull(batch[i], eyes, resolution=16, viewing_angle=15.0)), i
    assert hulls[0].any() and not hulls[2].any()
    with pytest.raises(ValueError, match="silhouettes"):
        sampling.visual_hull(torch.zeros(8, 8), eyes)


def test_visual_hull_rejects_mismatched_cameras():
    with pytest.raises(ValueError, match="eyes"):
        sampling.visual_hull(torch.zeros(3, 8, 8), torch.zeros(2, 3))


def test_hull_samples_concentrate_near_the_boundary():
    eyes = _eyes(8)
    hull = sampling.visual_hull(sphere_silhouettes(eyes, 64), eyes, resolution=32, viewing_angle=15.0)
    g = torch.Generator().manual_seed(1)
    pts, density = sampling.sample_hull_boundary(hull, 5000, band=2, uniform_fraction=0.2, generator=g)
    assert pts.shape == (5000, 3) and density.shape == (5000,)
    assert float(pts.min()) >= -0.5 and float(pts.max()) <= 0.5
    shell = (pts.norm(dim=-1) - RADIUS).abs() < 0.1  # about 3 voxels
    shell_volume = 4 / 3 * np.pi * ((RADIUS + 0.1) ** 3 - (RADIUS - 0.1) ** 3)  # of the unit cube's 1
    assert float(shell.double().mean()) > 0.75 and shell_volume < 0.25, float(shell.double().mean())
    band = sampling.hull_band(hull, 2)
    cell = 1 / 32
    outside = ~band[tuple(((pts.double() + 0.5) / cell).long().clamp(0, 31).T)]
    # unit cube: the uniform part has density 0.2 everywhere, the band part 0.8 / band volume
    assert torch.allclose(density[outside], torch.full_like(density[outside], 0.2))
    inside_density = 0.2 + 0.8 / (int(band.sum()) * cell**3)
    assert torch.allclose(density[~outside], torch.full_like(density[~outside], inside_density))


def test_hull_samples_with_a_precomputed_band_are_the_same_draws():
    eyes = _eyes(8)
    hull = sampling.visual_hull(sphere_silhouettes(eyes, 32), eyes, resolution=16, viewing_angle=15.0)
    draws = [sampling.sample_hull_boundary(hull, 500, band=1, generator=torch.Generator().manual_seed(3), band_mask=mask)
             for mask in (None, sampling.hull_band(hull, 1))]
    assert all(torch.equal(a, b) for a, b in zip(*draws))
    with pytest.raises(ValueError, match="band_mask"):
        sampling.sample_hull_boundary(hull, 5, band_mask=torch.zeros(4, 4, 4, dtype=torch.bool))
