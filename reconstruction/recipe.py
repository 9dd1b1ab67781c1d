"""One command from data to the table: dataset -> mesh, mesh_full, implicit, voxel_3d -> evaluation.

    python -m reconstruction.recipe cpu --out DIR [--tiny] [--data DATA] [--per-class N] [--classes all]
    python -m reconstruction.recipe gpu --out DIR [--data DATA]

``cpu`` is sized for a 2-core CPU (each model well under 30 CPU minutes); ``gpu`` holds SoftRas's
full-size settings (networks, batch 64, lr 1e-4, 250k steps). ``--tiny`` is a toy scale for tests.
DIR receives ``data/`` (the synthetic set, unless ``--data`` names one), a run directory per model
(``mesh``: SoftRas silhouette loss; ``mesh_full``: the colour variant; ``implicit``: anchor-ray
probing; ``voxel_3d``: the 3D-supervised baseline), then ``summary.json``
(``{"mean_iou": {method: iou}, "per_class": {method: {synset: iou}}, ...}``), ``tables.md``,
``comparison.png`` (input | truth | each method) and ``samples.png`` (sample shapes per class).
Rerunning the same command continues: a finished run is reused, an interrupted one resumed.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import pathlib
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from tqdm import tqdm

from taichi_softras import runtime
from taichi_softras.cli_kit import positive_int

from . import datasets as D
from . import evaluate as E
from . import make_dataset
from .checkpoint import FILENAME, load_checkpoint
from .cli import Parser, UserError, run
from .config import TrainConfig
from .train import train

#: The summary's methods: the models the recipe trains, then the baselines.
MODEL_KEYS = ("mesh", "mesh_full", "implicit", "voxel_3d")
BASELINE_KEYS = ("retrieval", "per_class_mean", "mean_voxel")
SUMMARY_KEYS = MODEL_KEYS + BASELINE_KEYS
#: The order ``--jobs`` starts the runs in: the two longest first.
TRAIN_ORDER = ("mesh", "implicit", "mesh_full", "voxel_3d")

#: CPU-sized networks (2-4x narrower than SoftRas's) and optimizer, shared by the four models.
CPU_COMMON = dict(batch_size=16, lr=5e-4, widths=(32, 64, 128), hidden=512, code=256, val_every=250,
                  val_shapes=52, checkpoint_every=100, log_every=10)
#: Toy scale (--tiny): a few steps of tiny networks, for tests.
TINY_COMMON = dict(batch_size=4, lr=1e-3, widths=(8, 16, 16), hidden=64, code=32, decoder_hidden=(64, 128),
                   mlp_width=32, mlp_depth=2, num_anchors=256, num_rays=128, voxel_channels=8, val_every=0,
                   checkpoint_every=50, log_every=5)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Dataset size (synthetic shapes per class) and each model's :class:`TrainConfig` fields."""

    per_class: int
    classes: str
    common: dict
    models: dict

    def config(self, key: str, data: pathlib.Path, out: pathlib.Path, classes: tuple[str, ...]) -> TrainConfig:
        return TrainConfig(**{**self.common, **self.models[key], "data": str(data), "out": str(out / key),
                              "classes": classes})


RECIPES = {
    # sized so that the four models and the evaluation take about an hour on a shared 2-core CPU
    "cpu": Recipe(per_class=60, classes="all", common=CPU_COMMON, models={
        "mesh": dict(model="mesh", steps=1600, decoder_hidden=(512, 1024), render_size=32),
        "mesh_full": dict(model="mesh", steps=400, decoder_hidden=(512, 1024), render_size=32, lambda_colour=1.0),
        "implicit": dict(model="implicit", steps=1500, probe_views=4),
        "voxel_3d": dict(model="voxel", steps=1000),
    }),
    # SoftRas's full-size settings (config.TrainConfig's defaults: conv 64/128/256, FC 1024, code 512,
    # decoder 1024/2048, batch 64, Adam 1e-4, 250k steps, 64^2 silhouettes), for a GPU
    "gpu": Recipe(per_class=1000, classes="all", common=dict(val_every=5000, val_shapes=512,
                                                             checkpoint_every=1000, log_every=100), models={
        "mesh": dict(model="mesh"),
        "mesh_full": dict(model="mesh", lambda_colour=1.0),
        "implicit": dict(model="implicit", probe_views=4),
        "voxel_3d": dict(model="voxel"),
    }),
    "tiny": Recipe(per_class=4, classes="car,chair", common=TINY_COMMON, models={
        "mesh": dict(model="mesh", steps=6, render_size=32),
        "mesh_full": dict(model="mesh", steps=6, render_size=32, lambda_colour=1.0),
        "implicit": dict(model="implicit", steps=6, probe_views=3),
        "voxel_3d": dict(model="voxel", steps=6),
    }),
}


