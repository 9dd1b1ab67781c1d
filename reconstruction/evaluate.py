"""Voxel IoU of trained runs, per class, beside the baselines and the papers' numbers.

    python -m reconstruction.evaluate --run RUN_DIR [RUN_DIR ...] [--split test] [--data DIR]

Baselines: the training set's mean voxel grid (all classes), each class's own mean grid (both
thresholded at their best level on the training set), retrieval (the voxels of the training shape
whose nearest view, by a fixed 16x16 image feature chosen on the validation split, is nearest to
the input) and, when a ``--model voxel`` run is given, the 3D-supervised voxel decoder. The
implicit model is scored on its field and on its marching-cubes mesh. Writes
``RUN_DIR/eval_{split}.md`` (the tables; paper rows name their paper) and
``RUN_DIR/predictions_{split}.png`` (input | truth | each method), and prints the table.
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
from .models import ImplicitModel, MeshModel, VoxelModel, build_model
from .voxels import SIZE, stored_from_xyz, voxel_iou

#: SoftRas's 13-class table (3D IoU, Liu et al. ICCV'19, ShapeNet) and the implicit paper's 6-class
#: table (Liu et al. NeurIPS'19); docs/design.md cites both. Row names say which paper they are from.
SOFTRAS_PAPER = "SoftRas paper (ICCV'19), ShapeNet"
IMPLICIT_PAPER = "implicit paper (NeurIPS'19), ShapeNet"
PAPER_SOFTRAS = {
    "Retrieval": [0.5564, 0.4875, 0.5713, 0.6519, 0.3512, 0.3958, 0.2905, 0.4600, 0.5133, 0.5314, 0.3097, 0.6696, 0.4078],
    "Voxel (3D-supervised)": [0.5556, 0.4924, 0.6823, 0.7123, 0.4494, 0.5395, 0.4223, 0.5868, 0.5987, 0.6221, 0.4938, 0.7504, 0.5507],
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
def predict_voxels(model: torch.nn.Module, images: torch.Tensor, implicit_mesh: bool = False) -> torch.Tensor:
    """Predicted NMR voxels (bool ``(B, 32, 32, 32)``, stored order) from images ``(B, 4, 64, 64)``:
    the mesh model's mesh voxelized as SoftRas evaluates; the implicit model's field by
    :func:`field_voxels`, or with ``implicit_mesh`` its marching-cubes mesh voxelized like the mesh
    model's; the voxel model's probabilities above its calibrated level."""
    if isinstance(model, MeshModel):
        vertices, faces, _ = model(images)
        return mesh_voxels(vertices, faces)
    if isinstance(model, ImplicitModel):
        b, n = images.shape[0], (SIZE + 1) ** 3
        pts = torch.cat((corner_points(), centre_points())).to(images)[None].expand(b, -1, -1)
        phi = model(images, pts)
        corners = phi[:, :n].reshape(b, SIZE + 1, SIZE + 1, SIZE + 1)
        if implicit_mesh:  # marching cubes, then voxelized exactly as the mesh model's meshes
            return torch.stack([mesh_voxels(v[None], f[None])[0] if len(f) else torch.zeros((SIZE,) * 3, dtype=torch.bool)
                                for v, f in field_meshes(corners)])
        return field_voxels(corners, phi[:, n:].reshape(b, SIZE, SIZE, SIZE))
    if isinstance(model, VoxelModel):
        return torch.sigmoid(model(images)) > model.level
    raise TypeError(f"model must be a MeshModel, ImplicitModel or VoxelModel, got {type(model).__name__}")


def evaluate_split(model: torch.nn.Module, data: D.ShapeNetSplit, batch_size: int = 16,
                   max_shapes: int | None = None, view: int | None = None, implicit_mesh: bool = False) -> torch.Tensor:
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
            pred = predict_voxels(model, data.views(idx, views).to(device), implicit_mesh).cpu()
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


#: Retrieval features: the view's alpha, or its RGBA, average-pooled to 16 x 16.
RETRIEVAL_FEATURES = ("alpha", "rgba")
RETRIEVAL_SIZE = 16


def image_features(images: torch.Tensor, feature: str = "alpha") -> torch.Tensor:
    """Fixed retrieval features ``(B, D)`` of RGBA images ``(B, 4, 64, 64)`` in [0, 1]."""
    if feature not in RETRIEVAL_FEATURES:
        raise ValueError(f"feature: expected one of {RETRIEVAL_FEATURES}, got {feature!r}")
    x = images[:, 3:] if feature == "alpha" else images
    return F.adaptive_avg_pool2d(x, RETRIEVAL_SIZE).flatten(1)


def retrieval_index(train: D.ShapeNetSplit, feature: str = "alpha") -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every training view ``(N * 24, D)`` and the shape each belongs to ``(N * 24,)``."""
    feats = torch.cat([image_features(train.images[i].float() / 255, feature) for i in range(len(train))])
    owner = torch.arange(len(train)).repeat_interleave(D.NUM_VIEWS)
    return feats, owner


