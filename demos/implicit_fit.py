"""Fit an occupancy network to silhouettes alone (NeurIPS'19 implicit surfaces, no 3D supervision).

24 silhouettes of a known shape (the Spot cow by default) are rendered with the soft rasterizer
(hard alpha); a small MLP φ(x) is trained by anchor-ray probing (boundary-aware, anchors sampled
near the visual hull, ray pixels near the contours) plus the finite-difference geometric
regularizer. The voxel IoU at 32³ against the true shape is printed every ``--eval-every`` steps.
Headless by default (``--gui`` shows the probed images live). Outputs in ``--out``: ``mesh.obj``
(marching cubes), ``silhouettes.png`` (rows: target silhouettes, probed images), ``mesh.png`` (the
recovered mesh rendered), ``loss.png`` and ``summary.json``.

    python demos/implicit_fit.py                     # Spot, under 2 minutes on 2 CPU cores
    python demos/implicit_fit.py --shape torus --steps 300
"""

from __future__ import annotations

import os

# torch's idle OpenMP threads otherwise spin against Taichi's kernels (docs/design.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import trimesh  # noqa: E402
from tqdm import tqdm  # noqa: E402

from demo_kit import cli, images, loop, plots, rendering  # noqa: E402
from taichi_softras import DATA_DIR, implicit, sampling  # noqa: E402
from taichi_softras.voxelization import voxelization  # noqa: E402

SHAPES = ("spot", "sphere", "torus")
BOUNDS = (-0.5, 0.5)
EXTENT = 0.9  # the shape's largest side inside the unit cube of the field
DISTANCE, VIEWING_ANGLE = 2.732, 15.0  # the NMR renders' camera


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("implicit_fit", __doc__, image_size=128, sigma=1e-5, gamma=1e-4)
    p.add_argument("--gui", action="store_true", help="show the probed images in a window while training")
    p.add_argument("--shape", choices=SHAPES, default="spot", help="target shape")
    p.add_argument("--views", type=cli.positive_int, default=24, help="silhouettes of the target")
    p.add_argument("--steps", type=cli.positive_int, default=600, help="training steps")
    p.add_argument("--views-per-step", type=cli.positive_int, default=8, help="silhouettes probed per step")
    p.add_argument("--rays", type=cli.positive_int, default=1024, help="rays per view and step")
    p.add_argument("--anchors", type=cli.positive_int, default=8192, help="anchors per step")
    p.add_argument("--radius", type=cli.positive_float, default=0.025, help="anchor support radius, world units")
    p.add_argument("--lam", type=cli.nonnegative_float, default=0.05, help="weight of the geometric regularizer")
    p.add_argument("--lr", type=cli.positive_float, default=2e-3, help="Adam learning rate")
    p.add_argument("--resolution", type=cli.positive_int, default=32, help="voxel grid side for the IoU")
    p.add_argument("--mesh-resolution", type=cli.positive_int, default=64, help="marching cubes grid side")
    p.add_argument("--eval-every", type=cli.positive_int, default=100, help="steps between IoU evaluations")
    p.add_argument("--loss", choices=implicit.LOSS_KINDS, default="bce", help="silhouette loss")
    p.add_argument("--no-boundary-aware", action="store_true", help="plain ray-anchor assignment")
    return p


class OccupancyMLP(nn.Module):
    """φ(x) ∈ (0, 1) for points ``(P, 3)`` -> ``(P,)``: Fourier features then a ReLU MLP."""

    def __init__(self, hidden: int = 64, layers: int = 4, frequencies: int = 4):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(frequencies)) * math.pi)
        dims = [3 + 6 * frequencies] + [hidden] * layers
        blocks = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = (x[..., None] * self.freqs).flatten(-2)
        return torch.sigmoid(self.mlp(torch.cat([x, xf.sin(), xf.cos()], -1)))[..., 0]


def target_mesh(shape: str) -> tuple[torch.Tensor, torch.Tensor]:
    """World vertices ``(V, 3)`` (centred, largest side EXTENT) and faces ``(F, 3)`` of the target."""
    if shape == "spot":
        vertices, faces, _ = rendering.load_mesh(DATA_DIR / "spot" / "spot_triangulated.obj")
    else:
        mesh = trimesh.creation.icosphere(4) if shape == "sphere" else trimesh.creation.torus(1.0, 0.4)
        vertices = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)
        faces = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64)
    lo, hi = vertices.min(0).values, vertices.max(0).values
    vertices = (vertices - (lo + hi) / 2) * (EXTENT / float((hi - lo).max()))
    return vertices, faces


def true_voxels(vertices: torch.Tensor, faces: torch.Tensor, resolution: int, supersample: int = 4) -> torch.Tensor:
    """``(res,)*3`` bool: voxels (the field's grid) more than half inside the mesh, from the solid
    voxelizer at ``supersample`` times the resolution."""
    fine = resolution * supersample
    unit = (vertices - BOUNDS[0]) / (BOUNDS[1] - BOUNDS[0])  # the voxelizer's unit cube
    solid = voxelization(unit[faces][None], fine)[0].float()
    pooled = torch.nn.functional.avg_pool3d(solid[None, None], supersample)[0, 0]
    return pooled > 0.5


