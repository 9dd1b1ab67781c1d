"""What every demo shares: the command line, one-line errors, the GUI/headless front end and outputs.

A demo builds its parser with :func:`make_parser`, does its work in ``main(args)`` and is started
with :func:`run`. User mistakes (bad arguments, unreadable or malformed input files) end as
one ``<demo>: error: ...`` line on stderr and exit status 2, never a traceback.

The front end (:class:`Window`) is a Taichi GUI window unless ``--headless`` is given or no display
exists; headless runs draw the same frames into ``--out`` (PNGs, a GIF, matplotlib plots and a
``summary.json``). Under ``--headless`` the GUI is never created, so no display is needed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
from typing import Callable, Sequence

import numpy as np
import torch

# Demos run as scripts (python demos/x.py) and as modules (python -m demos.x); both see this folder.
DEMO_DIR = pathlib.Path(__file__).resolve().parent
OUT_ROOT = pathlib.Path("out")


class DemoError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage + message (two lines)
        raise DemoError(message)


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def make_parser(name: str, description: str, image_size: int, sigma: float, gamma: float) -> argparse.ArgumentParser:
    """The options every demo has; ``image_size``, ``sigma``, ``gamma`` are the demo's defaults."""
    p = _Parser(prog=name, description=description)
    p.add_argument("--headless", action="store_true", help="no window: write PNGs/GIF/plots to --out")
    p.add_argument("--out", type=pathlib.Path, default=OUT_ROOT / name, help="output folder (default: %(default)s)")
    p.add_argument("--image-size", type=positive_int, default=image_size, help="rendered image side (default: %(default)s)")
    p.add_argument("--sigma", type=positive_float, default=sigma, help="SoftRas sigma, blur of the edges (default: %(default)g)")
    p.add_argument("--gamma", type=positive_float, default=gamma, help="SoftRas gamma, depth softness (default: %(default)g)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--frames", type=int, default=0, help="GUI: close after this many frames (0: when the window closes)")
    p.add_argument("--screenshot", type=pathlib.Path, default=None, help="GUI: save the last frame to this PNG")
    return p


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and call ``main``; user errors become one line on stderr and exit status 2.

    Only user errors (DemoError: bad arguments or input files; OSError: e.g. an unwritable --out)
    are shortened; anything else is a bug and keeps its traceback.
    """
    try:
        args = parser.parse_args(argv)
        out_dir(args)  # fail before the work, not after it
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        main(args)
    except (DemoError, OSError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def wants_gui(args: argparse.Namespace) -> bool:
    """True unless --headless or (on Linux) no X display; says so when it falls back."""
    if args.headless:
        return False
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        print(f"no display (DISPLAY unset): running headless, outputs in {args.out}", file=sys.stderr)
        args.headless = True
        return False
    return True


def out_dir(args: argparse.Namespace) -> pathlib.Path:
    """The output folder, created (DemoError if it cannot be)."""
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DemoError(f"--out {args.out}: cannot create the folder ({e.strerror or e})") from None
    return args.out


# --- meshes ------------------------------------------------------------------------------------


def check_file(path: pathlib.Path, option: str) -> pathlib.Path:
    """Raise DemoError unless ``path`` is an existing file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DemoError(f"{option} {path}: no such file")
    return path


