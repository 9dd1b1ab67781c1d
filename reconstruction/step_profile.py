"""Where a training step's time goes: data, sampling, network, rendering / probing, backward, optimizer.

    python -m reconstruction.step_profile --model mesh|implicit|voxel --data DIR [--steps-profiled 10]
        [any reconstruction.train flag: --batch-size 16 --widths 32 64 128 ...]

Runs ``--warmup`` steps (Taichi compiles its kernels), then times ``--steps-profiled`` steps of
:func:`reconstruction.train.train_step`, each timed section counting only its own time (nested
sections are subtracted): the renderer's and the probe's forward and backward, the network's
forward (encoder, decoder, occupancy field), the remaining backward (the network's), the anchor and
ray sampling, the data (batch indices, views) and the optimizer. Prints a markdown table of
milliseconds per step; the objective's setup (the implicit model's visual hulls) is timed apart.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch

from taichi_softras.cli_kit import positive_int
from taichi_softras.ops import probe as probe_ops
from taichi_softras.ops import rasterize as raster_ops

from . import datasets as D
from . import objectives, train as T
from .cli import Parser, UserError, run
from .config import TrainConfig
from .models import build_model


class SectionTimer:
    """Self time per section name: a wrapped call's time minus that of wrapped calls inside it."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self._children = []

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                self.seconds[name] += spent - self._children.pop()
                if self._children:
                    self._children[-1] += spent
        return timed


@contextlib.contextmanager
def patched(timer: SectionTimer, model: torch.nn.Module, objective):
    """Wrap the sections' functions (module attributes, the model's forward and field, the objective,
    Tensor.backward, the custom autograd backward passes) for the duration of the block."""
    targets = [(objectives, "render", "render: forward"), (objectives, "probe_view", "probe: forward"),
               (objectives, "sample_hull_boundary", "sampling (anchors, rays)"),
               (objectives, "sample_contour_pixels", "sampling (anchors, rays)"),
               (T, "step_batch", "data (batch, views)"), (D.ShapeNetSplit, "views", "data (batch, views)"),
               (torch.Tensor, "backward", "backward: network and losses"),
               (type(objective), "__call__", "losses, regularizers (rest of the objective)"),
               (model, "forward", "network: forward")]
    if hasattr(model, "field"):
        targets.append((model, "field", "network: forward"))
    saved = [(owner, attr, owner.__dict__.get(attr, None), attr in owner.__dict__) for owner, attr, _ in targets]
    statics = [(raster_ops._SoftRasterize, "render: backward"), (probe_ops._Gather, "probe: backward")]
    saved_static = [(cls, cls.__dict__["backward"]) for cls, _ in statics]
    try:
        for owner, attr, name in targets:
            setattr(owner, attr, timer.wrap(name, getattr(owner, attr)))
        for cls, name in statics:
            cls.backward = staticmethod(timer.wrap(name, cls.__dict__["backward"].__func__))
        yield
    finally:
        for owner, attr, value, had in saved:
            if had:
                setattr(owner, attr, value)
            else:
                delattr(owner, attr)
        for cls, value in saved_static:
            cls.backward = value


def profile(cfg, warmup: int = 2, steps: int = 10) -> tuple[dict[str, float], float, float]:
    """(ms per step of each section, ms per step in all, seconds of the objective's setup)."""
    torch.manual_seed(cfg.seed)
    data = D.ShapeNetSplit.load(cfg.data, list(cfg.classes), "train")
    T.check_batch_size(cfg, len(data))
    model = build_model(cfg)
    opt = T.make_optimizer(cfg, model)
    start = time.perf_counter()
    objective = T.make_objective(cfg, model, data, torch.device("cpu"))
    setup = time.perf_counter() - start
    for step in range(warmup):
        T.train_step(cfg, objective, model, opt, data, step)
    timer = SectionTimer()
    opt.step = timer.wrap("optimizer", opt.step)
    with patched(timer, model, objective):
        start = time.perf_counter()
        for step in range(warmup, warmup + steps):
            T.train_step(cfg, objective, model, opt, data, step)
        total = time.perf_counter() - start
    per_step = {k: 1e3 * v / steps for k, v in sorted(timer.seconds.items(), key=lambda kv: -kv[1])}
    per_step["other (step loop, Python)"] = 1e3 * total / steps - sum(per_step.values())
    return per_step, 1e3 * total / steps, setup


def table(per_step: dict[str, float], total_ms: float) -> str:
    lines = ["| section | ms / step | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {100 * v / total_ms:.0f} % |" for k, v in per_step.items()]
    return "\n".join(lines + [f"| **step** | **{total_ms:.0f}** | 100 % |"])


def build_parser() -> Parser:
    """reconstruction.train's flags (``--out`` unused) and the profile's own."""
    p = T.build_parser()
    p.prog, p.description = "reconstruction.step_profile", __doc__
    for action in p._actions:
        if action.dest in ("out", "resume"):
            action.required, action.help = False, "unused here"
    p.add_argument("--warmup", type=positive_int, default=2, help="untimed steps first (kernel compilation)")
    p.add_argument("--steps-profiled", type=positive_int, default=10, help="timed steps")
    return p


def _main(argv: list[str]) -> str:
    args = vars(build_parser().parse_args(argv))
    warmup, steps = args.pop("warmup"), args.pop("steps_profiled")
    for unused in ("debug", "resume"):
        args.pop(unused)
    if not args["data"]:
        raise UserError("the following arguments are required: --data")
    cfg = TrainConfig.from_dict({**args, "classes": tuple(D.parse_class_ids(args["classes"])), "out": "", "val_every": 0})
    per_step, total, setup = profile(cfg, warmup, steps)
    text = (f"{cfg.model} model, batch {cfg.batch_size}, {steps} steps, "
            f"{torch.get_num_threads()} torch threads (setup: {setup:.1f} s)\n\n{table(per_step, total)}")
    print(text)
    return text


def main(argv: list[str] | None = None) -> str:
    return run("reconstruction.step_profile", _main, argv)


if __name__ == "__main__":
    main()
