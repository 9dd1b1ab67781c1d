"""Anchor-ray probing benchmark: 64² rays (of one camera, or scattered) × 16k / 64k
anchors, forward + backward, against the dense reference.

    python -m benchmarks.bench_probe [--device cpu|cuda] [--batch 1] [--repeats 5]

Anchors are uniform in the unit cube seen by SoftRas's default camera (distance 2.732, elevation
30, viewing angle 30); the support radius is scaled with the anchor spacing so each ray probes
about the same number of anchors at every N. Sets OMP_WAIT_POLICY=PASSIVE unless set (docs/design.md, Backends).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402

import torch  # noqa: E402

import taichi_softras as sr  # noqa: E402
from taichi_softras.ops.probe import probe_rays  # noqa: E402
from taichi_softras.reference.probe import probe_rays as ref_probe_rays  # noqa: E402

from .common import machine, time_adaptive  # noqa: E402


def scene(batch: int, n_anchors: int, size: int, device: str, scattered: bool = False):
    """Rays ``(B, size², 3)`` of B cameras around the cube (``scattered``: as many rays from random
    origins near the first camera, aimed at the cube, binned in the 3D grid), anchors ``(B, N, 3)``,
    the radius and values ``(B, N)``."""
    g = torch.Generator().manual_seed(0)
    eyes = torch.stack([torch.tensor(sr.get_points_from_angles(2.732, 30.0, 45.0 * b)) for b in range(batch)]).float()
    origins, directions = sr.pixel_rays(eyes, image_size=size)
    if scattered:
        origins = origins + 0.3 * torch.randn(origins.shape, generator=g)
        directions = torch.nn.functional.normalize(0.2 * torch.randn(origins.shape, generator=g) - origins, dim=-1)
    anchors = torch.rand(batch, n_anchors, 3, generator=g) - 0.5
    values = torch.rand(batch, n_anchors, generator=g)
    radius = 0.02 * (16384 / n_anchors) ** (1 / 3)
    return [t.to(device) for t in (origins, directions, anchors)] + [radius, values.to(device)]


def fwd_bwd(fn, origins, directions, anchors, radius, values):
    leaf = values.detach().requires_grad_()

    def run():
        out = fn(origins, directions, anchors, radius, leaf)
        out.value.backward(torch.ones_like(out.value))
        return out

    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-reference", action="store_true", help="skip the dense reference (slow)")
    a = p.parse_args(argv)
    print(f"# anchor-ray probing, {a.batch} x {a.size}² rays, forward+backward, on {machine(a.device)}\n")
    print("| rays | anchors | probes / ray | taichi first ms | taichi steady ms | reference ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for scattered, n in ((False, 16384), (False, 65536), (True, 16384), (True, 65536)):
        args = scene(a.batch, n, a.size, a.device, scattered)
        run = fwd_bwd(probe_rays, *args)
        probes = float(run().count.double().mean())
        first, steady, _ = time_adaptive(run, a.device, max_repeats=a.repeats)
        ref = "-"
        speedup = "-"
        if not a.no_reference:
            _, ref_s, _ = time_adaptive(fwd_bwd(ref_probe_rays, *args), a.device, max_repeats=2, first_counts=True)
            ref, speedup = f"{1e3 * ref_s:.0f}", f"{ref_s / steady:.0f}x"
        print(f"| {'scattered (3D grid)' if scattered else 'pinhole (screen tiles)'} | {n:,} | {probes:.1f} | {1e3 * first:.0f} | {1e3 * steady:.1f} | {ref} | {speedup} |")


if __name__ == "__main__":
    main()
