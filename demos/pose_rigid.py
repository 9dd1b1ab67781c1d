"""Rigid pose fitting: recover the rotation and translation of Spot from one target render.

For each of ``--poses`` random trials, a target pose (rotation within ``--max-angle`` degrees of
the start pose, a random translation) is rendered; gradient descent on an RGB + silhouette loss
fits a rotation (``--rotation``: axis-angle or quaternion) and a translation, starting from the
start pose (identity) and from ``--restarts`` - 1 random perturbations of it; the restart with the
lowest image loss is kept (no peeking at the true pose). The blur sigma is annealed from 10x
``--sigma`` to ``--sigma``.

Reported: rotation error (geodesic angle, degrees) and translation error per pose, and how many
poses end under 5 degrees. Outputs: ``fit.gif`` (first pose: target | current | difference),
``loss.png``, ``errors.png``, ``summary.json``.
"""

from __future__ import annotations

import argparse
import functools
import math

import numpy as np
import torch

from demo_kit import cli, images, plots, rendering
from taichi_softras import DATA_DIR
from taichi_softras.losses import iou_loss
from taichi_softras.rotations import axis_angle_to_matrix, quaternion_to_matrix, rotation_angle_deg

DISTANCE, VIEWING_ANGLE = 2.732, 30.0
SUCCESS_DEG = 5.0
ROTATIONS = ("axis-angle", "quaternion")


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("pose_rigid", __doc__, image_size=64, sigma=1e-5, gamma=1e-4)
    p.add_argument("--mesh", type=str, default=str(DATA_DIR / "spot" / "spot_triangulated.obj"), help="OBJ file to pose")
    p.add_argument("--texture-res", type=cli.positive_int, default=3, help="texels per face side")
    p.add_argument("--poses", type=cli.positive_int, default=10, help="random target poses")
    p.add_argument("--restarts", type=cli.positive_int, default=3, help="starts per pose; the lowest image loss is kept")
    p.add_argument("--iterations", type=cli.positive_int, default=150, help="gradient steps per start")
    p.add_argument("--max-angle", type=cli.positive_float, default=60.0, help="largest target rotation from the start, degrees")
    p.add_argument("--max-shift", type=cli.nonnegative_float, default=0.2, help="largest target translation per axis, world units")
    p.add_argument("--lr", type=cli.positive_float, default=0.03, help="Adam learning rate")
    p.add_argument("--rotation", choices=ROTATIONS, default="axis-angle", help="rotation parameters to fit")
    return p


def random_rotations(n: int, max_deg: float, generator: torch.Generator) -> torch.Tensor:
    """``(n, 3)`` axis-angle vectors: uniform random axes, angles uniform in [0, max_deg]."""
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=1)
    angle = torch.rand(n, 1, generator=generator) * math.radians(max_deg)
    return axis * angle


class RigidScene:
    """The mesh, the camera and the render of a posed mesh ``R v + t``."""

    def __init__(self, args: argparse.Namespace):
        self.vertices, self.faces, self.textures = rendering.load_mesh(args.mesh, "--mesh", args.texture_res)
        self.eye = rendering.eyes_from_angles(DISTANCE, 0.0, 0.0)
        self.image_size, self.gamma = args.image_size, args.gamma

    def render(self, rotation: torch.Tensor, shift: torch.Tensor, sigma: float) -> torch.Tensor:
        """RGBA ``(4, H, W)`` of the mesh rotated by ``rotation (3, 3)`` and moved by ``shift (3,)``."""
        v = self.vertices @ rotation.T + shift
        return rendering.render(
            v, self.faces, self.textures, self.eye, self.image_size, viewing_angle=VIEWING_ANGLE,
            sigma_val=sigma, gamma_val=self.gamma,
        )[0]


