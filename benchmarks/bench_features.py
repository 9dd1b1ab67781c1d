"""Cost of the optional features (extra outputs, face-group masks, UV textures, deterministic mode) relative to plain RGBA (Spot, 256², forward+backward unless noted).

    python -m benchmarks.bench_features [--device cpu|cuda] [--size 256]
"""

from __future__ import annotations

import argparse

import torch

import taichi_softras as sr
from taichi_softras.io import load_image, read_obj
from taichi_softras.ops.rasterize import OUTPUTS

from .common import machine, spot, time_interleaved


def _fwd_bwd(fv, tex, **kw):
    leaves = [t.detach().requires_grad_() for t in (fv, tex)]

    def run():
        out = sr.soft_rasterize(*leaves, **kw)
        tensors = [out] if isinstance(out, torch.Tensor) else [t for t in vars(out).values() if t is not None and t.is_floating_point()]
        sum(t.sum() for t in tensors).backward()

    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    dev, size = a.device, a.size
    fv, tex = spot(dev)
    f = fv.shape[1]
    obj = read_obj(sr.DATA_DIR / "spot" / "spot_triangulated.obj")
    image = load_image(sr.DATA_DIR / "spot" / "spot_texture.png").permute(2, 0, 1)[None].contiguous().to(dev)
    uvs = torch.tensor(obj.uvs, dtype=torch.float32)[None].to(dev)
    normals = sr.functional.vertex_normals(torch.tensor(obj.vertices, dtype=torch.float32)[None], torch.tensor(obj.faces)[None])
    vn = normals[0][torch.tensor(obj.faces)][None].to(dev)
    groups = (torch.arange(f, device=dev) % 4)[None]
    base = dict(image_size=size)
    cases = [
        ("RGBA (surface texels, R=4)", fv, tex, base),
        ("+ depth", fv, tex, {**base, "outputs": ["depth"]}),
        ("+ face_index, barycentrics, screen normals", fv, tex, {**base, "outputs": ["face_index", "barycentrics", "screen_normals"]}),
        ("+ interpolated vertex normals", fv, tex, {**base, "outputs": ["normals"], "vertex_normals": vn}),
        ("+ 4 face-group masks", fv, tex, {**base, "outputs": ["group_masks"], "face_groups": groups}),
        ("+ all outputs", fv, tex, {**base, "outputs": OUTPUTS, "vertex_normals": vn, "face_groups": groups}),
        ("UV texture 1024² (in-kernel bilinear)", fv, image, {**base, "texture_type": "uv", "uvs": uvs}),
        ("deterministic=True", fv, tex, {**base, "deterministic": True}),
    ]
    print(f"# feature overheads, Spot {f:,} faces at {size}², on {machine(dev)}\n")
    print("| case | fwd+bwd ms | × plain |")
    print("|---|---|---|")
    times = time_interleaved({name: _fwd_bwd(v, t, **kw) for name, v, t, kw in cases}, dev, a.repeats)
    ref = times[cases[0][0]]
    for name, s in times.items():
        print(f"| {name} | {1e3 * s:.1f} | {s / ref:.2f} |")
    leaves = [x.detach().requires_grad_() for x in (fv, tex)]

    def no_grad():
        with torch.no_grad():
            sr.soft_rasterize(fv, tex, **base)

    fwd = time_interleaved({"graph": lambda: sr.soft_rasterize(*leaves, **base), "no_grad": no_grad}, dev, a.repeats)
    with_graph, without = fwd["graph"], fwd["no_grad"]
    print(f"\nForward only: {1e3 * with_graph:.1f} ms with autograd bookkeeping, {1e3 * without:.1f} ms under torch.no_grad() "
          f"(no saved tensors, no grad buffers).")


if __name__ == "__main__":
    main()
