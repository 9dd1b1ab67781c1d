"""Offline synthetic dataset in the NMR/SoftRas format.

    python -m reconstruction.make_dataset --out DIR --per-class N [--classes all] [--seed 0]
    python -m reconstruction.make_dataset --meshes SHAPENET --out DIR [--split auto] [--classes all] [--skip-bad]

For each class, N random part-based shapes (:mod:`reconstruction.shapes`) are rendered from the 24
dataset views (64^2 RGBA, lit face colours) and voxelized to 32^3 in the NMR voxel frame, then split
into train/val/test (70/10/20 %) and written as ``{class_id}_{split}_{images,voxels}.npz``.
With ``--meshes``, real meshes in ShapeNetCore layout are rendered and voxelized the same way instead
(:mod:`reconstruction.from_meshes`).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from tqdm import tqdm

from . import datasets as D
from .cli import Parser, UserError, run
from .render import render
from .shapes import Shape, random_shape
from .voxels import cell_samples

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
#: Sub-samples per voxel axis: a cell is full when any of its k^3 samples lies inside the shape.
VOXEL_SUBSAMPLES = 3
#: Near-hard coverage so the dataset renders are crisp, like NMR's.
RENDER_SIGMA = 1e-5


def _cell_range(lo: float, hi: float) -> tuple[int, int]:
    """Cells [i0, i1) along one axis whose span [(i - 16)/31, (i - 15)/31) meets [lo, hi]."""
    i0 = int(np.clip(np.floor(lo * (D.VOXEL_SIZE - 1) + D.VOXEL_SIZE / 2), 0, D.VOXEL_SIZE))
    i1 = int(np.clip(np.floor(hi * (D.VOXEL_SIZE - 1) + D.VOXEL_SIZE / 2) + 1, 0, D.VOXEL_SIZE))
    return i0, i1


def voxelize_shape(shape: Shape, samples: np.ndarray | None = None) -> np.ndarray:
    """Bool ``(32, 32, 32)`` occupancy of ``shape`` in the stored NMR order: a cell is full when any
    of its sub-samples lies inside a part (each part tests only the cells its bounding box meets)."""
    samples = cell_samples(VOXEL_SUBSAMPLES) if samples is None else samples
    occupancy = np.zeros(samples.shape[:3], bool)
    n = D.VOXEL_SIZE
    for part in shape.parts:
        half = part.half_extent() * (1 + 1e-6) + 1e-6
        (x0, x1), (y0, y1), (z0, z1) = (_cell_range(c - h, c + h) for c, h in zip(part.centre, half))
        if x0 >= x1 or y0 >= y1 or z0 >= z1:
            continue
        # stored [a, b, c] is cell x = b, y = a, z = 31 - c
        sl = (slice(y0, y1), slice(x0, x1), slice(n - z1, n - z0))
        occupancy[sl] |= part.contains(samples[sl]).any(-1)
    return occupancy


def render_shape(shape: Shape) -> np.ndarray:
    """uint8 RGBA ``(24, 4, 64, 64)`` of ``shape`` from the 24 dataset views."""
    v, f, c = shape.mesh()
    n = D.NUM_VIEWS
    with torch.no_grad():
        img = render(v.expand(n, -1, -1), f.expand(n, -1, -1), torch.arange(n), c.expand(n, -1, -1),
                     sigma_val=RENDER_SIGMA)
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def split_counts(n: int) -> tuple[int, int, int]:
    """Train/val/test sizes for n shapes (each split gets at least one shape when n >= 3)."""
    if n < 3:
        raise ValueError(f"per_class must be >= 3 (one shape per split), got {n}")
    val = max(1, round(n * SPLIT_FRACTIONS[1]))
    test = max(1, round(n * SPLIT_FRACTIONS[2]))
    return n - val - test, val, test


def make_class(class_id: str, per_class: int, seed: int, progress: tqdm | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generate one class: split -> (images, voxels). Deterministic in (class_id, seed)."""
    rng = np.random.default_rng([seed, zlib.crc32(class_id.encode())])
    samples = cell_samples(VOXEL_SUBSAMPLES)
    images, voxels = [], []
    for _ in range(per_class):
        shape = random_shape(class_id, rng)
        images.append(render_shape(shape))
        voxels.append(voxelize_shape(shape, samples))
        if progress is not None:
            progress.update()
    out, start = {}, 0
    for split, count in zip(D.SPLITS, split_counts(per_class)):
        out[split] = (np.stack(images[start:start + count]), np.stack(voxels[start:start + count]))
        start += count
    return out