# --- images ------------------------------------------------------------------------------------


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(H, W, C)`` or ``(C, H, W)`` (C = 1, 3, 4; floats in [0, 1]) -> ``(H, W, 3)`` uint8, RGBA over white."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 4:
        a = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def hstack(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Place uint8 ``(H, W, 3)`` images of equal height side by side with white gaps."""
    h = images[0].shape[0]
    sep = np.full((h, gap, 3), 255, np.uint8)
    out = []
    for i, im in enumerate(images):
        out += [im] if i == 0 else [sep, im]
    return np.concatenate(out, 1)


def vstack(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Stack uint8 ``(H, W, 3)`` images of equal width vertically with white gaps."""
    return hstack([im.transpose(1, 0, 2) for im in images], gap).transpose(1, 0, 2)


def save_png(path: pathlib.Path, image: np.ndarray) -> pathlib.Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


def save_gif(path: pathlib.Path, frames: Sequence[np.ndarray], fps: float = 10) -> pathlib.Path:
    """Write uint8 ``(H, W, 3)`` frames as a looping GIF."""
    from PIL import Image

    if not frames:
        raise DemoError(f"no frames to write to {path}")
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    return path


def save_plot(path: pathlib.Path, curves: dict[str, Sequence[float]], xlabel: str, title: str, log_y: bool = False) -> pathlib.Path:
    """Line plot of named series (one axis) with matplotlib's headless backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, ys in curves.items():
        ax.plot(np.arange(len(ys)), ys, label=label)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def finish(args: argparse.Namespace, name: str, summary: dict) -> None:
    """Print the one-line result and write it as ``summary.json`` in --out."""
    path = out_dir(args) / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items() if not isinstance(v, (list, dict))]
    print(f"{name}: " + " ".join(parts) + f" (summary: {path})")


# --- the GUI -----------------------------------------------------------------------------------

PANEL_WIDTH = 240  # right-hand strip where ti.GUI draws its widgets
MIN_HEIGHT = 360  # ti.GUI crashes when its widgets don't fit the window
MIN_ZOOMED = 256


class Window:
    """A ti.GUI window showing a uint8 ``(H, W, 3)`` canvas (row 0 at the top) left of a widget strip.

    Small canvases are magnified by an integer ``zoom`` to at least MIN_ZOOMED pixels high.
    ``frames`` > 0 closes it after that many frames; ``screenshot`` saves the last one.
    """

    def __init__(self, title: str, canvas_shape: tuple[int, int], frames: int = 0, screenshot: pathlib.Path | None = None):
        import taichi as ti

        from taichi_softras import runtime

        runtime.ensure_initialized()
        self.ti = ti
        self.zoom = max(1, MIN_ZOOMED // canvas_shape[0])
        self.canvas_h = max(canvas_shape[0] * self.zoom, MIN_HEIGHT)
        self.canvas_w = canvas_shape[1] * self.zoom
        self.res = (self.canvas_w + PANEL_WIDTH, self.canvas_h)
        self.gui = ti.GUI(title, res=self.res, background_color=0x333333)
        self.frames, self.screenshot, self.count, self.closed = frames, screenshot, 0, False

    def slider(self, text: str, lo: float, hi: float, value: float, step: float | None = None):
        s = self.gui.slider(text, lo, hi, step=step) if step else self.gui.slider(text, lo, hi)
        s.value = value
        return s

    def button(self, text: str):
        return self.gui.button(text)

    def events(self) -> list:
        """Key/mouse press events since the last frame (ti.GUI.Event objects)."""
        return list(self.gui.get_events(self.ti.GUI.PRESS))

    def cursor_pixel(self) -> tuple[float, float]:
        """Mouse position as (column, row) of the canvas, row 0 at the top."""
        x, y = self.gui.get_cursor_pos()
        return x * self.res[0], (1 - y) * self.res[1]

    @property
    def running(self) -> bool:
        return not self.closed and self.gui.running

    def to_gui(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Canvas pixel coordinates -> ti.GUI's [0, 1]^2 (origin bottom-left), ``(N, 2)``."""
        return np.stack([np.asarray(col) / self.res[0], 1 - np.asarray(row) / self.res[1]], -1)

    def label(self, text: str) -> None:
        """A status line at the bottom-left of the window."""
        self.gui.text(text, (0.01, 0.04), font_size=15, color=0xFFFFFF)

    def set_canvas(self, canvas: np.ndarray) -> None:
        canvas = canvas.repeat(self.zoom, 0).repeat(self.zoom, 1)
        full = np.full((self.res[1], self.res[0], 3), 0x33, np.uint8)
        full[: canvas.shape[0], : canvas.shape[1]] = canvas[: self.res[1], : self.canvas_w]
        self.gui.set_image(np.ascontiguousarray(full.transpose(1, 0, 2)[:, ::-1]))  # ti.GUI: [x, y], y up

    def show(self) -> None:
        self.count += 1
        last = self.frames and self.count >= self.frames
        path = None
        if last and self.screenshot is not None:
            self.screenshot.parent.mkdir(parents=True, exist_ok=True)
            path = str(self.screenshot)
        self.gui.show(path)
        if last:
            self.gui.close()
            self.closed = True


# --- rendering ---------------------------------------------------------------------------------


DEFAULT_COLOR = (0.75, 0.75, 0.8)  # meshes without a material


def load_mesh(path: str | pathlib.Path, option: str = "--mesh", texture_res: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An OBJ's vertices ``(V, 3)`` float32, faces ``(F, 3)`` int64 and surface textures
    ``(1, F, R*R, 3)`` (its MTL's Kd / map_Kd, else a light grey). DemoError naming ``option`` if unreadable."""
    from taichi_softras import io

    path = check_file(path, option)
    try:
        obj = io.read_obj(path)
        if obj.materials:
            textures = io.surface_textures(obj, texture_res)
        else:
            textures = torch.tensor(DEFAULT_COLOR).expand(len(obj.faces), texture_res**2, 3)
    except (ValueError, OSError) as e:
        raise DemoError(f"{option} {path}: {e}") from None
    vertices = torch.as_tensor(obj.vertices, dtype=torch.float32)
    if not torch.isfinite(vertices).all():
        raise DemoError(f"{option} {path}: vertices contain NaN or inf")
    return vertices, torch.as_tensor(obj.faces, dtype=torch.int64), textures[None].contiguous()


def render(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    textures: torch.Tensor,
    eyes: torch.Tensor,
    image_size: int,
    viewing_angle: float = 30.0,
    lit: bool = True,
    **raster_kwargs,
) -> torch.Tensor:
    """Render world-space ``vertices (B, V, 3)`` (or (V, 3)), ``faces (F, 3)`` with surface
    ``textures (B or 1, F, R*R, 3)`` from look_at ``eyes (B, 3)`` (B views) -> RGBA ``(B, 4, H, W)``.

    A :class:`taichi_softras.SoftRenderer` (``raster_kwargs``: its SoftRas keywords) with SoftRas's
    default lighting when ``lit``, none (ambient 1) otherwise.
    """
    from taichi_softras import Mesh, SoftRenderer

    b = eyes.shape[0]
    if vertices.ndim == 2:
        vertices = vertices[None]
    renderer = SoftRenderer(
        image_size=image_size, camera_mode="look_at", viewing_angle=viewing_angle,
        light_intensity_ambient=0.5 if lit else 1.0, light_intensity_directionals=0.5 if lit else 0.0, **raster_kwargs,
    )
    renderer.transform.set_eyes(eyes)
    mesh = Mesh(vertices.expand(b, -1, -1), faces[None].expand(b, -1, -1), textures.expand(b, -1, -1, -1))
    return renderer.render_mesh(mesh)


def eyes_from_angles(distance, elevation, azimuth) -> torch.Tensor:
    """Eye positions ``(B, 3)`` float32 from (distance, elevation, azimuth) in degrees, each scalar or ``(B,)``."""
    from taichi_softras.cameras import get_points_from_angles

    t = [torch.as_tensor(a, dtype=torch.float32) for a in (distance, elevation, azimuth)]
    return get_points_from_angles(*t)


def optimize(
    args: argparse.Namespace,
    title: str,
    iterations: int,
    step: Callable[[int], dict[str, float]],
    frame: Callable[[], np.ndarray],
    frame_every: int,
) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """The loop of the optimization demos, for both front ends.

    ``step(i)`` runs iteration i and returns its metrics; ``frame()`` draws the current state as a
    uint8 image. The GUI shows a frame every iteration (closing the window stops early); headless
    shows a tqdm bar. Returns the metric histories and the frames taken every ``frame_every`` steps
    (and after the last one).
    """
    from tqdm import tqdm

    history: dict[str, list[float]] = {}
    frames: list[np.ndarray] = []
    window = None
    if wants_gui(args):
        first = frame()
        window = Window(title, first.shape[:2], args.frames, args.screenshot)
    bar = tqdm(range(iterations), desc=title, disable=window is not None or not sys.stderr.isatty(), leave=False)
    for i in bar:
        metrics = step(i)
        for k, v in metrics.items():
            history.setdefault(k, []).append(v)
        bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()})
        take = i % frame_every == 0 or i == iterations - 1
        if window is not None:
            image = frame()
            window.set_canvas(image)
            window.label(f"{title}  step {i + 1}/{iterations}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            window.show()
            if take:
                frames.append(image)
            if not window.running:
                break
        elif take:
            frames.append(frame())
    return history, frames
