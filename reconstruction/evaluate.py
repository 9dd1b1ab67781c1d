"""Voxel IoU of a trained run, per class, beside the papers' numbers and a mean-voxel baseline.

    python -m reconstruction.evaluate --run RUN_DIR [--split test] [--data DIR]

Writes ``RUN_DIR/eval_{split}.md`` (the table) and ``RUN_DIR/predictions_{split}.png`` (inputs and
predicted silhouettes), and prints the table.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from skimage import measure

from taichi_softras.geometry import face_vertices
from taichi_softras.voxelization import voxelization

from . import datasets as D
from .cli import Parser, run as run_cli
from .checkpoint import FILENAME, load_checkpoint
from .config import TrainConfig
from .models import ImplicitModel, MeshModel, build_model
from .voxels import SIZE, stored_from_xyz, voxel_iou

#: PAPERS.md: SoftRas's 13-class table (3D IoU) and the implicit paper's 6-class table.
PAPER_SOFTRAS = {
    "NMR": [0.6172, 0.4998, 0.7143, 0.7095, 0.4990, 0.5831, 0.4126, 0.6536, 0.6322, 0.6735, 0.4829, 0.7777, 0.5645],
    "SoftRas (sil.)": [0.6419, 0.5080, 0.7116, 0.7697, 0.5270, 0.6156, 0.4628, 0.6654, 0.6811, 0.6878, 0.4487, 0.7895, 0.5953],
    "SoftRas (full)": [0.6670, 0.5429, 0.7382, 0.7876, 0.5470, 0.6298, 0.4580, 0.6807, 0.6702, 0.7220, 0.5325, 0.8127, 0.6145],
}
PAPER_IMPLICIT_CLASSES = ("02691156", "02828884", "04379243", "02958343", "03001627", "04530566")
PAPER_IMPLICIT = {
    "PTN": [0.5564, 0.4875, 0.4938, 0.7123, 0.4494, 0.5507],
    "NMR": [0.6172, 0.4998, 0.4829, 0.7095, 0.4990, 0.5953],
    "SoftRas": [0.6419, 0.5080, 0.4487, 0.7697, 0.5270, 0.6145],
    "implicit (NeurIPS'19)": [0.6510, 0.5360, 0.5150, 0.7820, 0.5480, 0.6080],
}


def mesh_voxels(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """NMR voxels (stored order, bool ``(B, 32, 32, 32)``) of closed meshes ``(B, N, 3)``, ``(B, F, 3)``
    in the object frame: SoftRas's evaluation (v * 31/32 + 0.5, then the NMR axis order)."""
    fv = face_vertices(vertices, faces) * ((SIZE - 1) / SIZE) + 0.5
    return stored_from_xyz(voxelization(fv.contiguous(), SIZE, False) > 0)


def field_meshes(field: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Marching cubes (level 0.5) of occupancy sampled at the voxel frame's cell corners, field
    ``(B, 33, 33, 33)`` indexed [x, y, z] -> per shape (vertices ``(V, 3)``, faces ``(F, 3)``) in
    the object frame (no faces where the field never reaches 0.5)."""
    out = []
    for f in field.detach().cpu().numpy():
        padded = np.pad(f, 1)  # zero outside the frame closes every surface
        if padded.max() <= 0.5:
            out.append((torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)))
            continue
        verts, faces, _, _ = measure.marching_cubes(padded, 0.5)
        # corner index i (before padding) sits at world (i - 16) / 31
        world = (verts - 1 - SIZE / 2) / (SIZE - 1)
        out.append((torch.tensor(world, dtype=torch.float32), torch.tensor(np.ascontiguousarray(faces), dtype=torch.int64)))
    return out


def corner_points() -> torch.Tensor:
    """World positions of the voxel frame's cell corners ``(33^3, 3)``, [x, y, z] order."""
    c = (torch.arange(SIZE + 1, dtype=torch.float32) - SIZE / 2) / (SIZE - 1)
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)


def field_voxels(corner_field: torch.Tensor, centre_field: torch.Tensor, level: float = 0.5) -> torch.Tensor:
    """Voxels (stored order, bool ``(B, 32, 32, 32)``) of an occupancy field sampled at the cell
    corners ``(B, 33, 33, 33)`` and centres ``(B, 32, 32, 32)``, both [x, y, z]: a cell is full when
    any of its 9 samples exceeds ``level`` — the field's analogue of NMR's rule (full when the
    surface crosses the cell or the cell is inside), as the generator's voxels are built."""
    corners = F.max_pool3d(corner_field[:, None], kernel_size=2, stride=1)[:, 0]  # max of each cell's 8 corners
    return stored_from_xyz(torch.maximum(corners, centre_field) > level)


