"""Interactive gradient visualization: where the soft rasterizer's gradients go, and how far.

A mesh (default: a sphere) is compared with a target image (default: the procedural car, seen from
the same camera) by a per-pixel RGBA squared error. Four panels:

1. the render (or, toggled, the target),
2. the per-pixel loss,
3. dL/dv for every vertex, projected to 2D arrows (descent direction) coloured by magnitude,
4. for one picked vertex, each pixel's share of its gradient, |d L_pixel / d v| (central
   differences in float64; their sum matches the autodiff gradient, printed as a cosine).

Blur (sigma) and depth softness (gamma) decide how far gradients reach: raise them and arrows
appear on occluded faces and far from the silhouette.

GUI keys: click a vertex (panels 1 and 3) to pick it, ``g`` one gradient step, ``space`` run/stop,
``r`` reset, ``t`` render/target in panel 1, ``esc`` quit; sliders for log10 sigma and gamma.
Headless: ``panels.png`` (matplotlib), the four panels as PNGs, ``steps.gif``, ``loss.png``
and ``summary.json`` after ``--steps`` gradient steps.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import _common as common
from taichi_softras import DATA_DIR, cameras, shapes

MESH_COLOR = (0.7, 0.75, 0.9)
TARGET_COLOR = (0.9, 0.35, 0.25)
FD_STEP = 1e-5  # world units; float64 renders keep central differences accurate to ~1e-8


def build_parser() -> argparse.ArgumentParser:
    p = common.make_parser("gradients", __doc__.splitlines()[0], image_size=96, sigma=1e-4, gamma=1e-4)
    p.add_argument("--mesh", type=str, default=str(DATA_DIR / "sphere_642.obj"), help="OBJ to optimize (default: sphere)")
    p.add_argument("--scale", type=common.positive_float, default=0.5, help="scale applied to --mesh (default: %(default)s)")
    p.add_argument("--target", type=str, default=None, help="target OBJ (default: the procedural car)")
    p.add_argument("--elevation", type=float, default=30.0, help="camera elevation, degrees (default: %(default)s)")
    p.add_argument("--azimuth", type=float, default=-45.0, help="camera azimuth, degrees (default: %(default)s)")
    p.add_argument("--lr", type=common.positive_float, default=0.01, help="Adam step size of the vertices (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="headless: gradient steps to take (default: %(default)s)")
    p.add_argument("--vertex", type=int, default=None, help="vertex to analyse (default: the largest gradient)")
    return p


class GradientScene:
    """Mesh, target and camera; :meth:`analyse` computes every panel's data for the current state."""

    DISTANCE, VIEWING_ANGLE = 2.732, 15.0

    def __init__(self, args: argparse.Namespace):
        v, self.faces, _ = common.load_mesh(args.mesh, "--mesh")
        self.rest = v * args.scale
        if args.target is None:
            tv, tf = shapes.car()
        else:
            tv, tf, _ = common.load_mesh(args.target, "--target")
        self.image_size = args.image_size
        self.eye = common.eyes_from_angles(self.DISTANCE, args.elevation, args.azimuth)
        self.colors = torch.tensor(MESH_COLOR).expand(1, self.faces.shape[0], 1, 3)
        with torch.no_grad():
            self.target = self._render(tv, tf, torch.tensor(TARGET_COLOR).expand(1, tf.shape[0], 1, 3), 1e-5, 1e-4)[0]
        self.lr = args.lr
        self.reset()

    def reset(self) -> None:
        self.vertices = self.rest.clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.vertices], lr=self.lr)

    def _render(self, vertices, faces, colors, sigma, gamma) -> torch.Tensor:
        return common.render(
            vertices, faces, colors.to(vertices.dtype), self.eye.to(vertices.dtype), self.image_size,
            viewing_angle=self.VIEWING_ANGLE, sigma_val=sigma, gamma_val=gamma,
        )

    def loss_map(self, vertices: torch.Tensor, sigma: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Render ``(4, H, W)`` and per-pixel loss ``(H, W)``: sum over RGBA of the squared error."""
        image = self._render(vertices, self.faces, self.colors, sigma, gamma)[0]
        return image, ((image - self.target.to(image.dtype)) ** 2).sum(0)

    def analyse(self, sigma: float, gamma: float, vertex: int | None) -> dict:
        """Everything the panels show: image, loss map, gradients ``(V, 3)``, projected vertices
        and arrow ends (pixel coordinates), the picked vertex and its per-pixel gradient heat-map."""
        self.vertices.grad = None
        image, lmap = self.loss_map(self.vertices, sigma, gamma)
        loss = lmap.mean()
        loss.backward()
        grad = self.vertices.grad.detach().clone()
        norms = grad.norm(dim=1)
        if vertex is None:
            vertex = int(norms.argmax())
        v = self.vertices.detach()
        # Arrows: the descent direction -grad, scaled so the longest is ~8% of the image.
        step = 0.08 * 2 * math.tan(math.radians(self.VIEWING_ANGLE)) * self.DISTANCE / max(float(norms.max()), 1e-30)
        start, depth = self.to_pixels(v)
        end, _ = self.to_pixels(v - step * grad)
        heat, fd_grad = self.vertex_heatmap(vertex, sigma, gamma)
        cosine = float(torch.nn.functional.cosine_similarity(fd_grad, grad[vertex].double(), dim=0))
        return dict(
            image=image.detach(), loss_map=lmap.detach(), loss=float(loss.detach()), grad=grad, norms=norms,
            start=start, end=end, depth=depth, vertex=vertex, heat=heat, fd_cosine=cosine,
        )

    def step(self, sigma: float, gamma: float) -> float:
        """One Adam step on the vertices; returns the loss before it."""
        self.optimizer.zero_grad()
        _, lmap = self.loss_map(self.vertices, sigma, gamma)
        loss = lmap.mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def to_pixels(self, vertices: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """World ``(V, 3)`` -> pixel (column, row) ``(V, 2)`` and camera depth ``(V,)``, via the §2 pixel centres."""
        ndc = cameras.perspective(cameras.look_at(vertices[None].float(), self.eye), self.VIEWING_ANGLE)[0]
        s = self.image_size
        col = (ndc[:, 0] * s + s - 1) / 2
        row = (s - 1 - ndc[:, 1] * s) / 2
        return torch.stack([col, row], 1).numpy(), ndc[:, 2].numpy()

    def vertex_heatmap(self, vertex: int, sigma: float, gamma: float) -> tuple[np.ndarray, torch.Tensor]:
        """|d loss_pixel / d v| ``(H, W)`` for one vertex by central differences (float64), and its
        sum over pixels ``(3,)`` (equal to the autodiff gradient up to FD error)."""
        base = self.vertices.detach().double()
        parts = []
        for axis in range(3):
            diffs = []
            for sign in (1.0, -1.0):
                moved = base.clone()
                moved[vertex, axis] += sign * FD_STEP
                with torch.no_grad():
                    diffs.append(self.loss_map(moved, sigma, gamma)[1])
            parts.append((diffs[0] - diffs[1]) / (2 * FD_STEP) / diffs[0].numel())  # d(mean loss) share
        per_pixel = torch.stack(parts, -1)  # (H, W, 3)
        return per_pixel.norm(dim=-1).numpy(), per_pixel.sum((0, 1))


def colormap(values: np.ndarray, name: str = "magma", vmax: float | None = None) -> np.ndarray:
    """Scalars -> uint8 RGB with a matplotlib colormap, scaled to [0, vmax]."""
    import matplotlib

    vmax = float(values.max()) if vmax is None else vmax
    rgba = matplotlib.colormaps[name](values / vmax if vmax > 0 else values * 0)
    return (rgba[..., :3] * 255).astype(np.uint8)


def panels(state: dict, scene: GradientScene, show_target: bool) -> list[np.ndarray]:
    """The four uint8 panels (arrows are drawn by the front end on panel 3)."""
    render = common.to_uint8(scene.target if show_target else state["image"])
    return [render, colormap(state["loss_map"].numpy()), common.to_uint8(state["image"]), colormap(state["heat"], "inferno")]


def _arrow_mask(state: dict) -> np.ndarray:
    return (state["norms"] > 1e-3 * state["norms"].max()).numpy()


def run_headless(args: argparse.Namespace, scene: GradientScene) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = common.out_dir(args)
    state = scene.analyse(args.sigma, args.gamma, args.vertex)
    names = ["render", "loss_map", "vertex_gradients", "vertex_heatmap"]
    for name, img in zip(names, panels(state, scene, False)):
        common.save_png(out / f"{name}.png", img)

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), dpi=100)
    axes[0].imshow(common.to_uint8(state["image"]))
    axes[0].imshow(common.to_uint8(scene.target), alpha=0.35)
    axes[0].set_title("render (target overlaid)")
    im = axes[1].imshow(state["loss_map"].numpy(), cmap="magma")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title("per-pixel loss")
    axes[2].imshow(common.to_uint8(state["image"]))
    m = _arrow_mask(state)
    d = state["end"] - state["start"]
    q = axes[2].quiver(state["start"][m, 0], state["start"][m, 1], d[m, 0], -d[m, 1], state["norms"].numpy()[m],
                       cmap="viridis", angles="xy", scale_units="xy", scale=1, width=0.004)
    fig.colorbar(q, ax=axes[2], fraction=0.046)
    axes[2].set_title(f"-dL/dv, {int(m.sum())} vertices")
    im = axes[3].imshow(state["heat"], cmap="inferno")
    axes[3].plot(*state["start"][state["vertex"]], "c+", ms=12)
    fig.colorbar(im, ax=axes[3], fraction=0.046)
    axes[3].set_title(f"|dL_pixel/dv| for vertex {state['vertex']}")
    for ax in axes:
        ax.set_xlim(-0.5, scene.image_size - 0.5)
        ax.set_ylim(scene.image_size - 0.5, -0.5)
        ax.axis("off")
    fig.suptitle(f"sigma={args.sigma:g} gamma={args.gamma:g}")
    fig.tight_layout()
    fig.savefig(out / "panels.png")
    plt.close(fig)

    losses, frames = [], []
    for _ in range(args.steps):
        losses.append(scene.step(args.sigma, args.gamma))
        frames.append(common.hstack([common.to_uint8(scene.target), common.to_uint8(scene.loss_map(scene.vertices, args.sigma, args.gamma)[0].detach())]))
    with torch.no_grad():
        final = float(scene.loss_map(scene.vertices, args.sigma, args.gamma)[1].mean())
    losses.append(final)
    if frames:
        common.save_gif(out / "steps.gif", frames, fps=8)
    common.save_plot(out / "loss.png", {"image loss": losses}, "gradient step", "RGBA squared error")
    common.finish(
        args,
        "gradients",
        {
            "sigma": args.sigma, "gamma": args.gamma, "vertex": state["vertex"],
            "vertices_with_gradient": int(m.sum()), "vertices": int(scene.rest.shape[0]),
            "fd_vs_autodiff_cosine": round(state["fd_cosine"], 6),
            "loss_initial": losses[0], "loss_final": final, "steps": args.steps, "losses": losses,
        },
    )


def run_gui(args: argparse.Namespace, scene: GradientScene) -> None:
    s = scene.image_size
    win = common.Window("taichi_softras: gradients", (s, 4 * s + 12), args.frames, args.screenshot)
    zoom, panel = win.zoom, (s + 4) * win.zoom  # window pixels per image pixel; panel pitch
    log_sigma = win.slider("log10 sigma", -7, -1, math.log10(args.sigma), 0.1)
    log_gamma = win.slider("log10 gamma", -6, 0, math.log10(args.gamma), 0.1)
    vertex, show_target, running, dirty = args.vertex, False, False, True
    state, seen = None, None
    while win.running:
        for e in win.events():
            if e.key == win.ti.GUI.ESCAPE:
                return
            if e.key == "g":
                scene.step(10**log_sigma.value, 10**log_gamma.value)
                dirty = True
            elif e.key == win.ti.GUI.SPACE:
                running = not running
            elif e.key == "r":
                scene.reset()
                dirty = True
            elif e.key == "t":
                show_target = not show_target
            elif e.key == win.ti.GUI.LMB and state is not None:
                col, row = win.cursor_pixel()
                col = col % panel  # panels 1 and 3 share pixel coordinates
                picked = np.hypot(*(state["start"] * zoom - [col, row]).T)
                near = picked < 3 * zoom
                if near.any():  # the closest to the eye among the vertices under the cursor
                    vertex = int(np.flatnonzero(near)[state["depth"][near].argmin()])
                    dirty = True
        if running:
            scene.step(10**log_sigma.value, 10**log_gamma.value)
            dirty = True
        key = (log_sigma.value, log_gamma.value)
        if dirty or key != seen:
            state = scene.analyse(10**log_sigma.value, 10**log_gamma.value, vertex)
            seen, dirty = key, False
        win.set_canvas(common.hstack(panels(state, scene, show_target)))
        m = _arrow_mask(state)
        if m.any():
            x0 = 2 * panel  # panel 3's left edge
            start = state["start"][m] * zoom + [x0, 0]
            end = state["end"][m] * zoom + [x0, 0]
            a, b = win.to_gui(start[:, 0], start[:, 1]), win.to_gui(end[:, 0], end[:, 1])
            colors = colormap(state["norms"].numpy()[m], "viridis").astype(np.int64)
            win.gui.arrows(a, b - a, radius=1, color=(colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2])
        pv = state["start"][state["vertex"]] * zoom
        for x0 in (0, 2 * panel, 3 * panel):
            win.gui.circle(win.to_gui(pv[0] + x0, pv[1]), radius=4, color=0x00FFFF)
        win.label(f"loss {state['loss']:.5f}  vertex {state['vertex']}  FD/autodiff cos {state['fd_cosine']:.4f}   "
                  "click: pick, g: step, space: run, r: reset, t: target")
        win.show()


def main(args: argparse.Namespace) -> None:
    if args.vertex is not None and args.vertex < 0:
        raise common.DemoError(f"argument --vertex: expected a vertex index >= 0, got {args.vertex}")
    scene = GradientScene(args)
    if args.vertex is not None and args.vertex >= scene.rest.shape[0]:
        raise common.DemoError(f"argument --vertex: the mesh has {scene.rest.shape[0]} vertices, got {args.vertex}")
    if common.wants_gui(args):
        run_gui(args, scene)
    else:
        run_headless(args, scene)


if __name__ == "__main__":
    common.run(main, build_parser())
