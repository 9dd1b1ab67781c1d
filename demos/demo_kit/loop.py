"""The optimization loop of the fitting demos, for the ti.GUI window and headless runs alike."""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from . import cli, images


def optimize(
    args: argparse.Namespace,
    title: str,
    iterations: int,
    step: Callable[[int], dict[str, float]],
    frame: Callable[[], np.ndarray],
    frame_every: int,
) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Run ``step(i)`` for i < ``iterations`` under a progress bar; returns the metric histories and
    the frames taken every ``frame_every`` steps (and after the last one), each captioned with its step.

    ``step(i)`` runs iteration i and returns its metrics; ``frame()`` draws the current state as a
    uint8 image. With a window (not ``--headless``) every iteration is shown; closing the window
    stops early.
    """
    from .tigui import Window

    history: dict[str, list[float]] = {}
    frames: list[np.ndarray] = []
    window = None
    if cli.front_end(args) != "headless":
        first = frame()
        window = Window(f"taichi_softras: {title}", first.shape[:2], args.frames, args.screenshot)
    with cli.progress(range(iterations), desc=title) as bar:
        for i in bar:
            metrics = step(i)
            for k, v in metrics.items():
                history.setdefault(k, []).append(v)
            bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()}, refresh=False)
            take = i % frame_every == 0 or i == iterations - 1
            image = frame() if take or window is not None else None
            if take:
                frames.append(images.caption(image, f"step {i + 1}/{iterations}", size=max(8, min(13, image.shape[1] // 12))))
            if window is not None:
                window.set_canvas(image)
                window.label(f"{title}  step {i + 1}/{iterations}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                window.show()
                if not window.running:
                    break
    return history, frames
