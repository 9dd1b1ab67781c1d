"""The demos' figures (matplotlib, headless backend): every one titled, axes labelled with units,
legends where colours mean something, discrete things drawn as discrete marks.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: pathlib.Path) -> pathlib.Path:
    """Write ``fig`` to ``path`` and close it."""
    fig.savefig(path)
    pyplot().close(fig)
    return path


def _log_y(ax) -> None:
    """A log y axis (call after plotting) labelled with plain numbers (6, 0.02) rather than 6x10^0;
    within a small range the minor ticks are labelled too, so some labels always show."""
    from matplotlib import ticker

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    plain = ticker.FuncFormatter(lambda y, _: f"{y:.2g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if hi / lo < 20 else ticker.NullFormatter())


def curves(path: pathlib.Path, series: dict[str, Sequence[float]], xlabel: str, ylabel: str, title: str,
           log_y: bool = False) -> pathlib.Path:
    """Line plot of named series over their index (iterations, steps); a legend when there are several."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=100)
    for label, ys in series.items():
        ax.plot(np.arange(len(ys)), ys, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations and steps are whole numbers
    if log_y:
        _log_y(ax)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def per_item(path: pathlib.Path, values: Sequence[float], xlabel: str, ylabel: str, title: str,
             threshold: float | None = None, threshold_label: str = "", log_y: bool = False) -> pathlib.Path:
    """One mark per item (items 1..N on integer ticks, e.g. poses), an optional horizontal threshold:
    marks under it are green, over it red (the legend says so)."""
    plt = pyplot()
    values = np.asarray(values, np.float64)
    items = np.arange(1, len(values) + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=100)
    if threshold is None:
        ax.plot(items, values, "o", color="tab:blue")
    else:
        ok = values < threshold
        ax.plot(items[ok], values[ok], "o", color="tab:green", label=f"under {threshold_label}")
        ax.plot(items[~ok], values[~ok], "X", color="tab:red", ms=8, label=f"over {threshold_label}")
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=threshold_label)
        ax.legend(fontsize=8)
    ax.set_xticks(items)
    ax.set_xlim(0.5, len(values) + 0.5)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if log_y:
        _log_y(ax)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save(fig, path)


def image_grid(path: pathlib.Path, rows: Sequence[Sequence[np.ndarray]], title: str,
               row_labels: Sequence[str] = (), col_labels: Sequence[str] = (), xlabel: str = "", ylabel: str = "",
               legend: Sequence[tuple[tuple[float, float, float], str]] = (), panel_inches: float = 1.8) -> pathlib.Path:
    """Images in a grid (``rows[r][c]``, uint8 ``(H, W, 3)``) with a label per row and per column,
    figure-wide axis labels and a legend of colour swatches ``(rgb in [0, 1], meaning)``."""
    plt = pyplot()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_inches * n_cols + 0.8, panel_inches * n_rows + 0.9),
                             dpi=100, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c], interpolation="nearest")
            else:
                ax.axis("off")
            if r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=9)
    fig.suptitle(title, fontsize=11)
    if xlabel:
        fig.supxlabel(xlabel, fontsize=9)
    if ylabel:
        fig.supylabel(ylabel, fontsize=9)
    if legend:
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(color=c, label=t) for c, t in legend], loc="lower center", ncol=len(legend),
                   fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if legend else 0, 1, 1))
    return save(fig, path)