def image_loss(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel RGB squared error (mean over the image) + (1 - silhouette IoU)."""
    rgb = ((image[:3] - target[:3]) ** 2).sum(0).mean()
    return rgb + iou_loss(image[3:], target[3:])


def rotation_parameters(rotvec: torch.Tensor, kind: str) -> torch.Tensor:
    """The ``kind`` parameters of the rotation given as axis-angle ``(3,)``: itself, or (w, x, y, z)."""
    if kind == "axis-angle":
        return rotvec.clone()
    angle = rotvec.norm()
    axis = rotvec / angle if angle > 0 else torch.zeros(3)
    return torch.cat([torch.cos(angle / 2)[None], torch.sin(angle / 2) * axis])


def rotation_matrix(params: torch.Tensor, kind: str) -> torch.Tensor:
    """``(3, 3)`` rotation of axis-angle ``(3,)`` or quaternion ``(4,)`` parameters."""
    return axis_angle_to_matrix(params) if kind == "axis-angle" else quaternion_to_matrix(params)


def fit(scene: RigidScene, target: torch.Tensor, rotvec0: torch.Tensor, shift0: torch.Tensor, args: argparse.Namespace,
        on_step=None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Gradient descent on ``--rotation`` parameters and a translation from (rotvec0, shift0); returns
    the fitted rotation ``(3, 3)``, translation ``(3,)`` and the losses.

    ``on_step(i, rotation, shift, loss)`` is called after every step (progress, the front end)."""
    params = rotation_parameters(rotvec0, args.rotation).requires_grad_(True)
    shift = shift0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([params, shift], lr=args.lr, betas=(0.9, 0.99))
    losses = []
    for i in range(args.iterations):
        t = i / max(args.iterations - 1, 1)
        sigma = args.sigma * 10 ** (1 - min(1.0, 1.5 * t))  # 10x -> 1x over the first two thirds
        loss = image_loss(scene.render(rotation_matrix(params, args.rotation), shift, sigma), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(i, rotation_matrix(params.detach(), args.rotation), shift.detach(), loss.item())
    rotation = rotation_matrix(params.detach(), args.rotation)
    with torch.no_grad():
        losses.append(image_loss(scene.render(rotation, shift, args.sigma), target).item())
    return rotation, shift.detach(), losses


def main(args: argparse.Namespace) -> None:
    scene = RigidScene(args)
    g = torch.Generator().manual_seed(args.seed)
    true_rot = random_rotations(args.poses, args.max_angle, g)
    true_shift = (torch.rand(args.poses, 3, generator=g) * 2 - 1) * args.max_shift
    true_shift[:, 2] *= 0.5  # depth moves matter less in the image; keep them modest
    zero = torch.zeros(3)
    results, curves, frames = [], {}, []
    window = None
    if cli.front_end(args) != "headless":
        from demo_kit.tigui import Window

        side = args.image_size
        window = Window("taichi_softras: rigid pose", (side, 3 * side + 8), args.frames, args.screenshot)
    bar = cli.progress(total=args.poses * args.restarts * args.iterations, desc="pose_rigid")
    for k in range(args.poses):
        with torch.no_grad():
            target = scene.render(axis_angle_to_matrix(true_rot[k]), true_shift[k], args.sigma)
        starts = [zero] + list(random_rotations(args.restarts - 1, 30.0, g))

        def on_step(i, rotation, shift, loss, first_start=False):
            bar.update()
            bar.set_postfix_str(f"pose {k + 1}/{args.poses} loss {loss:.4f}", refresh=False)
            take = k == 0 and first_start and (i % max(1, args.iterations // 40) == 0 or i == args.iterations - 1)
            shown = first_start and window is not None and window.running  # the window follows each pose's first start
            if not (take or shown):
                return
            with torch.no_grad():
                pic = comparison(target, scene.render(rotation, shift, args.sigma))
            if shown:
                window.set_canvas(images.hstack(pic))
                window.label(f"pose {k + 1}/{args.poses}: loss {loss:.4f}   target | current | |difference|")
                window.show()
            if take:
                frames.append(images.caption(images.hstack(pic), f"step {i + 1}/{args.iterations}", size=10))

        best = None
        for r, s in enumerate(starts):
            rot, shift, losses = fit(scene, target, s, zero, args, functools.partial(on_step, first_start=r == 0))
            curves[f"pose {k + 1}, start {r + 1}"] = losses
            if best is None or losses[-1] < best[2][-1]:
                best = (rot, shift, losses)
        rot, shift, losses = best
        deg = rotation_angle_deg(rot, axis_angle_to_matrix(true_rot[k])).item()
        results.append({
            "start_error_deg": round(math.degrees(true_rot[k].norm().item()), 2),
            "rotation_error_deg": round(deg, 3),
            "translation_error": round((shift - true_shift[k]).norm().item(), 5),
            "final_loss": round(losses[-1], 6),
        })
        if k == 0:
            with torch.no_grad():
                first_fit = comparison(target, scene.render(rot, shift, args.sigma))
            first_error = (deg, results[-1]["translation_error"])
        bar.write(f"pose {k + 1}/{args.poses}: start {results[-1]['start_error_deg']:.1f} deg -> "
                  f"rotation error {deg:.2f} deg, translation error {results[-1]['translation_error']:.4f}")
    bar.close()

    out = cli.out_dir(args)
    images.save_gif(out / "fit.gif", frames, fps=10)
    plots.image_grid(
        out / "fit_final.png", [first_fit],
        f"pose 1 fitted: rotation error {first_error[0]:.2f}°, translation error {first_error[1]:.4f} world units",
        col_labels=["target", "fit (best start)", "|fit - target| (RGB)"], panel_inches=2.2,
    )
    first = {k.split(", ")[1]: v for k, v in curves.items() if k.startswith("pose 1,")}
    plots.curves(out / "loss.png", first, "iteration", "image loss (RGB MSE + 1 - IoU)", "pose 1: image loss per start", log_y=True)
    errors = [r["rotation_error_deg"] for r in results]
    plots.per_item(out / "errors.png", errors, "pose", "rotation error (degrees)",
                   f"final rotation error per pose ({sum(e < SUCCESS_DEG for e in errors)} of {len(errors)} under {SUCCESS_DEG:g}°)",
                   threshold=SUCCESS_DEG, threshold_label=f"{SUCCESS_DEG:g}°", log_y=True)
    cli.finish(
        args,
        "pose_rigid",
        {
            "poses": args.poses, "under_5deg": sum(e < SUCCESS_DEG for e in errors),
            "median_rotation_error_deg": float(np.median(errors)),
            "max_translation_error": max(r["translation_error"] for r in results),
            "loss_initial": curves["pose 1, start 1"][0], "loss_final": curves["pose 1, start 1"][-1],
            "results": results,
        },
    )


def comparison(target: torch.Tensor, image: torch.Tensor) -> list[np.ndarray]:
    """uint8 target, fit and |fit - target| (RGB) of two RGBA ``(4, H, W)`` renders."""
    return [images.to_uint8(target), images.to_uint8(image), images.to_uint8((image[:3] - target[:3]).abs().clamp(0, 1))]


if __name__ == "__main__":
    cli.run(main, build_parser())