def retrieve(index: tuple[torch.Tensor, torch.Tensor], images: torch.Tensor, feature: str = "alpha") -> torch.Tensor:
    """For each query image ``(B, 4, 64, 64)``, the training shape ``(B,)`` owning the nearest
    training view (Euclidean distance between features)."""
    feats, owner = index
    return owner[torch.cdist(image_features(images, feature), feats).argmin(1)]


def retrieval_baseline(train: D.ShapeNetSplit, test: D.ShapeNetSplit, feature: str = "alpha",
                       view: int | None = None) -> torch.Tensor:
    """IoU per test shape ``(N,)`` of the retrieval baseline: the voxels of the training shape whose
    closest view (by :func:`image_features`) is nearest to the test view (the view
    :func:`evaluate_split` uses: ``view``, or shape index mod 24)."""
    index = retrieval_index(train, feature)
    idx = torch.arange(len(test))
    views = torch.full_like(idx, view) if view is not None else idx % D.NUM_VIEWS
    nearest = torch.cat([retrieve(index, test.views(chunk, views[chunk]), feature) for chunk in idx.split(64)])
    return voxel_iou(train.voxels[nearest], test.voxels)


def per_class(ious: torch.Tensor, data: D.ShapeNetSplit) -> list[float]:
    return [ious[data.labels[: len(ious)] == i].mean().item() for i in range(len(data.class_ids))]


def table(rows: dict[str, list[float]], class_ids: list[str]) -> str:
    """A markdown table: one row per method, one column per class, then the mean."""
    head = "| method | " + " | ".join(D.CLASS_NAMES[c] for c in class_ids) + " | mean |"
    lines = [head, "|" + "---|" * (len(class_ids) + 2)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {np.mean(vals):.4f} |")
    return "\n".join(lines)


def paper_rows(class_ids: list[str], table_classes: tuple[str, ...], table: dict[str, list[float]],
               paper: str = "") -> dict[str, list[float]]:
    """A paper table's rows restricted to ``class_ids`` (all of which must be in ``table_classes``),
    each name followed by ``paper`` in brackets."""
    suffix = f" [{paper}]" if paper else ""
    return {name + suffix: [vals[table_classes.index(c)] for c in class_ids] for name, vals in table.items()}


def load_run(run_dir: str | pathlib.Path) -> tuple[TrainConfig, torch.nn.Module]:
    """Config and model (weights from the run's checkpoint, CPU, eval mode) of a training run."""
    cfg = TrainConfig.load(run_dir)
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(pathlib.Path(run_dir) / FILENAME)["model"])
    return cfg, model.eval()


def method_name(cfg: TrainConfig) -> str:
    """The summary key of a run: mesh, mesh_full, implicit or voxel_3d."""
    if cfg.model == "mesh":
        return "mesh_full" if cfg.lambda_colour > 0 else "mesh"
    return "voxel_3d" if cfg.model == "voxel" else "implicit"


#: Table labels of the summary keys (ours vs. baselines).
LABELS = {
    "mesh": "ours: mesh (SoftRas sil.)",
    "mesh_full": "ours: mesh (SoftRas full)",
    "implicit": "ours: implicit (field)",
    "implicit_mesh": "ours: implicit (marching-cubes mesh)",
    "voxel_3d": "baseline: voxel decoder (3D-supervised)",
    "retrieval": "baseline: retrieval (nearest training view)",
    "per_class_mean": "baseline: per-class mean voxels",
    "mean_voxel": "baseline: mean voxels (all classes)",
}


def choose_retrieval_feature(train: D.ShapeNetSplit, val: D.ShapeNetSplit | None) -> str:
    """The retrieval feature with the best mean IoU on the validation split (alpha without one)."""
    if val is None or len(val) == 0:
        return RETRIEVAL_FEATURES[0]
    scores = [retrieval_baseline(train, val, f).mean().item() for f in RETRIEVAL_FEATURES]
    return RETRIEVAL_FEATURES[int(np.argmax(scores))]


def baseline_ious(train: D.ShapeNetSplit, val: D.ShapeNetSplit | None, test: D.ShapeNetSplit) -> dict[str, torch.Tensor]:
    """IoU per test shape of the image-blind and retrieval baselines (the retrieval feature chosen on
    ``val``), keyed like :data:`LABELS`."""
    feature = choose_retrieval_feature(train, val)
    return {"retrieval": retrieval_baseline(train, test, feature),
            "per_class_mean": mean_voxel_baseline(train, test, by_class=True),
            "mean_voxel": mean_voxel_baseline(train, test)}


def model_ious(key: str, model: torch.nn.Module, test: D.ShapeNetSplit) -> dict[str, torch.Tensor]:
    """IoU per test shape of a trained model (the implicit one on its field and on its mesh)."""
    out = {key: evaluate_split(model, test)}
    if isinstance(model, ImplicitModel):
        out["implicit_mesh"] = evaluate_split(model, test, implicit_mesh=True)
    return out


