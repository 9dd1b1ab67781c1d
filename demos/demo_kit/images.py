"""uint8 ``(H, W, 3)`` images (row 0 at the top): conversion, layout, text, colour maps, colour bars,
arrows, and PNG/GIF files. Used by the headless outputs and by both windows, so a window shows
exactly what the files hold.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(H, W, C)`` or ``(C, H, W)`` (C = 1, 3, 4; floats in [0, 1]) or ``(H, W)`` -> ``(H, W, 3)``
    uint8, RGBA composited over white."""
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


def hstack(images: Sequence[np.ndarray], gap: int = 4, fill: int = 255) -> np.ndarray:
    """Place uint8 images side by side with ``gap`` pixels of grey level ``fill`` between them,
    top-aligned (shorter ones padded below)."""
    h = max(im.shape[0] for im in images)
    out = []
    for i, im in enumerate(images):
        if i:
            out.append(np.full((h, gap, 3), fill, np.uint8))
        out.append(np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)), constant_values=fill))
    return np.concatenate(out, 1)


def vstack(images: Sequence[np.ndarray], gap: int = 4, fill: int = 255) -> np.ndarray:
    """Stack uint8 images vertically with ``gap`` pixels between them, left-aligned."""
    return hstack([im.transpose(1, 0, 2) for im in images], gap, fill).transpose(1, 0, 2)


def upscale(image: np.ndarray, zoom: int) -> np.ndarray:
    """Each pixel as a ``zoom`` x ``zoom`` block (nearest neighbour: pixels stay visible)."""
    return image.repeat(zoom, 0).repeat(zoom, 1) if zoom > 1 else image