def centre_points() -> torch.Tensor:
    """World positions of the voxel frame's cell centres ``(32^3, 3)``, [x, y, z] order."""
    c = (torch.arange(SIZE, dtype=torch.float32) + 0.5 - SIZE / 2) / (SIZE - 1)
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)


@torch.no_grad()
def predict_voxels(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted NMR voxels (bool ``(B, 32, 32, 32)``, stored order) from images ``(B, 4, 64, 64)``:
    the mesh model's mesh voxelized as SoftRas evaluates, the implicit model's field by
    :func:`field_voxels`."""
    if isinstance(model, MeshModel):
        vertices, faces, _ = model(images)
        return mesh_voxels(vertices, faces)
    if isinstance(model, ImplicitModel):
        b, n = images.shape[0], (SIZE + 1) ** 3
        pts = torch.cat((corner_points(), centre_points())).to(images)[None].expand(b, -1, -1)
        phi = model(images, pts)
        return field_voxels(phi[:, :n].reshape(b, SIZE + 1, SIZE + 1, SIZE + 1), phi[:, n:].reshape(b, SIZE, SIZE, SIZE))
    raise TypeError(f"model must be a MeshModel or ImplicitModel, got {type(model).__name__}")


def evaluate_split(model: torch.nn.Module, data: D.ShapeNetSplit, batch_size: int = 16,
                   max_shapes: int | None = None, view: int | None = None) -> torch.Tensor:
    """Voxel IoU per shape ``(N,)``: each shape is reconstructed from one view (``view``, or
    shape index mod 24 so every view is used), the model in eval mode."""
    was_training = model.training
    model.eval()
    n = len(data) if max_shapes is None else min(max_shapes, len(data))
    idx_all = torch.arange(n) if max_shapes is None else torch.linspace(0, len(data) - 1, n).long()
    ious = []
    try:
        for start in range(0, n, batch_size):
            idx = idx_all[start:start + batch_size]
            views = torch.full_like(idx, view) if view is not None else idx % D.NUM_VIEWS
            device = next(model.parameters()).device
            pred = predict_voxels(model, data.views(idx, views).to(device)).cpu()
            ious.append(voxel_iou(pred, data.voxels[idx]))
    finally:
        model.train(was_training)
    return torch.cat(ious)


def _best_mean_grid(train_voxels: torch.Tensor) -> torch.Tensor:
    """The mean of ``train_voxels (N, 32, 32, 32)`` thresholded at the level in {0.05, ..., 0.95}
    that maximizes the mean IoU on those same shapes."""
    mean = train_voxels.float().mean(0)
    levels = np.arange(0.05, 1.0, 0.05)
    scores = [voxel_iou((mean > t).expand_as(train_voxels), train_voxels).mean().item() for t in levels]
    return mean > levels[int(np.argmax(scores))]


def mean_voxel_baseline(train: D.ShapeNetSplit, test: D.ShapeNetSplit, by_class: bool = False) -> torch.Tensor:
    """IoU per test shape ``(N,)`` of a constant prediction: the training set's mean voxel grid (all
    classes together, or with ``by_class`` each class's own), thresholded as :func:`_best_mean_grid`."""
    if not by_class:
        return voxel_iou(_best_mean_grid(train.voxels).expand_as(test.voxels), test.voxels)
    iou = torch.empty(len(test), dtype=torch.float64)
    for i in range(len(test.class_ids)):
        sel = test.labels == i
        grid = _best_mean_grid(train.voxels[train.labels == i])
        iou[sel] = voxel_iou(grid.expand(int(sel.sum()), -1, -1, -1), test.voxels[sel])
    return iou


def per_class(ious: torch.Tensor, data: D.ShapeNetSplit) -> list[float]:
    return [ious[data.labels[: len(ious)] == i].mean().item() for i in range(len(data.class_ids))]


def table(rows: dict[str, list[float]], class_ids: list[str]) -> str:
    """A markdown table: one row per method, one column per class, then the mean."""
    head = "| method | " + " | ".join(D.CLASS_NAMES[c] for c in class_ids) + " | mean |"
    lines = [head, "|" + "---|" * (len(class_ids) + 2)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {np.mean(vals):.4f} |")
    return "\n".join(lines)


def paper_rows(class_ids: list[str], table_classes: tuple[str, ...], table: dict[str, list[float]]) -> dict[str, list[float]]:
    """A paper table's rows restricted to ``class_ids`` (all of which must be in ``table_classes``)."""
    return {name: [vals[table_classes.index(c)] for c in class_ids] for name, vals in table.items()}


def load_run(run_dir: str | pathlib.Path) -> tuple[TrainConfig, torch.nn.Module]:
    """Config and model (weights from the run's checkpoint, CPU, eval mode) of a training run."""
    cfg = TrainConfig.load(run_dir)
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(pathlib.Path(run_dir) / FILENAME)["model"])
    return cfg, model.eval()


def prediction_figure(model: torch.nn.Module, data: D.ShapeNetSplit, path: pathlib.Path, per_class_n: int = 1) -> None:
    """Input views and predicted vs true voxels (projected along the depth axis), one row per shape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = torch.cat([(data.labels == i).nonzero()[:per_class_n, 0] for i in range(len(data.class_ids))])
    images = data.views(idx, idx % D.NUM_VIEWS)
    pred = predict_voxels(model, images)
    fig, axes = plt.subplots(len(idx), 3, figsize=(6, 2 * len(idx)), squeeze=False)
    for row, i in enumerate(idx.tolist()):
        rgba = images[row].permute(1, 2, 0).numpy()
        axes[row, 0].imshow(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
        # stored [a=y, b=x, c=31-z]: the front view (max over depth) with y up
        axes[row, 1].imshow(data.voxels[i].any(2).numpy()[::-1], cmap="gray")
        axes[row, 2].imshow(pred[row].any(2).numpy()[::-1], cmap="gray")
        axes[row, 0].set_ylabel(D.CLASS_NAMES[data.class_ids[data.labels[i]]], fontsize=8)
    for ax, title in zip(axes[0], ("input", "true voxels", "predicted")):
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _main(argv: list[str]) -> str:
    p = Parser(prog="reconstruction.evaluate", description=__doc__)
    p.add_argument("--run", required=True, help="training run directory (config.json + checkpoint.pt)")
    p.add_argument("--split", default="test", choices=D.SPLITS, help="dataset split to evaluate on")
    p.add_argument("--data", default=None, help="dataset directory (default: the run's)")
    args = p.parse_args(argv)
    run = pathlib.Path(args.run)
    cfg, model = load_run(run)
    data_dir = args.data or cfg.data
    train, test = (D.ShapeNetSplit.load(data_dir, list(cfg.classes), s) for s in ("train", args.split))
    ious = evaluate_split(model, test)
    ours = f"ours: {cfg.model}" + (" (full)" if cfg.lambda_colour > 0 else "")
    rows = {
        ours: per_class(ious, test),
        "mean-voxel baseline": per_class(mean_voxel_baseline(train, test), test),
        "per-class mean-voxel baseline": per_class(mean_voxel_baseline(train, test, by_class=True), test),
    }
    classes = list(cfg.classes)
    text = (
        f"Voxel IoU on the {args.split} split of {data_dir} ({len(test)} shapes, one view each); "
        f"the paper rows are ShapeNet numbers, for reference only.\n\n"
        + table(rows | paper_rows(classes, D.CLASS_IDS, PAPER_SOFTRAS), classes)
        + "\n"
    )
    shared = [c for c in PAPER_IMPLICIT_CLASSES if c in classes]
    if shared:  # the implicit paper's table, on the classes it reports
        cols = [classes.index(c) for c in shared]
        ours_shared = {name: [vals[i] for i in cols] for name, vals in rows.items()}
        text += "\nOn the implicit paper's classes:\n\n" + table(
            ours_shared | paper_rows(shared, PAPER_IMPLICIT_CLASSES, PAPER_IMPLICIT), shared) + "\n"
    (run / f"eval_{args.split}.md").write_text(text)
    prediction_figure(model, test, run / f"predictions_{args.split}.png")
    print(text)
    print(f"{ours}: mean {args.split} IoU {ious.mean().item():.4f} over {len(test)} shapes "
          f"(table: {run / f'eval_{args.split}.md'})")
    return text


def main(argv: list[str] | None = None) -> str:
    return run_cli("reconstruction.evaluate", _main, argv)


if __name__ == "__main__":
    main()