def dataset(out: pathlib.Path, class_ids: list[str], per_class: int, seed: int) -> pathlib.Path:
    """``out/data``: the synthetic set of ``per_class`` shapes per class (reused when its
    ``dataset.json`` matches; a different one there is an error naming --out)."""
    data = out / "data"
    spec = {"classes": class_ids, "per_class": per_class, "seed": seed}
    stamp = data / "dataset.json"
    if stamp.is_file():
        if json.loads(stamp.read_text()) != spec:
            raise UserError(f"--out {out}: {data} holds another dataset ({stamp.read_text().strip()}); "
                            "choose another --out")
        return data
    make_dataset.main(["--out", str(data), "--per-class", str(per_class), "--classes", ",".join(class_ids),
                       "--seed", str(seed)])
    stamp.write_text(json.dumps(spec))
    return data


def train_or_reuse(cfg: TrainConfig, position: int | None = None) -> float:
    """Train ``cfg`` (resuming a checkpoint in ``cfg.out``; a finished one is reused as it is);
    returns the run's training seconds over all invocations (kept in ``train_seconds.json``).
    ``position``: the line of its progress bar."""
    run_dir = pathlib.Path(cfg.out)
    ckpt, clock = run_dir / FILENAME, run_dir / "train_seconds.json"
    spent = json.loads(clock.read_text())["seconds"] if clock.is_file() else 0.0
    if ckpt.is_file():
        saved = TrainConfig.load(cfg.out)
        if dataclasses.replace(saved, steps=cfg.steps) != cfg:
            raise UserError(f"--out: {cfg.out} holds a run with another config; choose another --out")
        if load_checkpoint(ckpt)["step"] >= cfg.steps:
            return spent
    start = time.perf_counter()
    try:
        train(cfg, resume=ckpt.is_file(), position=position)
    finally:  # an interrupted run's time counts too (it resumes from its final checkpoint)
        if run_dir.is_dir():
            spent += time.perf_counter() - start
            clock.write_text(json.dumps({"seconds": round(spent, 1)}))
    return spent


def _train_job(cfg: TrainConfig, threads: int, position: int) -> float:
    """One model of ``--jobs N`` in its own (spawned) process: ``threads`` torch and Taichi CPU
    threads, its progress bar on line ``position``."""
    torch.set_num_threads(threads)
    os.environ[runtime.CPU_THREADS_ENV] = str(threads)  # read when the first kernel starts Taichi
    return train_or_reuse(cfg, position)


def train_all(cfgs: dict[str, TrainConfig], jobs: int = 1) -> dict[str, float]:
    """Train (or reuse) every config; returns each run's training seconds. ``jobs > 1`` trains
    that many at once in spawned processes, the CPU's cores shared out between them (the two
    longest runs, mesh and implicit, start first)."""
    if jobs <= 1:
        return {key: train_or_reuse(cfg) for key, cfg in cfgs.items()}
    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = sorted(cfgs, key=TRAIN_ORDER.index)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(_train_job, cfgs[key], threads, i % jobs) for i, key in enumerate(order)}
        return {key: futures[key].result() for key in cfgs}


def summary(ious: dict[str, torch.Tensor], test: D.ShapeNetSplit) -> dict:
    """``{"mean_iou": {method: iou}, "per_class": {method: {synset: iou}}}`` (every method in
    ``ious``: :data:`SUMMARY_KEYS` and ``implicit_mesh``, the implicit model's marching-cubes mesh),
    plus each model's margin over the better of the per-class mean and retrieval."""
    mean = {k: round(v.mean().item(), 4) for k, v in ious.items()}
    per_class = {k: {c: round(x, 4) for c, x in zip(test.class_ids, E.per_class(v, test))} for k, v in ious.items()}
    best_baseline = max(mean["per_class_mean"], mean["retrieval"])
    margin = {k: round(mean[k] - best_baseline, 4) for k in (*MODEL_KEYS, "implicit_mesh") if k in mean}
    return {"mean_iou": mean, "per_class": per_class, "margin_over_best_image_baseline": margin}


