"""Train a single-view reconstruction model from multi-view silhouettes.

    python -m reconstruction.train --model mesh|implicit --data DIR --classes all --out RUN_DIR
        [--steps N] [--batch-size B] [--lr LR] [--resume] ...
    torchrun --nproc_per_node=K -m reconstruction.train ...   (DistributedDataParallel)

Each step takes B training shapes (a distributed sampler splits every epoch's shuffled order over
the ranks), two different random views a, b of each, predicts the shape from view a and compares
its renders (mesh) or probed silhouettes (implicit) with the silhouettes of a and b. The batch
drawn at step s depends only on (seed, s, rank), so ``--resume`` continues exactly where a run left.
Rank 0 writes ``config.json``, ``checkpoint.pt`` (atomic), ``log.jsonl`` and ``loss.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import signal
import sys
import threading

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from . import datasets as D
from .checkpoint import FILENAME, CorruptCheckpointError, load_checkpoint, save_checkpoint
from .cli import Parser, run
from .config import LR_SCHEDULES, MODELS, TrainConfig
from .evaluate import evaluate_split
from .models import build_model
from .objectives import ImplicitObjective, MeshObjective, VoxelObjective, calibrate_voxel_level


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initializes the process group under torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device


def step_batch(cfg: TrainConfig, n_shapes: int, step: int, rank: int, world: int):
    """Shape indices ``(B,)`` and a generator for step ``step`` of rank ``rank`` (deterministic)."""
    sampler = DistributedSampler(range(n_shapes), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True)
    per_epoch = len(sampler) // cfg.batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size: {cfg.batch_size} per rank x {world} ranks exceeds the {n_shapes} training shapes")
    epoch, k = divmod(step, per_epoch)
    sampler.set_epoch(epoch)
    order = list(sampler)
    idx = torch.tensor(order[k * cfg.batch_size:(k + 1) * cfg.batch_size])
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * world + rank)
    return idx, generator


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SoftRas's Adam (betas 0.9, 0.999), fused: one kernel over all parameters instead of a loop of
    small ops (4x faster on CPU, where it was up to a fifth of a mesh step; see README)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), fused=True)


def make_objective(cfg: TrainConfig, model: torch.nn.Module, data: D.ShapeNetSplit, device: torch.device):
    """The loss of ``cfg.model`` (:mod:`reconstruction.objectives`) for ``model`` on ``data``."""
    if cfg.model == "mesh":
        objective = MeshObjective(cfg, model, data)
        objective.laplacian.to(device), objective.flatten.to(device)
        return objective
    return VoxelObjective(cfg, data) if cfg.model == "voxel" else ImplicitObjective(cfg, model, data)


def train_step(cfg: TrainConfig, objective, net: torch.nn.Module, opt: torch.optim.Optimizer,
               data: D.ShapeNetSplit, step: int, rank: int = 0, world: int = 1,
               device: torch.device = torch.device("cpu")) -> dict[str, torch.Tensor]:
    """One optimizer step (step ``step``'s batch of this rank: :func:`step_batch`); its loss terms."""
    idx, gen = step_batch(cfg, len(data), step, rank, world)
    view_a, view_b = D.view_pairs(len(idx), gen)
    img_a, img_b = data.views(idx, view_a).to(device), data.views(idx, view_b).to(device)
    terms = objective(net, img_a, img_b, view_a.to(device), view_b.to(device), gen, idx)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    for group in opt.param_groups:
        group["lr"] = cfg.lr_at(step)
    opt.step()
    return terms


def plot_history(history: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    tr = [h for h in history if "loss" in h]
    ax[0].plot([h["step"] for h in tr], [h["loss"] for h in tr])
    ax[0].set(xlabel="step", ylabel="training loss", yscale="log")
    va = [h for h in history if "val_iou" in h]
    ax[1].plot([h["step"] for h in va], [h["val_iou"] for h in va], marker="o")
    ax[1].set(xlabel="step", ylabel="validation voxel IoU")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _append_log(path: pathlib.Path, entry: dict) -> None:
    """Append one history entry to ``log.jsonl`` and fsync it (a killed run keeps its log)."""
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def check_batch_size(cfg: TrainConfig, n_shapes: int, world: int = 1) -> None:
    """ValueError naming --batch-size when one step's batch exceeds the training set."""
    if cfg.batch_size * world > n_shapes:
        raise ValueError(
            f"--batch-size {cfg.batch_size}" + (f" x {world} ranks" if world > 1 else "")
            + f" exceeds the {n_shapes} training shapes in {cfg.data}; use --batch-size <= {n_shapes // world}")


def train(cfg: TrainConfig, resume: bool = False, position: int | None = None) -> torch.nn.Module:
    """Run (or continue) training; returns the trained (unwrapped) model. Nothing is written to
    ``cfg.out`` before the data, the batch size and (with ``resume``) the checkpoint are checked.
    ``position``: the progress bar's line (several runs training at once each keep their own)."""
    rank, world, device = setup_distributed()
    out = pathlib.Path(cfg.out)
    ckpt_path = out / FILENAME
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --out")
    state = None
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        state = load_checkpoint(ckpt_path)  # a corrupt file raises; never restart silently
        if state["step"] > cfg.steps:
            raise ValueError(f"--steps {cfg.steps} is below the checkpoint's step {state['step']} in {ckpt_path}; "
                             f"pass --steps > {state['step']} to train further")
    data = D.ShapeNetSplit.load(cfg.data, list(cfg.classes), "train")
    check_batch_size(cfg, len(data), world)
    val = D.ShapeNetSplit.load(cfg.data, list(cfg.classes), "val") if cfg.val_every else None
    if rank == 0:
        cfg.save(out)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    opt = make_optimizer(cfg, model)
    step, history = 0, []
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CorruptCheckpointError(f"checkpoint {ckpt_path} does not fit the saved config: {exc}") from None
        step, history = int(state["step"]), json.loads(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        if rank == 0:
            print(f"resumed from step {step} of {out} (training to step {cfg.steps})", file=sys.stderr)
    objective = make_objective(cfg, model, data, device)
    net = DistributedDataParallel(model) if world > 1 else model
    log_path = out / "log.jsonl"
    if rank == 0:  # the log restarts from the checkpoint's history (entries after it are redone)
        log_path.write_text("".join(json.dumps(h) + "\n" for h in history))

    def log(entry: dict) -> None:
        history.append(entry)
        if rank == 0:
            _append_log(log_path, entry)

    def checkpoint():
        if rank == 0:
            if cfg.model == "voxel":
                calibrate_voxel_level(model, data)
            save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                        "rng": {"torch": torch.get_rng_state()}, "history": json.dumps(history),
                                        "config": cfg.to_json()})
            plot_history(history, out / "loss.png")

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {out.name}", disable=rank != 0, dynamic_ncols=True,
               position=position)
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # a scheduler's SIGTERM acts like Ctrl-C
        previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while step < cfg.steps:
            terms = train_step(cfg, objective, net, opt, data, step, rank, world, device)
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                log({"step": step, **{k: round(v.item(), 6) for k, v in terms.items()}})
                bar.set_postfix(loss=f"{terms['loss'].item():.4f}")
            if val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                if rank == 0:
                    iou = evaluate_split(model, val, max_shapes=cfg.val_shapes).mean().item()
                    log({"step": step, "val_iou": round(iou, 6)})
                    tqdm.write(f"step {step}: validation voxel IoU {iou:.4f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
            bar.update()
    except KeyboardInterrupt:
        checkpoint()
        if rank == 0:
            tqdm.write(f"interrupted: checkpoint at step {step} written to {ckpt_path}")
        raise
    finally:
        bar.close()
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
    if world > 1:  # DDP syncs buffers (BN statistics) at each forward only: give all ranks rank 0's
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    model.history = history
    return model


#: --help text of each TrainConfig field.
FIELD_HELP = {
    "model": "mesh: SoftRas's deformed sphere; implicit: the NeurIPS'19 occupancy network; "
             "voxel: the 3D-supervised baseline (same encoder, 3D deconvolution decoder, trained on voxels)",
    "voxel_channels": "voxel: channels of the first 3D deconvolution",
    "render_size": "mesh: side of the silhouettes its loss compares (64, or a divisor: targets average-pooled)",
    "data": "dataset directory in the NMR format (reconstruction.make_dataset writes one); "
            "required unless --resume",
    "out": "run directory: config.json, checkpoint.pt, log.jsonl, loss.png",
    "steps": "total training steps (with --resume: train on until this step)",
    "batch_size": "training shapes per step (per rank)",
    "lr": "Adam learning rate",
    "lr_schedule": "constant: lr throughout (SoftRas's); cosine: from lr down to 2%% of it at the last step",
    "seed": "random seed (initialization, batches, views)",
    "widths": "encoder conv channels, one per stride-2 block",
    "hidden": "encoder FC width",
    "code": "image code size",
    "decoder_hidden": "mesh decoder FC widths (two)",
    "sigma_val": "mesh: SoftRas sigma of the silhouette renders",
    "lambda_laplacian": "mesh: Laplacian regularizer weight",
    "lambda_flatten": "mesh: flatten regularizer weight",
    "lambda_colour": "mesh: colour L1 weight; > 0 trains the 'full' model with the colour generator",
    "mesh_views": "mesh: views whose silhouettes the loss compares per shape (>= 2: a, b and random others)",
    "mlp_width": "implicit: occupancy MLP width",
    "mlp_depth": "implicit: occupancy MLP hidden layers",
    "num_anchors": "implicit: anchor points per shape",
    "anchor_radius": "implicit: anchor sphere radius, world units",
    "num_regularizer": "implicit: anchors used by the geometric regularizer",
    "num_rays": "implicit: probed rays per view",
    "probe_views": "implicit: views probed per shape (>= 2)",
    "lambda_geometric": "implicit: geometric regularizer weight",
    "val_every": "validate every this many steps (0: never)",
    "val_shapes": "validation shapes per validation",
    "checkpoint_every": "write checkpoint.pt every this many steps",
    "log_every": "append the losses to log.jsonl every this many steps",
}
#: Flags that may differ from the saved config on --resume without a warning.
RESUME_OVERRIDES = ("out", "steps")


def build_parser() -> Parser:
    p = Parser(prog="reconstruction.train", description=__doc__)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint and saved config.json (only --out is "
                        "needed; an explicit --steps trains on to that step)")
    p.add_argument("--classes", default="all", help="'all' or comma-separated class ids/names")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "classes":
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = FIELD_HELP.get(f.name, f.name.replace("_", " "))
        if isinstance(f.default, tuple):
            p.add_argument(flag, type=int, nargs="+", default=list(f.default), help=help_text)
        elif f.name in ("model", "lr_schedule"):
            p.add_argument(flag, choices=MODELS if f.name == "model" else LR_SCHEDULES, default=f.default,
                           help=help_text)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, required=f.name == "out", help=help_text)
    return p


