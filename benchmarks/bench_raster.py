"""Rasterizer benchmark: Spot at 64..512 px, the dense reference at 64 px, face scaling.

    python -m benchmarks.bench_raster [--device cpu|cuda] [--repeats 5]

Prints a markdown table. First-call times include Taichi's JIT unless its on-disk cache is warm;
run with TAICHI_SOFTRAS_OFFLINE_CACHE=0 for a cold first call. On CPU set OMP_WAIT_POLICY=PASSIVE
(torch's idle OpenMP threads otherwise spin against Taichi's).
"""

from __future__ import annotations

import argparse

from taichi_softras.ops.rasterize import engine_for
from taichi_softras.reference.rasterize import soft_rasterize as reference

from .common import fwd, fwd_bwd, icosphere, machine, spot, time_call


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    dev = a.device
    print(f"# soft_rasterize benchmark on {machine(dev)}\n")
    print("| scene | image | fwd ms | fwd+bwd ms | first fwd+bwd s |")
    print("|---|---|---|---|---|")
    fv, tex = spot(dev)
    rows = {}
    for size in (64, 128, 256, 512):
        _, f_s = time_call(fwd(fv, tex, image_size=size), dev, a.repeats)
        first, fb_s = time_call(fwd_bwd(fv, tex, image_size=size), dev, a.repeats)
        rows[size] = fb_s
        print(f"| Spot 5,856 faces | {size}² | {1e3 * f_s:.1f} | {1e3 * fb_s:.1f} | {first:.2f} |")
    fv_c, tex_c = fv.cpu(), tex.cpu()
    _, ref_s = time_call(lambda: _ref_fwd_bwd(fv_c, tex_c), "cpu", repeats=1, warmup=0)
    print(f"| dense reference (torch, CPU) | 64² | | {1e3 * ref_s:.0f} | |")
    print(f"\nSpeed-up over the dense reference at 64² (fwd+bwd): {ref_s / rows[64]:.0f}x\n")
    print("| icosphere faces | image | fwd+bwd ms | binned face-tile pairs | time / 1,280-face time |")
    print("|---|---|---|---|---|")
    base = None
    for sub in (3, 4, 5, 6):
        fv, tex = icosphere(sub, dev)
        _, s = time_call(fwd_bwd(fv, tex, image_size=256), dev, a.repeats)
        base = base or s
        pairs = engine_for(fv.dtype).last_pairs
        print(f"| {fv.shape[1]:,} | 256² | {1e3 * s:.1f} | {pairs:,} | {s / base:.2f} |")


def _ref_fwd_bwd(fv, tex):
    fv = fv.detach().requires_grad_()
    tex = tex.detach().requires_grad_()
    img = reference(fv, tex, image_size=64, face_chunk=512)
    img.sum().backward()


if __name__ == "__main__":
    main()
