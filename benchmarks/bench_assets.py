"""Real-asset figures: OBJ load time of a 1M-face file, and voxelization agreement ('center' vs
'softras' and vs the winding-number oracle) on closed, doubled, flipped and open meshes.

    python -m benchmarks.bench_assets [--faces 1000000] [--size 32] [--oracle-points 6000]

The OBJ is an icosphere cut to ``--faces`` faces with per-corner ``vt`` and two ``usemtl`` sections
(ShapeNet-like ``f v/vt`` records), written to a temporary folder. Load times are the best of 3;
trimesh's loader (which splits vertices per material, so it cannot keep the file's order) is timed
once in the same run, as the ratio's reference. IoU: over all voxels for center/softras, over a
seeded random subset of ``--oracle-points`` voxel centres for the oracle (it is O(points x faces)).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

import taichi_softras as sr
from taichi_softras.geometry import face_vertices
from taichi_softras.io import load_obj, read_obj
from taichi_softras.reference.voxelization import centre_inside, voxel_centres
from taichi_softras.voxelization import solid_voxels, voxelization

from .common import machine


def write_big_obj(path: Path, faces: int) -> None:
    subdivisions = max(0, int(np.ceil(np.log(faces / 20) / np.log(4))))
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    f = m.faces[:faces] + 1
    uv = np.random.default_rng(0).random((len(m.vertices), 2))
    half = len(f) // 2
    with open(path, "w") as fh:
        fh.write(f"mtllib {path.stem}.mtl\n")
        np.savetxt(fh, m.vertices, fmt="v %.6f %.6f %.6f")
        np.savetxt(fh, uv, fmt="vt %.6f %.6f")
        for name, block in (("red", f[:half]), ("blue", f[half:])):
            fh.write(f"usemtl {name}\n")
            np.savetxt(fh, np.repeat(block, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
    path.with_suffix(".mtl").write_text("newmtl red\nKd 1 0 0\nnewmtl blue\nKd 0 0 1\n")


def best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def load_figures(faces: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.obj"
        write_big_obj(path, faces)
        obj = read_obj(path)
        ours = best_of(lambda: read_obj(path))
        with_tex = best_of(lambda: load_obj(path, load_texture=True, texture_res=1))
        t = time.perf_counter()
        trimesh.load(path, process=False, maintain_order=True, force="mesh")
        theirs = time.perf_counter() - t
        print(f"\n{len(obj.faces):,} faces, {len(obj.vertices):,} vertices, {path.stat().st_size / 2**20:.0f} MiB:")
        print("| loader | seconds | vs trimesh |\n|---|---|---|")
        print(f"| read_obj (records) | {ours:.2f} | {ours / theirs:.2f} |")
        print(f"| load_obj(load_texture=True) | {with_tex:.2f} | {with_tex / theirs:.2f} |")
        print(f"| trimesh.load (splits per material) | {theirs:.2f} | 1.00 |")


def test_meshes() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (face vertices (1, F, 3, 3) in the unit cube (NMR's mapping v * 31/32 + 0.5), the
    closed mesh it was made from)."""
    def unit(v, f):
        return face_vertices(v[None], f[None]) * (31 / 32) + 0.5

    out = {}
    for name in ("sphere_642.obj", "spot/spot_triangulated.obj"):
        v, f = load_obj(sr.DATA_DIR / name, normalization=True)
        fv = unit(v * 0.5, f)
        out[name.split("/")[-1].removesuffix(".obj")] = (fv, fv)
    m = trimesh.creation.torus(major_radius=0.3, minor_radius=0.12, major_sections=24, minor_sections=12)
    torus = unit(torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces))
    n = torus.shape[1]
    flip = torch.from_numpy(np.random.default_rng(0).random(n) < 0.5)[None, :, None, None]
    out["torus"] = (torus, torus)
    out["torus, every face doubled reversed"] = (torch.cat([torus, torus[:, :, [2, 1, 0]]], 1), torus)
    out["torus, half the faces flipped"] = (torch.where(flip, torus[:, :, [0, 2, 1]], torus), torus)
    out["torus, 1 face in 20 removed"] = (torus[:, torch.arange(n) % 20 != 1], torus)
    out["torus, 1 face in 7 removed"] = (torus[:, torch.arange(n) % 7 != 1], torus)
    box = trimesh.creation.box(bounds=[[0.2, 0.25, 0.3], [0.8, 0.75, 0.7]])
    box_fv = torch.tensor(box.vertices, dtype=torch.float32)[torch.tensor(box.faces)][None]
    out["box without its lid"] = (box_fv[:, 2:], box_fv)
    return out


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def voxel_figures(size: int, oracle_points: int) -> None:
    pick = torch.from_numpy(np.random.default_rng(1).choice(size**3, min(oracle_points, size**3), replace=False))
    centres = voxel_centres(size)[pick]
    print(f"\nvoxelization at {size}^3 (oracle: |winding number| > 1/2 of the closed mesh, {len(pick):,} centres):")
    print("| mesh | faces | IoU center vs oracle | IoU softras vs oracle | IoU center vs softras | "
          "IoU solid_voxels vs softras of the closed mesh | center ms | softras ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (fv, closed) in test_meshes().items():
        oracle = centre_inside(closed[0], centres)
        center = voxelization(fv, size, method="center")[0].bool()
        softras = voxelization(fv, size)[0].bool()
        solid = solid_voxels(fv, size)[0].bool()
        reference = voxelization(closed, size)[0].bool()
        t_center = best_of(lambda: voxelization(fv, size, method="center")) * 1e3
        t_softras = best_of(lambda: voxelization(fv, size)) * 1e3
        flat = lambda g: g.reshape(-1)[pick]  # noqa: E731
        print(f"| {name} | {fv.shape[1]:,} | {iou(flat(center), oracle):.4f} | {iou(flat(softras), oracle):.4f} | "
              f"{iou(center, softras):.4f} | {iou(solid, reference):.4f} | {t_center:.1f} | {t_softras:.1f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=1_000_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--oracle-points", type=int, default=6000)
    a = p.parse_args(argv)
    print(machine())
    torus = test_meshes()["torus"][0]
    voxelization(torus, a.size)  # JIT outside the timings
    voxelization(torus, a.size, method="center")
    load_figures(a.faces)
    voxel_figures(a.size, a.oracle_points)


if __name__ == "__main__":
    main()