def _explicit_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Destinations of the options given on the command line (not left at their defaults)."""
    given = set()
    for action in parser._actions:
        if any(a == s or a.startswith(s + "=") for s in action.option_strings for a in argv):
            given.add(action.dest)
    return given


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    """The config (with ``--resume``: the saved one, ``--out`` and an explicit ``--steps`` applied,
    other differing flags warned about) and whether to resume."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = build_parser()
    args = vars(p.parse_args(argv))
    args.pop("debug")
    resume = args.pop("resume")
    if not resume:
        if not args["data"]:
            p.error("the following arguments are required: --data (unless --resume)")
        classes = tuple(D.parse_class_ids(args.pop("classes")))
        return TrainConfig.from_dict({**args, "classes": classes}), False
    saved = TrainConfig.load(args["out"])
    given = _explicit_flags(p, argv)
    if "classes" in given and tuple(D.parse_class_ids(args["classes"])) != saved.classes:
        print(f"warning: --classes {args['classes']} differs from the saved config ({','.join(saved.classes)}); "
              "the saved value is kept", file=sys.stderr)
    for name in sorted(given - {"classes", "resume", "debug"}):
        new = tuple(args[name]) if isinstance(args[name], list) else args[name]
        old = getattr(saved, name)
        if name not in RESUME_OVERRIDES and new != old:
            print(f"warning: --{name.replace('_', '-')} {new} differs from the saved config ({old}); "
                  "the saved value is kept", file=sys.stderr)
    cfg = dataclasses.replace(saved, out=args["out"], steps=args["steps"] if "steps" in given else saved.steps)
    return cfg, True


def _main(argv: list[str]) -> torch.nn.Module:
    cfg, resume = parse_args(argv)
    try:
        model = train(cfg, resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    losses = [h["loss"] for h in model.history if "loss" in h]
    vals = [h["val_iou"] for h in model.history if "val_iou" in h]
    print(f"trained {cfg.model} to step {cfg.steps} in {cfg.out}"
          + (f": final loss {losses[-1]:.4f}" if losses else "")
          + (f", validation IoU {vals[-1]:.4f}" if vals else ""))
    return model


def main(argv: list[str] | None = None) -> torch.nn.Module:
    return run("reconstruction.train", _main, argv)


if __name__ == "__main__":
    main()