def evaluate_all(models: dict[str, torch.nn.Module], data: pathlib.Path, classes: list[str]) -> tuple[dict, dict[str, D.ShapeNetSplit]]:
    """IoU per test shape of every model and baseline (keys of :data:`evaluate.LABELS`), and the
    splits it loaded."""
    train_split, val, test = (D.ShapeNetSplit.load(data, classes, s) for s in D.SPLITS)
    ious = {}
    for key, model in tqdm(models.items(), desc="evaluate", unit="model"):
        ious |= E.model_ious(key, model, test)
    ious |= E.baseline_ious(train_split, val, test)
    return ious, {"train": train_split, "val": val, "test": test}


def run_recipe(name: str, out: pathlib.Path, data: pathlib.Path | None = None, classes: str | None = None,
               per_class: int | None = None, seed: int = 0, models: tuple[str, ...] = MODEL_KEYS,
               jobs: int = 1) -> dict:
    """Dataset (unless ``data``) -> train ``models`` (``jobs`` at once) -> evaluate; writes the
    summary and returns it."""
    recipe = RECIPES[name]
    class_ids = D.parse_class_ids(classes or recipe.classes)
    t0 = time.perf_counter()
    times = {}
    if data is None:
        data = dataset(out, class_ids, per_class or recipe.per_class, seed)
        times["dataset"] = round(time.perf_counter() - t0, 1)
    cfgs = {key: dataclasses.replace(recipe.config(key, data, out, tuple(class_ids)), seed=seed) for key in models}
    times |= {key: round(seconds, 1) for key, seconds in train_all(cfgs, jobs).items()}
    trained = {key: E.load_run(cfg.out)[1] for key, cfg in cfgs.items()}
    t1 = time.perf_counter()
    ious, splits = evaluate_all(trained, data, class_ids)
    train_split, test = splits["train"], splits["test"]
    result = summary(ious, test)
    text = E.report(ious, test, "test", data)
    E.comparison_figure(trained, train_split, test, out / "comparison.png")
    make_dataset.samples_figure(train_split, out / "samples.png")
    times["evaluation"] = round(time.perf_counter() - t1, 1)
    times["total"] = round(time.perf_counter() - t0, 1)
    result |= {"recipe": name, "data": str(data), "seconds": times,
               "shapes": {s: len(split) for s, split in splits.items()}}
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    (out / "tables.md").write_text(text + "\nSeconds (wall): " + ", ".join(f"{k} {v}" for k, v in times.items()) + "\n")
    return result


def build_parser() -> Parser:
    p = Parser(prog="reconstruction.recipe", description=__doc__)
    p.add_argument("recipe", choices=("cpu", "gpu"), help="cpu: 2-core-CPU sizes; gpu: SoftRas's full-size settings")
    p.add_argument("--out", required=True, help="output directory (data, runs, summary.json, tables.md, figures)")
    p.add_argument("--tiny", action="store_true", help="toy scale (2 classes x 4 shapes, a few steps): for tests")
    p.add_argument("--data", default=None, help="an NMR-format dataset to use instead of generating one")
    p.add_argument("--classes", default=None, help="'all' or comma-separated class ids/names (default: the recipe's)")
    p.add_argument("--per-class", type=positive_int, default=None,
                   help="synthetic shapes per class (default: the recipe's; >= 3)")
    p.add_argument("--models", nargs="+", choices=MODEL_KEYS, default=list(MODEL_KEYS), help="models to train")
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset and of every model")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="models trained at once, each in its own process with its share of the CPU's cores")
    return p


def _main(argv: list[str]) -> dict:
    args = build_parser().parse_args(argv)
    if args.per_class is not None and args.per_class < 3:
        raise UserError(f"--per-class {args.per_class}: must be >= 3 (one shape per split)")
    if args.data is not None and not pathlib.Path(args.data).is_dir():
        raise UserError(f"--data {args.data}: not a directory")
    name = "tiny" if args.tiny else args.recipe
    out = pathlib.Path(args.out)
    result = run_recipe(name, out, pathlib.Path(args.data) if args.data else None, args.classes, args.per_class,
                        args.seed, tuple(args.models), args.jobs)
    print((out / "tables.md").read_text())
    print("mean test IoU: " + ", ".join(f"{k} {v:.4f}" for k, v in result["mean_iou"].items()) + f" (-> {out / 'summary.json'})")
    return result


def main(argv: list[str] | None = None) -> dict:
    return run("reconstruction.recipe", _main, argv)


if __name__ == "__main__":
    main()