def resize(image: np.ndarray, side: int) -> np.ndarray:
    """A square uint8 image resized to ``side`` pixels, nearest neighbour (pixels stay visible)."""
    return np.asarray(Image.fromarray(image).resize((side, side), Image.NEAREST))


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib, so present wherever the demos run) at ``size`` pixels."""
    import matplotlib

    return ImageFont.truetype(str(pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def caption(image: np.ndarray, text: str, size: int = 13, fg=BLACK, bg=WHITE) -> np.ndarray:
    """``image`` with a strip of text above it (lines split at ``\\n``)."""
    lines = text.split("\n")
    strip = Image.new("RGB", (image.shape[1], (size + 4) * len(lines) + 4), bg)
    draw = ImageDraw.Draw(strip)
    for k, line in enumerate(lines):
        draw.text((3, 2 + k * (size + 4)), line, fill=fg, font=font(size))
    return np.concatenate([np.asarray(strip), image], 0)


def colormap(values: np.ndarray, name: str = "magma", vmin: float = 0.0, vmax: float | None = None,
             log: bool = False) -> np.ndarray:
    """Scalars (any shape) -> uint8 RGB (shape + (3,)) with a matplotlib colour map over [vmin, vmax]
    (``log``: log10 of the values over [vmin, vmax], both > 0)."""
    import matplotlib

    values = np.asarray(values, np.float64)
    vmax = float(values.max()) if vmax is None else vmax
    if log:
        values, vmin, vmax = np.log10(np.maximum(values, vmin)), np.log10(vmin), np.log10(vmax)
    t = np.clip((values - vmin) / (vmax - vmin), 0, 1) if vmax > vmin else np.zeros_like(values)
    return (matplotlib.colormaps[name](t)[..., :3] * 255 + 0.5).astype(np.uint8)


def colorbar(height: int, name: str, vmin: float, vmax: float, label: str, log: bool = False,
             fg=BLACK, bg=WHITE) -> np.ndarray:
    """A vertical colour bar ``(height, 76, 3)``: the map's strip, its top and bottom values and
    ``label`` written along it."""
    width, bar = 76, 12
    ramp = np.linspace(1, 0, height)[:, None].repeat(bar, 1)
    strip = colormap(vmin + ramp * (vmax - vmin) if not log else 10 ** (np.log10(vmin) + ramp * np.log10(vmax / vmin)),
                     name, vmin, vmax, log)
    im = Image.new("RGB", (width, height), bg)
    im.paste(Image.fromarray(strip), (2, 0))
    draw = ImageDraw.Draw(im)
    small = font(10)
    draw.text((bar + 4, 0), f"{vmax:.2g}", fill=fg, font=small)
    draw.text((bar + 4, height - 12), f"{vmin:.2g}", fill=fg, font=small)
    side = Image.new("RGB", (height, 14), bg)  # the label, written along the bar
    ImageDraw.Draw(side).text((height // 2, 7), label, fill=fg, font=small, anchor="mm")
    im.paste(side.rotate(90, expand=True), (width - 16, 0))
    return np.asarray(im)


def panel(image: np.ndarray, title: str, bar: np.ndarray | None = None, fg=BLACK, bg=WHITE) -> np.ndarray:
    """A titled panel: ``title`` above ``image``, an optional colour bar (see :func:`colorbar`) at its right."""
    body = image if bar is None else hstack([image, bar], gap=4, fill=bg[0])
    return caption(body, title, fg=fg, bg=bg)


def draw_arrows(image: np.ndarray, start: np.ndarray, end: np.ndarray, colors: np.ndarray, width: int = 2) -> np.ndarray:
    """A copy of ``image`` with arrows from ``start`` to ``end`` (``(N, 2)`` pixel (column, row),
    pixel centres at integers) in ``colors`` ``(N, 3)`` uint8, each with a head 30% of its length
    (3 to 8 pixels). Black outlines keep them visible on any background."""
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    d = end - start
    length = np.hypot(d[:, 0], d[:, 1])
    order = np.argsort(length)  # the longest (most important) arrows on top
    for outline in (True, False):
        for i in order:
            if length[i] < 0.5:
                continue
            u = d[i] / length[i]
            head = min(max(3.0, 0.3 * length[i]), 8.0)
            left = end[i] - head * u + 0.5 * head * np.array([-u[1], u[0]])
            right = end[i] - head * u - 0.5 * head * np.array([-u[1], u[0]])
            color = BLACK if outline else tuple(int(c) for c in colors[i])
            w = width + 2 if outline else width
            draw.line([tuple(start[i]), tuple(end[i])], fill=color, width=w)
            draw.polygon([tuple(end[i]), tuple(left), tuple(right)], fill=color, outline=BLACK, width=2 if outline else 0)
    return np.asarray(im)


def draw_marker(image: np.ndarray, center: Sequence[float], radius: int = 5, color=(0, 255, 255)) -> np.ndarray:
    """A copy of ``image`` with a ring of ``radius`` around ``center`` (column, row)."""
    im = Image.fromarray(image)
    x, y = center
    ImageDraw.Draw(im).ellipse([x - radius, y - radius, x + radius, y + radius], outline=color, width=2)
    return np.asarray(im)


OVERLAY_LEGEND = [((1.0, 0.0, 0.3), "target only"), ((0.0, 1.0, 0.0), "fit only"), ((1.0, 1.0, 0.3), "both")]


def silhouette_overlay(target: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
    """Silhouettes ``(H, W)`` in [0, 1] as one uint8 image: target red, prediction green, both
    yellow (the colours of OVERLAY_LEGEND, for a figure's legend)."""
    return to_uint8(torch.stack([target, pred, 0.3 * target], -1))


def save_png(path: pathlib.Path, image: np.ndarray) -> pathlib.Path:
    """Write a uint8 ``(H, W, 3)`` image."""
    Image.fromarray(image).save(path)
    return path


def save_gif(path: pathlib.Path, frames: Sequence[np.ndarray], fps: float = 10) -> pathlib.Path:
    """Write uint8 ``(H, W, 3)`` frames as a looping GIF."""
    from .cli import DemoError

    if not frames:
        raise DemoError(f"no frames to write to {path}")
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    return path
