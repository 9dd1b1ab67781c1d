"""Deform a sphere into a shape from multi-view silhouettes (SoftRas's deformation demo).

SoftRas's recipe: sphere_1352 scaled by 0.5, vertices parameterized as sigmoid(logit(|v|) +
displacement) * sign(v) squeezed around a tanh-bounded centre; the 120 cameras of ``camera.npy``
(distance 2.732, elevations -60..60 step 30, azimuths 0..-345 step -15), viewing angle 15 deg,
64x64 silhouettes, sigma 1e-4, ``aggr_func_rgb='hard'``; loss (1 - IoU) + 0.03 Laplacian +
0.0003 flatten; Adam lr 0.01, betas (0.5, 0.99). The target (default: the procedural car, or
``--target`` any OBJ) is rendered by the same renderer. ``--views-per-step`` < 120 samples a
random subset of the cameras each step (cheaper steps on a CPU).

Outputs in --out: ``deformed.obj``, ``optimization.gif``, ``loss.png``, ``final.png`` and
``summary.json`` with the final mean silhouette IoU over the 120 views.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from demo_kit import cli, images, loop, plots, rendering
from taichi_softras import DATA_DIR, assets, io
from taichi_softras.losses import FlattenLoss, LaplacianLoss, iou_loss

VIEWING_ANGLE = 15.0
PREVIEW_VIEWS = (2.732, 30.0, -45.0), (2.732, 0.0, -90.0)  # (distance, elevation, azimuth) for the GIF


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("deform", __doc__, image_size=64, sigma=1e-4, gamma=1e-4)
    p.add_argument("--target", type=str, default=None, help="target OBJ (None: the procedural car)")
    p.add_argument("--template", type=str, default=str(DATA_DIR / "sphere_1352.obj"), help="OBJ to deform")
    p.add_argument("--iterations", type=cli.positive_int, default=200, help="optimization steps")
    p.add_argument("--views-per-step", type=cli.positive_int, default=40, help="cameras per step, at most 120")
    p.add_argument("--lr", type=cli.positive_float, default=0.01, help="Adam learning rate")
    return p


class DeformModel(torch.nn.Module):
    """SoftRas's sphere deformation: ``forward() -> vertices (V, 3)`` inside the cube [-1, 1]^3."""

    def __init__(self, template: torch.Tensor):
        super().__init__()
        self.register_buffer("template", template)  # |coordinates| < 1
        self.displace = torch.nn.Parameter(torch.zeros_like(template))
        self.center = torch.nn.Parameter(torch.zeros(1, 3))

    def forward(self) -> torch.Tensor:
        a = self.template.abs()
        base = torch.log(a / (1 - a))
        centroid = torch.tanh(self.center)
        v = torch.sigmoid(base + self.displace) * torch.sign(self.template)
        v = F.relu(v) * (1 - centroid) - F.relu(-v) * (centroid + 1)
        return v + centroid


def silhouettes(vertices: torch.Tensor, faces: torch.Tensor, eyes: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    """Soft silhouettes ``(B, H, W)`` of one mesh seen from ``eyes (B, 3)``, SoftRas's deformation settings."""
    white = torch.ones(1, faces.shape[0], 1, 3, dtype=vertices.dtype)
    images = rendering.render(
        vertices, faces, white, eyes, args.image_size, viewing_angle=VIEWING_ANGLE, lit=False,
        sigma_val=args.sigma, gamma_val=args.gamma, aggr_func_rgb="hard",
    )
    return images[:, 3]


def mean_iou(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean IoU of binarized (alpha > 0.5) silhouettes ``(B, H, W)``."""
    p, t = pred > 0.5, target > 0.5
    return float(((p & t).sum((1, 2)) / (p | t).sum((1, 2)).clamp(min=1)).mean())


def main(args: argparse.Namespace) -> None:
    if args.views_per_step > 120:
        raise cli.DemoError(f"argument --views-per-step: at most 120 cameras exist, got {args.views_per_step}")
    cams = torch.from_numpy(np.load(DATA_DIR / "camera.npy")).float()  # (120, 3): distance, elevation, azimuth
    eyes = rendering.eyes_from_angles(cams[:, 0], cams[:, 1], cams[:, 2])
    if args.target is None:
        target_v, target_f = assets.car()
    else:
        target_v, target_f, _ = rendering.load_mesh(args.target, "--target")
    template, faces, _ = rendering.load_mesh(args.template, "--template")
    template = template * 0.5
    if template.abs().max() >= 1:
        raise cli.DemoError(f"--template {args.template}: coordinates must lie inside (-2, 2) (they are halved)")
    with torch.no_grad():
        target = silhouettes(target_v, target_f, eyes, args)

    model = DeformModel(template)
    with torch.no_grad():
        iou_initial = mean_iou(silhouettes(model(), faces, eyes, args), target)
    laplacian, flatten = LaplacianLoss(template, faces), FlattenLoss(faces)
    optimizer = torch.optim.Adam(model.parameters(), args.lr, betas=(0.5, 0.99))
    generator = torch.Generator().manual_seed(args.seed)
    preview = rendering.eyes_from_angles(*torch.tensor(PREVIEW_VIEWS).T)
    with torch.no_grad():
        preview_target = silhouettes(target_v, target_f, preview, args)

    def step(i: int) -> dict[str, float]:
        views = torch.randperm(120, generator=generator)[: args.views_per_step]
        v = model()
        pred = silhouettes(v, faces, eyes[views], args)
        iou = iou_loss(pred, target[views])
        loss = iou + 0.03 * laplacian(v[None]).mean() + 0.0003 * flatten(v[None]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "1-IoU": iou.item()}

    def frame() -> np.ndarray:
        with torch.no_grad():
            pred = silhouettes(model(), faces, preview, args)
        return images.hstack([images.silhouette_overlay(t, p) for p, t in zip(pred, preview_target)])

    start = time.perf_counter()
    history, frames = loop.optimize(args, "deform", args.iterations, step, frame, max(1, args.iterations // 40))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        vertices = model()
        iou = mean_iou(silhouettes(vertices, faces, eyes, args), target)
        final = silhouettes(vertices, faces, preview, args)
    out = cli.out_dir(args)
    io.save_obj(out / "deformed.obj", vertices, faces)
    images.save_gif(out / "optimization.gif", frames, fps=10)
    plots.image_grid(
        out / "final.png", [[images.silhouette_overlay(t, p) for p, t in zip(final, preview_target)]],
        f"deform: silhouettes after {len(history['loss'])} steps (mean IoU {iou:.3f} over 120 views)",
        col_labels=[f"elevation {e:g}°, azimuth {a:g}°" for _, e, a in PREVIEW_VIEWS], legend=images.OVERLAY_LEGEND, panel_inches=2.6,
    )
    plots.curves(out / "loss.png", {"total loss": history["loss"], "1 - IoU (silhouettes)": history["1-IoU"]},
                 "iteration", "loss (dimensionless)", "deform: loss per step", log_y=True)
    cli.finish(
        args,
        "deform",
        {
            "target": args.target or "car", "iterations": len(history["loss"]), "views_per_step": args.views_per_step,
            "image_size": args.image_size, "loss_initial": history["loss"][0], "loss_final": history["loss"][-1],
            "mean_iou_initial": round(iou_initial, 4), "mean_iou_120_views": round(iou, 4), "seconds": round(seconds, 1),
        },
    )


if __name__ == "__main__":
    cli.run(main, build_parser())
