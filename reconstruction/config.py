"""Training configuration: one frozen dataclass, saved with every run as ``config.json``.

Defaults follow SoftRas's reconstruction recipe (Adam 1e-4, batch 64, sigma 1e-4, hard colour
aggregation, Laplacian 5e-3, flatten 5e-4) except where a CPU-sized run needs less (see README).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from dataclasses import dataclass

MODELS = ("mesh", "implicit", "voxel")
#: Learning-rate schedules: constant ``lr`` (SoftRas's), or a cosine from ``lr`` at step 0 down to
#: ``lr * COSINE_FLOOR`` at ``steps`` (so a run's schedule depends on its total step count).
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.02


@dataclass(frozen=True)
class TrainConfig:
    model: str = "mesh"
    data: str = ""
    classes: tuple[str, ...] = ()
    out: str = ""
    steps: int = 250_000
    batch_size: int = 64
    lr: float = 1e-4
    lr_schedule: str = "constant"
    seed: int = 0
    # network sizes (SoftRas's: conv 64/128/256, FC 1024, code 512, decoder 1024/2048)
    widths: tuple[int, ...] = (64, 128, 256)
    hidden: int = 1024
    code: int = 512
    decoder_hidden: tuple[int, ...] = (1024, 2048)
    # mesh losses (SoftRas's)
    sigma_val: float = 1e-4
    lambda_laplacian: float = 5e-3
    lambda_flatten: float = 5e-4
    lambda_colour: float = 0.0  # > 0: the "full" model with the colour generator and loss
    mesh_views: int = 2  # views rendered per shape: a, b and mesh_views - 2 more random ones
    # implicit model
    mlp_width: int = 128
    mlp_depth: int = 4
    num_anchors: int = 1536
    anchor_radius: float = 0.035
    num_regularizer: int = 32  # samples of the geometric regularizer (each costs 42 field values)
    num_rays: int = 1024  # per view
    probe_views: int = 2  # views probed per shape: a, b and probe_views - 2 more random ones
    lambda_geometric: float = 0.1
    # voxel baseline (3D-supervised)
    voxel_channels: int = 64
    # silhouette resolution of the mesh model's loss (renders and targets; the dataset's 64 or a
    # divisor of it, the targets average-pooled)
    render_size: int = 64
    # bookkeeping
    val_every: int = 200
    val_shapes: int = 64
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.mesh_views < 2:
            raise ValueError(f"mesh_views must be >= 2 (views a and b), got {self.mesh_views}")
        if self.probe_views < 2:
            raise ValueError(f"probe_views must be >= 2 (views a and b), got {self.probe_views}")
        if self.render_size < 1 or 64 % self.render_size:
            raise ValueError(f"render_size must divide the dataset's image size 64, got {self.render_size}")
        if self.batch_size < 1 or self.steps < 0 or self.lr <= 0:
            raise ValueError(
                f"batch_size >= 1, steps >= 0 and lr > 0 expected, got {self.batch_size}, {self.steps}, {self.lr}"
            )

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based) under :attr:`lr_schedule`."""
        if self.lr_schedule == "constant" or self.steps <= 1:
            return self.lr
        t = min(step, self.steps - 1) / (self.steps - 1)
        return self.lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * t)))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def load(cls, run_dir: str | pathlib.Path) -> "TrainConfig":
        path = pathlib.Path(run_dir) / "config.json"
        if not pathlib.Path(run_dir).is_dir():
            raise FileNotFoundError(f"run directory {run_dir} does not exist")
        if not path.is_file():
            raise FileNotFoundError(f"no config.json in run directory {run_dir}")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid run config ({exc})") from None

    def save(self, run_dir: str | pathlib.Path) -> None:
        path = pathlib.Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(self.to_json())