def report(ious: dict[str, torch.Tensor], test: D.ShapeNetSplit, split: str, data_dir) -> str:
    """Markdown: the methods' per-class IoU (ours and baselines, keys of :data:`LABELS`) beside the
    papers' rows, each labelled with its paper; then the same on the implicit paper's classes."""
    classes = list(test.class_ids)
    rows = {LABELS.get(k, k): per_class(v, test) for k, v in ious.items()}
    text = (
        f"Voxel IoU on the {split} split of {data_dir} ({len(test)} shapes, one view each). Rows in "
        f"[brackets] are the papers' ShapeNet numbers, for reference only (different data).\n\n"
        + table(rows | paper_rows(classes, D.CLASS_IDS, PAPER_SOFTRAS, SOFTRAS_PAPER), classes) + "\n"
    )
    shared = [c for c in PAPER_IMPLICIT_CLASSES if c in classes]
    if shared:  # the implicit paper's table, on the classes it reports
        cols = [classes.index(c) for c in shared]
        ours_shared = {name: [vals[i] for i in cols] for name, vals in rows.items()}
        text += "\nOn the implicit paper's classes:\n\n" + table(
            ours_shared | paper_rows(shared, PAPER_IMPLICIT_CLASSES, PAPER_IMPLICIT, IMPLICIT_PAPER), shared) + "\n"
    return text


def comparison_figure(models: dict[str, torch.nn.Module], train: D.ShapeNetSplit, test: D.ShapeNetSplit,
                      path: pathlib.Path, per_class_n: int = 1, feature: str = "alpha") -> None:
    """One row per test shape (``per_class_n`` per class): the input view, the true voxels and each
    method's predicted voxels (models, then retrieval and the per-class mean), drawn as front
    projections (max over depth, y up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = torch.cat([(test.labels == i).nonzero()[:per_class_n, 0] for i in range(len(test.class_ids))])
    images = test.views(idx, idx % D.NUM_VIEWS)
    columns = {"truth": test.voxels[idx]}
    for key, model in models.items():
        columns[key] = predict_voxels(model, images)
        if isinstance(model, ImplicitModel):
            columns["implicit_mesh"] = predict_voxels(model, images, implicit_mesh=True)
    columns["retrieval"] = train.voxels[retrieve(retrieval_index(train, feature), images, feature)]
    columns["per_class_mean"] = torch.stack([_best_mean_grid(train.voxels[train.labels == test.labels[i]]) for i in idx])
    ncol = 1 + len(columns)
    fig, axes = plt.subplots(len(idx), ncol, figsize=(1.3 * ncol, 1.3 * len(idx) + 0.4), squeeze=False)
    for row, i in enumerate(idx.tolist()):
        rgba = images[row].permute(1, 2, 0).numpy()
        axes[row, 0].imshow(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
        axes[row, 0].set_ylabel(D.CLASS_NAMES[test.class_ids[test.labels[i]]], fontsize=7)
        for col, (key, vox) in enumerate(columns.items(), start=1):
            # stored [a=y, b=x, c=31-z]: the front view (max over depth) with y up
            axes[row, col].imshow(vox[row].any(2).numpy()[::-1], cmap="gray_r", vmin=0, vmax=1)
            if key != "truth":
                iou = voxel_iou(vox[row][None], test.voxels[i][None]).item()
                axes[row, col].set_xlabel(f"IoU {iou:.2f}", fontsize=6, labelpad=1)
    titles = ["input", "truth"] + [LABELS.get(k, k).split(": ", 1)[-1] for k in list(columns)[1:]]
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Single-view reconstruction: input | true voxels | each method (front projection of 32³ voxels)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _main(argv: list[str]) -> str:
    p = Parser(prog="reconstruction.evaluate", description=__doc__)
    p.add_argument("--run", required=True, nargs="+",
                   help="training run directories (config.json + checkpoint.pt); the first one's files are written")
    p.add_argument("--split", default="test", choices=D.SPLITS, help="dataset split to evaluate on")
    p.add_argument("--data", default=None, help="dataset directory (default: the first run's)")
    args = p.parse_args(argv)
    runs = [pathlib.Path(r) for r in args.run]
    loaded = [load_run(r) for r in runs]
    cfg = loaded[0][0]
    data_dir = args.data or cfg.data
    classes = list(cfg.classes)
    train, test = (D.ShapeNetSplit.load(data_dir, classes, s) for s in ("train", args.split))
    val = D.ShapeNetSplit.load(data_dir, classes, "val") if args.split != "val" else None
    ious, models = {}, {}
    for c, model in loaded:
        key = method_name(c)
        models[key] = model
        ious |= model_ious(key, model, test)
    ious |= baseline_ious(train, val, test)
    text = report(ious, test, args.split, data_dir)
    out = runs[0]
    (out / f"eval_{args.split}.md").write_text(text)
    comparison_figure(models, train, test, out / f"predictions_{args.split}.png")
    print(text)
    first = method_name(cfg)
    print(f"{LABELS[first]}: mean {args.split} IoU {ious[first].mean().item():.4f} over {len(test)} shapes; "
          f"per-class mean {ious['per_class_mean'].mean().item():.4f}, retrieval {ious['retrieval'].mean().item():.4f} "
          f"(table: {out / f'eval_{args.split}.md'})")
    return text


def main(argv: list[str] | None = None) -> str:
    return run_cli("reconstruction.evaluate", _main, argv)


if __name__ == "__main__":
    main()