#: The view the sample figure shows (azimuth -45 deg: a three-quarter view of the front).
SAMPLE_VIEW = 3


def samples_grid(data: D.ShapeNetSplit, per_class: int = 8, view: int = SAMPLE_VIEW) -> np.ndarray:
    """RGB float ``(C * 64, per_class * 64, 3)`` on white: row c holds the first ``per_class``
    shapes of class c (fewer leave white tiles) seen from ``view``."""
    size = D.IMAGE_SIZE
    grid = np.ones((len(data.class_ids) * size, per_class * size, 3), np.float32)
    for row in range(len(data.class_ids)):
        for col, i in enumerate((data.labels == row).nonzero()[:per_class, 0].tolist()):
            rgba = data.views(torch.tensor([i]), torch.tensor([view]))[0].permute(1, 2, 0).numpy()
            tile = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
            grid[row * size:(row + 1) * size, col * size:(col + 1) * size] = tile
    return grid


def samples_figure(data: D.ShapeNetSplit, path, per_class: int = 8, view: int = SAMPLE_VIEW) -> np.ndarray:
    """Save :func:`samples_grid` with the class names to ``path`` (PNG); returns the grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = samples_grid(data, per_class, view)
    fig, ax = plt.subplots(figsize=(0.8 * per_class + 1.2, 0.8 * len(data.class_ids) + 0.4))
    ax.imshow(grid)
    ax.set_yticks((np.arange(len(data.class_ids)) + 0.5) * D.IMAGE_SIZE,
                  [D.CLASS_NAMES[c] for c in data.class_ids], fontsize=8)
    ax.set_xticks([])
    ax.set_title(f"Synthetic training shapes: {per_class} per class (view {view})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return grid


def _main(argv: list[str]) -> None:
    p = Parser(prog="reconstruction.make_dataset", description=__doc__)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--per-class", type=int, default=40, help="synthetic shapes per class (all splits; >= 3)")
    p.add_argument("--classes", default="all", help="'all' or comma-separated class ids/names")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic shapes")
    p.add_argument("--meshes", help="build from the meshes in this ShapeNetCore-layout folder instead")
    p.add_argument("--split", default="auto", choices=("auto",) + D.SPLITS,
                   help="with --meshes: auto (by model id, 70/10/20 %%) or put every model in one split")
    p.add_argument("--skip-bad", action="store_true", help="with --meshes: skip models that fail to load")
    args = p.parse_args(argv)
    if args.meshes is not None:
        from . import from_meshes

        summary = from_meshes.build(args.meshes, args.out, args.split, args.classes, args.skip_bad)
        print(summary.line(args.out))
        return
    class_ids = D.parse_class_ids(args.classes)
    try:
        counts = split_counts(args.per_class)  # validate before any work
    except ValueError as exc:
        raise UserError(f"--per-class {args.per_class}: must be >= 3 (one shape per split)") from exc
    with tqdm(total=len(class_ids) * args.per_class, desc="shapes", unit="shape") as bar:
        for cid in class_ids:
            bar.set_postfix_str(D.CLASS_NAMES[cid])
            for split, (images, voxels) in make_class(cid, args.per_class, args.seed, bar).items():
                D.save_class_split(args.out, cid, split, images, voxels)
    print(f"wrote {len(class_ids) * args.per_class} shapes ({len(class_ids)} classes x {args.per_class}: "
          f"{counts[0]} train / {counts[1]} val / {counts[2]} test each) to {args.out}")


def main(argv: list[str] | None = None) -> None:
    run("reconstruction.make_dataset", _main, argv)


if __name__ == "__main__":
    main()