def camera_eyes(views: int) -> torch.Tensor:
    """``(V, 3)`` eyes around the shape: azimuth steps of 360/V, elevations alternating 30 / -15."""
    azimuth = torch.arange(views, dtype=torch.float32) * 360.0 / views
    elevation = torch.tensor([30.0, -15.0], dtype=torch.float32).repeat(views // 2 + 1)[:views]
    return rendering.eyes_from_angles(DISTANCE, elevation, azimuth)


def main(args: argparse.Namespace) -> None:
    args.headless = not args.gui
    t0 = time.perf_counter()
    vertices, faces = target_mesh(args.shape)
    eyes = camera_eyes(args.views)
    ones = torch.ones(1, faces.shape[0], 1, 3)
    with torch.no_grad():
        rgba = rendering.render(vertices, faces, ones, eyes, args.image_size, VIEWING_ANGLE, lit=False, aggr_func_alpha="hard")
    silhouettes = rgba[:, 3].contiguous()
    truth = true_voxels(vertices, faces, args.resolution)
    hull = sampling.visual_hull(silhouettes, eyes, resolution=48, bounds=BOUNDS, viewing_angle=VIEWING_ANGLE)
    hull_iou = implicit.voxel_iou(sampling.visual_hull(silhouettes, eyes, args.resolution, BOUNDS, VIEWING_ANGLE), truth)
    print(f"implicit_fit: {args.shape}, {args.views} silhouettes {args.image_size}^2, visual hull IoU {hull_iou:.3f} at {args.resolution}^3")

    net = OccupancyMLP()
    prober = implicit.FieldProber(args.image_size, args.radius, args.anchors, BOUNDS, VIEWING_ANGLE, boundary_aware=not args.no_boundary_aware, loss=args.loss)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr * 0.01)
    ious: list[tuple[int, float]] = []
    probed_views = torch.arange(min(args.views, 6))

    def step(i: int) -> dict[str, float]:
        views = torch.randperm(args.views)[: args.views_per_step]
        anchors, _ = sampling.sample_hull_boundary(hull, args.anchors, BOUNDS, band=2, uniform_fraction=0.3)
        pixels, _ = sampling.sample_contour_pixels(silhouettes[views], args.rays, sigma=2.0, uniform_fraction=0.3)
        loss_sil, _ = prober(net, eyes[views], silhouettes[views], anchors, pixels)
        loss_geo = implicit.geometric_regularizer(net, anchors[:256], delta=1.0 / 64, band=0.25)
        loss = loss_sil + args.lam * loss_geo
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        metrics = {"loss": float(loss_sil.detach()), "geo": float(loss_geo.detach())}
        if (i + 1) % args.eval_every == 0 or i + 1 == args.steps:
            iou = implicit.voxel_iou(implicit.occupancy_grid(net, args.resolution, BOUNDS), truth)
            ious.append((i + 1, iou))
            tqdm.write(f"step {i + 1}: silhouette loss {metrics['loss']:.4f}, IoU {iou:.3f} ({time.perf_counter() - t0:.0f} s)")
        return metrics

    def probed_images() -> list[list[np.ndarray]]:
        """Rows: the target silhouettes of the first views, then the field probed along their rays."""
        # dense anchors so that every ray of the picture probes some
        anchors = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * torch.rand(8 * args.anchors, 3)
        with torch.no_grad():
            _, probed = prober(net, eyes[probed_views], silhouettes[probed_views], anchors)
        return [[images.to_uint8(s) for s in silhouettes[probed_views]], [images.to_uint8(p) for p in probed.clamp(0, 1)]]

    def frame() -> np.ndarray:
        return images.vstack([images.hstack(row) for row in probed_images()])

    history, _ = loop.optimize(args, "implicit_fit", args.steps, step, frame, frame_every=args.steps)
    train_s = time.perf_counter() - t0

    out = cli.out_dir(args)
    mesh = implicit.extract_mesh(net, args.mesh_resolution, BOUNDS)
    mesh.export(out / "mesh.obj")
    view_labels = [f"view {v + 1}: azimuth {360.0 * v / args.views:.0f}°" for v in probed_views.tolist()]
    plots.image_grid(out / "silhouettes.png", probed_images(), f"implicit_fit ({args.shape}): silhouettes and the learned field",
                     row_labels=["target silhouette", "probed field φ\n(max along each ray)"], col_labels=view_labels)
    m_v = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    m_f = torch.as_tensor(np.ascontiguousarray(mesh.faces), dtype=torch.int64)
    shaded = torch.tensor([[0.75, 0.75, 0.8]]).expand(m_f.shape[0], 3)[None, :, None, :].contiguous()
    show_azimuths = (-45.0, 45.0, 135.0)
    show = rendering.eyes_from_angles(DISTANCE, 30.0, torch.tensor(show_azimuths))
    with torch.no_grad():
        renders = rendering.render(m_v, m_f, shaded, show, 256, VIEWING_ANGLE, aggr_func_rgb="hard")
    plots.image_grid(out / "mesh.png", [[images.to_uint8(im) for im in renders]],
                     f"implicit_fit: marching-cubes mesh of the field at {args.mesh_resolution}³ (voxel IoU {ious[-1][1]:.3f})",
                     col_labels=[f"elevation 30°, azimuth {a:g}°" for a in show_azimuths], panel_inches=2.6)
    plots.curves(out / "loss.png", {"silhouette loss": history["loss"], "geometric regularizer": history["geo"]}, "step",
                 f"loss ({args.loss})", "implicit_fit: training losses", log_y=True)
    losses = history["loss"]
    tail = max(1, len(losses) // 10)
    cli.finish(args, "implicit_fit", {
        "shape": args.shape, "steps": args.steps, "iou": ious[-1][1], "visual_hull_iou": hull_iou,
        "loss_start": float(np.mean(losses[:tail])), "loss_end": float(np.mean(losses[-tail:])),
        "seconds": round(train_s, 1), "iou_history": ious,
    })


if __name__ == "__main__":
    cli.run(main, build_parser())
