"""Render a mesh with the soft rasterizer: a turntable, and how sigma and gamma blur the image.

Windows (``--ui``): GGUI (default where Vulkan works) shows the soft render beside an orbitable 3D
view of the mesh and the render's camera, with ImGui sliders for log10 sigma, log10 gamma, azimuth,
elevation and distance; ti.GUI shows the render with the same sliders. In both, key ``a`` (or the
button) switches the colour aggregation (softmax / hard), ``space`` toggles spinning, ``esc`` quits.
Headless (``--headless --out DIR``): ``sweep.png`` (rows: sigma, columns: gamma), ``turntable.gif``,
``turntable_000.png`` and ``summary.json``.

    python demos/render.py                      # the Spot cow with its UV texture
    python demos/render.py --headless --out out/render --mesh path/to/model.obj
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import time

import numpy as np
import torch

from demo_kit import cli, images, plots, rendering
from taichi_softras import DATA_DIR

AGGREGATES = ("softmax", "hard")
SWEEP_SIGMAS = (1e-5, 1e-4, 1e-3)
SWEEP_GAMMAS = (1e-4, 1e-3, 1e-2)
VIEWING_ANGLE = 30.0


def build_parser() -> argparse.ArgumentParser:
    p = cli.make_parser("render", __doc__, image_size=256, sigma=1e-5, gamma=1e-4, front_ends=cli.UIS)
    p.add_argument("--mesh", type=str, default=str(DATA_DIR / "spot" / "spot_triangulated.obj"), help="OBJ file to render")
    p.add_argument("--texture-res", type=cli.positive_int, default=5, help="texels per face side")
    p.add_argument("--distance", type=cli.positive_float, default=2.732, help="camera distance, world units")
    p.add_argument("--elevation", type=cli.finite_float, default=30.0, help="camera elevation, degrees")
    p.add_argument("--azimuth", type=cli.finite_float, default=45.0, help="camera azimuth (of the sweep and the window's start), degrees")
    p.add_argument("--views", type=cli.positive_int, default=36, help="turntable frames")
    p.add_argument("--aggregate", choices=AGGREGATES, default="softmax", help="colour aggregation")
    return p


class Scene:
    """A loaded mesh and one render call, shared by every front end."""

    def __init__(self, args: argparse.Namespace):
        self.vertices, self.faces, self.textures = rendering.load_mesh(args.mesh, "--mesh", args.texture_res)
        self.image_size = args.image_size

    def render(self, distance: float, elevation: float, azimuth, sigma: float, gamma: float, aggregate: str) -> torch.Tensor:
        """RGBA ``(B, 4, H, W)``, one image per azimuth (float or sequence of floats)."""
        eyes = rendering.eyes_from_angles(distance, elevation, azimuth)
        with torch.no_grad():
            return rendering.render(
                self.vertices, self.faces, self.textures, eyes, self.image_size, VIEWING_ANGLE,
                sigma_val=sigma, gamma_val=gamma, aggr_func_rgb=aggregate,
            )


@dataclasses.dataclass
class Controls:
    """What the window's widgets set: the soft rasterizer's parameters and the camera."""

    log_sigma: float
    log_gamma: float
    azimuth: float
    elevation: float
    distance: float
    aggregate: str
    spin: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Controls":
        return cls(math.log10(args.sigma), math.log10(args.gamma), args.azimuth, args.elevation, args.distance, args.aggregate)

    def switch_aggregate(self) -> None:
        self.aggregate = AGGREGATES[(AGGREGATES.index(self.aggregate) + 1) % len(AGGREGATES)]

    def render(self, scene: Scene) -> tuple[np.ndarray, float]:
        """The uint8 render for these settings and its time in milliseconds; advances the spin."""
        if self.spin:
            self.azimuth = (self.azimuth + 2) % 360
        start = time.perf_counter()
        image = scene.render(self.distance, self.elevation, self.azimuth, 10**self.log_sigma, 10**self.log_gamma, self.aggregate)
        return images.to_uint8(image[0]), 1000 * (time.perf_counter() - start)

    def title(self) -> str:
        return f"soft render: sigma {10**self.log_sigma:.1e}, gamma {10**self.log_gamma:.1e}, {self.aggregate}"


def run_headless(args: argparse.Namespace, scene: Scene) -> None:
    out = cli.out_dir(args)
    azimuths = [360.0 * k / args.views for k in range(args.views)]
    with cli.progress(total=len(SWEEP_SIGMAS) * len(SWEEP_GAMMAS) + len(azimuths), desc="render") as bar:
        rows = []
        for sigma in SWEEP_SIGMAS:
            rows.append([])
            for gamma in SWEEP_GAMMAS:
                rows[-1].append(images.to_uint8(scene.render(args.distance, args.elevation, args.azimuth, sigma, gamma, args.aggregate)[0]))
                bar.update()
        start = time.perf_counter()
        frames = []
        for a in azimuths:
            frames.append(images.to_uint8(scene.render(args.distance, args.elevation, a, args.sigma, args.gamma, args.aggregate)[0]))
            bar.update()
        ms = 1000 * (time.perf_counter() - start) / len(frames)
    plots.image_grid(
        out / "sweep.png", rows, f"{pathlib.Path(args.mesh).stem}: edge blur sigma (rows) x depth softness gamma (columns), {args.aggregate}",
        row_labels=[f"σ = {s:g}" for s in SWEEP_SIGMAS], col_labels=[f"γ = {g:g}" for g in SWEEP_GAMMAS],
        xlabel="γ: softness of the depth blend (normalized depth units) →",
        ylabel="σ: edge blur (squared NDC distance) →", panel_inches=2.2,
    )
    images.save_png(out / "turntable_000.png", frames[0])
    images.save_gif(out / "turntable.gif", frames, fps=12)
    cli.finish(
        args,
        "render",
        {
            "mesh": str(args.mesh),
            "faces": int(scene.faces.shape[0]),
            "image_size": args.image_size,
            "views": args.views,
            "ms_per_frame": round(ms, 2),
            "sweep_sigmas": list(SWEEP_SIGMAS),
            "sweep_gammas": list(SWEEP_GAMMAS),
        },
    )


def run_gui(args: argparse.Namespace, scene: Scene) -> None:
    from demo_kit.tigui import Window

    c = Controls.from_args(args)
    win = Window("taichi_softras: render", (args.image_size, args.image_size), args.frames, args.screenshot)
    log_sigma = win.slider("log10 sigma", -7, -1, c.log_sigma, 0.1)
    log_gamma = win.slider("log10 gamma", -6, 0, c.log_gamma, 0.1)
    azimuth = win.slider("azimuth (deg)", 0, 360, c.azimuth % 360, 1)
    elevation = win.slider("elevation (deg)", -89, 89, c.elevation, 1)
    distance = win.slider("distance", 1.0, 8.0, c.distance, 0.05)
    switch = win.button("aggregate")
    while win.running:
        for e in win.events():
            if e.key in (switch, "a"):
                c.switch_aggregate()
            elif e.key == win.ti.GUI.SPACE:
                c.spin = not c.spin
            elif e.key == win.ti.GUI.ESCAPE:
                return
        c.log_sigma, c.log_gamma, c.azimuth = log_sigma.value, log_gamma.value, azimuth.value
        c.elevation, c.distance = elevation.value, distance.value
        image, ms = c.render(scene)
        azimuth.value = c.azimuth
        win.set_canvas(image)
        win.label(f"{c.aggregate}, {ms:.0f} ms   a: aggregate, space: spin, esc: quit")
        win.show()


def run_ggui(args: argparse.Namespace, scene: Scene) -> None:
    from demo_kit import ggui

    c = Controls.from_args(args)
    widgets_box, view_region, panel_at = (8, 8, 344, 624), (360, 0, 506, 640), (876, 40)
    zoom = max(1, 512 // args.image_size)
    res = (panel_at[0] + args.image_size * zoom + 12, max(640, panel_at[1] + args.image_size * zoom + 40))
    win = ggui.Window("taichi_softras: render", res, args.frames, args.screenshot)
    # The 3D view: the mesh with each face's mean texture colour, and the render's camera.
    corners = scene.vertices[scene.faces].reshape(-1, 3).numpy()
    mesh = ggui.MeshBuffer(np.arange(len(corners)).reshape(-1, 3), len(corners))
    mesh.update(corners, scene.textures[0].mean(1).repeat_interleave(3, 0).numpy())
    radius = float(np.linalg.norm(corners, axis=1).max())
    view = ggui.OrbitView(res, view_region, (0, 0, 0), 1.1 * max(radius, args.distance), azimuth=-60, elevation=20)
    frustum, eye_mark = ggui.LineBuffer(9), ggui.PointBuffer(1)
    ms = 0.0
    while win.running:
        dx, dy = win.poll(accept=lambda p: view.contains(p) and not ggui.inside(p, widgets_box))
        view.orbit(dx, dy)
        for key in win.keys:
            if key == "a":
                c.switch_aggregate()
            elif key == win.ti.ui.SPACE:
                c.spin = not c.spin
            elif key == win.ti.ui.ESCAPE:
                return
        image, ms = c.render(scene)
        panel = images.panel(images.upscale(image, zoom), c.title(), fg=images.WHITE, bg=(51, 51, 51))
        background = np.full((res[1], res[0], 3), 51, np.uint8)
        x, y = panel_at
        background[y : y + panel.shape[0], x : x + panel.shape[1]] = panel[: res[1] - y, : res[0] - x]
        caption = images.caption(np.zeros((0, view_region[2], 3), np.uint8), "3D view: the mesh and the render's camera (yellow)",
                                 fg=images.WHITE, bg=(51, 51, 51))
        background[8 : 8 + caption.shape[0], view_region[0] : view_region[0] + view_region[2]] = caption
        win.background(background)

        eye = rendering.eyes_from_angles(c.distance, c.elevation, c.azimuth)[0].numpy().astype(np.float64)
        a, b = ggui.frustum_segments(eye, np.zeros(3), VIEWING_ANGLE, 0.35 * c.distance)
        frustum.update(np.concatenate([a, [eye]]), np.concatenate([b, [np.zeros(3)]]), (1.0, 0.85, 0.2))
        eye_mark.update(eye[None])
        win.begin_scene(view)
        mesh.draw(win.scene)
        frustum.draw(win.scene, width=2)
        eye_mark.draw(win.scene, 0.03 * view.radius, (1.0, 0.85, 0.2))
        win.end_scene()

        with win.widgets("soft rasterizer", *widgets_box) as g:
            c.log_sigma = g.slider_float("log10 sigma", c.log_sigma, -7, -1)
            c.log_gamma = g.slider_float("log10 gamma", c.log_gamma, -6, 0)
            g.text(f"sigma = {10**c.log_sigma:.2e}, gamma = {10**c.log_gamma:.2e}")
            c.azimuth = g.slider_float("azimuth (deg)", c.azimuth % 360, 0, 360)
            c.elevation = g.slider_float("elevation (deg)", c.elevation, -89, 89)
            c.distance = g.slider_float("distance", c.distance, 1.0, 8.0)
            if g.button(f"aggregate: {c.aggregate} (a)"):
                c.switch_aggregate()
            c.spin = g.checkbox("spin (space)", c.spin)
            g.text(f"render {args.image_size}x{args.image_size}: {ms:.0f} ms")
            view.controls(g)
        win.show()


def main(args: argparse.Namespace) -> None:
    scene = Scene(args)
    {"headless": run_headless, "gui": run_gui, "ggui": run_ggui}[cli.front_end(args)](args, scene)


if __name__ == "__main__":
    cli.run(main, build_parser())
