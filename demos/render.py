"""Render a mesh with the soft rasterizer: a turntable, and how sigma and gamma blur the image.

GUI (default with a display): sliders for log10 sigma, log10 gamma, azimuth, elevation, distance;
key ``a`` or the button switches the colour aggregation (softmax / hard), ``space`` toggles spinning.
Headless (``--headless --out DIR``): ``sweep.png`` (rows: sigma, columns: gamma), ``turntable.gif``,
``turntable_000.png`` and ``summary.json``.

    python demos/render.py                      # the Spot cow with its UV texture
    python demos/render.py --headless --out out/render --mesh path/to/model.obj
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import _common as common
from taichi_softras import DATA_DIR

AGGREGATES = ("softmax", "hard")
SWEEP_SIGMAS = (1e-5, 1e-4, 1e-3)
SWEEP_GAMMAS = (1e-4, 1e-3, 1e-2)


def build_parser() -> argparse.ArgumentParser:
    p = common.make_parser("render", __doc__.splitlines()[0], image_size=256, sigma=1e-5, gamma=1e-4)
    p.add_argument("--mesh", type=str, default=str(DATA_DIR / "spot" / "spot_triangulated.obj"), help="OBJ file (default: Spot)")
    p.add_argument("--texture-res", type=common.positive_int, default=5, help="texels per face side (default: %(default)s)")
    p.add_argument("--distance", type=common.positive_float, default=2.732, help="camera distance (default: %(default)s)")
    p.add_argument("--elevation", type=float, default=30.0, help="camera elevation, degrees (default: %(default)s)")
    p.add_argument("--azimuth", type=float, default=45.0, help="camera azimuth for the sweep, degrees (default: %(default)s)")
    p.add_argument("--views", type=common.positive_int, default=36, help="turntable frames (default: %(default)s)")
    p.add_argument("--aggregate", choices=AGGREGATES, default="softmax", help="colour aggregation (default: %(default)s)")
    return p


class Scene:
    """A loaded mesh and one render call, shared by both front ends."""

    def __init__(self, args: argparse.Namespace):
        self.vertices, self.faces, self.textures = common.load_mesh(args.mesh, "--mesh", args.texture_res)
        self.image_size = args.image_size

    def render(self, distance: float, elevation: float, azimuth, sigma: float, gamma: float, aggregate: str) -> torch.Tensor:
        """RGBA ``(B, 4, H, W)``, one image per azimuth (float or sequence of floats)."""
        azimuth = torch.as_tensor(azimuth, dtype=torch.float32).reshape(-1)
        eyes = common.eyes_from_angles(distance, elevation, azimuth)
        with torch.no_grad():
            return common.render(
                self.vertices, self.faces, self.textures, eyes, self.image_size,
                sigma_val=sigma, gamma_val=gamma, aggr_func_rgb=aggregate,
            )


def run_headless(args: argparse.Namespace, scene: Scene) -> None:
    out = common.out_dir(args)
    rows = []
    for sigma in SWEEP_SIGMAS:
        row = [common.to_uint8(scene.render(args.distance, args.elevation, args.azimuth, sigma, g, args.aggregate)[0]) for g in SWEEP_GAMMAS]
        rows.append(common.hstack(row))
    common.save_png(out / "sweep.png", common.vstack(rows))
    azimuths = [360.0 * k / args.views for k in range(args.views)]
    start = time.perf_counter()
    frames = [common.to_uint8(scene.render(args.distance, args.elevation, a, args.sigma, args.gamma, args.aggregate)[0]) for a in azimuths]
    ms = 1000 * (time.perf_counter() - start) / len(frames)
    common.save_png(out / "turntable_000.png", frames[0])
    common.save_gif(out / "turntable.gif", frames, fps=12)
    common.finish(
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
    win = common.Window("taichi_softras: render", (args.image_size, args.image_size), args.frames, args.screenshot)
    log_sigma = win.slider("log10 sigma", -7, -1, math.log10(args.sigma), 0.1)
    log_gamma = win.slider("log10 gamma", -6, 0, math.log10(args.gamma), 0.1)
    azimuth = win.slider("azimuth", 0, 360, args.azimuth, 1)
    elevation = win.slider("elevation", -89, 89, args.elevation, 1)
    distance = win.slider("distance", 1.0, 8.0, args.distance, 0.05)
    switch = win.button("aggregate")
    aggregate, spin = args.aggregate, False
    while win.running:
        for e in win.events():
            if e.key in (switch, "a"):
                aggregate = AGGREGATES[(AGGREGATES.index(aggregate) + 1) % len(AGGREGATES)]
            elif e.key == win.ti.GUI.SPACE:
                spin = not spin
            elif e.key == win.ti.GUI.ESCAPE:
                return
        if spin:
            azimuth.value = (azimuth.value + 2) % 360
        image = scene.render(distance.value, elevation.value, azimuth.value, 10**log_sigma.value, 10**log_gamma.value, aggregate)
        win.set_canvas(common.to_uint8(image[0]))
        win.label(f"aggregate: {aggregate}   a: switch, space: spin, esc: quit")
        win.show()


def main(args: argparse.Namespace) -> None:
    scene = Scene(args)
    if common.wants_gui(args):
        run_gui(args, scene)
    else:
        run_headless(args, scene)


if __name__ == "__main__":
    common.run(main, build_parser())
