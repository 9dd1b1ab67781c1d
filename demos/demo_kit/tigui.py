"""The ``ti.GUI`` window (``--ui gui``): a uint8 canvas, a strip of sliders and buttons at its right
and a status line below it.

ti.GUI's own widgets draw a slider's bar without a handle and cut long button labels, and nothing
can be drawn over them; so the widgets here are drawn into the window's image (with PIL, like the
panels) and driven by ti.GUI's mouse events. A slider shows its name, value and a handle; a click or
a drag on its bar sets it; a button is pressed by a click.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from . import images

STRIP = 230  # widget strip width, pixels
ROW = 44  # pixels per widget
PAD = 12  # the bar's inset from the strip's sides
STATUS = 24  # status line height
MIN_ZOOMED = 256
BACKGROUND = (51, 51, 51)
BAR, HANDLE, BUTTON, TEXT = (120, 120, 120), (80, 160, 255), (70, 90, 120), (255, 255, 255)


@dataclasses.dataclass
class Slider:
    """A slider's state: ``value`` in [lo, hi], rounded to ``step`` when it is set by the mouse."""

    text: str
    lo: float
    hi: float
    value: float
    step: float | None
    row: int

    def set_from(self, t: float) -> None:
        value = self.lo + min(max(t, 0.0), 1.0) * (self.hi - self.lo)
        self.value = round(value / self.step) * self.step if self.step else value


@dataclasses.dataclass
class Event:
    """A key press (``key`` as ti.GUI names it) or a click on a button (``key`` = its text)."""

    key: str


class Window:
    """A ti.GUI window showing a uint8 ``(H, W, 3)`` canvas (row 0 at the top) left of the widgets.

    Small canvases are magnified by an integer ``zoom`` to at least MIN_ZOOMED pixels high.
    ``frames`` > 0 closes it after that many frames; ``screenshot`` saves the last one.
    """

    def __init__(self, title: str, canvas_shape: tuple[int, int], frames: int = 0, screenshot: pathlib.Path | None = None,
                 zoom: int | None = None):
        import taichi as ti

        from taichi_softras import runtime

        runtime.ensure_initialized()
        self.ti, self.title = ti, title
        self.zoom = max(1, MIN_ZOOMED // canvas_shape[0]) if zoom is None else zoom
        self.canvas_w = canvas_shape[1] * self.zoom
        self.canvas_h = canvas_shape[0] * self.zoom
        self.res = (self.canvas_w, self.canvas_h + STATUS)  # + the widget strip, if widgets are added
        self._gui = None  # opened at first use, once the widgets (and so the width) are known
        self.frames, self.screenshot, self.count, self.closed = frames, screenshot, 0, False
        self.sliders: list[Slider] = []
        self.buttons: list[tuple[str, int]] = []  # (text, row)
        self.rows = 0
        self.canvas = np.full((self.canvas_h, self.canvas_w, 3), BACKGROUND[0], np.uint8)
        self.status = ""
        self._dragging: Slider | None = None

    @property
    def gui(self):
        """The ti.GUI window (opened at the first call)."""
        if self._gui is None:
            if self.rows:
                self.canvas_h = max(self.canvas_h, self.rows * ROW)
                self.res = (self.canvas_w + STRIP, self.canvas_h + STATUS)
            self._gui = self.ti.GUI(self.title, res=self.res)
        return self._gui

    def slider(self, text: str, lo: float, hi: float, value: float, step: float | None = None) -> Slider:
        self.sliders.append(Slider(text, lo, hi, value, step, self.rows))
        self.rows += 1
        return self.sliders[-1]

    def button(self, text: str) -> str:
        """Add a button; its clicks arrive from :meth:`events` as ``Event(text)``."""
        self.buttons.append((text, self.rows))
        self.rows += 1
        return text

    def cursor_pixel(self) -> tuple[float, float]:
        """Mouse position as (column, row) of the window, row 0 at the top."""
        x, y = self.gui.get_cursor_pos()
        return x * self.res[0], (1 - y) * self.res[1]

    def _bar(self, row: int) -> tuple[int, int, int]:
        """A slider bar's left and right ends and its height, window pixels."""
        return self.canvas_w + PAD, self.res[0] - PAD, row * ROW + 30

    def events(self) -> list[Event]:
        """Key presses and button clicks since the last frame; slider drags are applied here."""
        out = []
        for e in self.gui.get_events():
            if e.key != self.ti.GUI.LMB:
                if e.type == self.ti.GUI.PRESS:
                    out.append(Event(e.key))
                continue
            if e.type == self.ti.GUI.RELEASE:
                self._dragging = None
                continue
            x, y = self.cursor_pixel()
            if x < self.canvas_w:
                out.append(Event(self.ti.GUI.LMB))
                continue
            row = int(y // ROW)
            self._dragging = next((s for s in self.sliders if s.row == row), None)
            out += [Event(text) for text, r in self.buttons if r == row]
        if self._dragging is not None:
            left, right, _ = self._bar(self._dragging.row)
            self._dragging.set_from((self.cursor_pixel()[0] - left) / (right - left))
        return out

    @property
    def running(self) -> bool:
        return not self.closed and self.gui.running

    def label(self, text: str) -> None:
        """The status line below the canvas."""
        self.status = text

    def set_canvas(self, canvas: np.ndarray) -> None:
        canvas = images.upscale(canvas, self.zoom)[: self.canvas_h, : self.canvas_w]
        self.canvas = np.full((self.canvas_h, self.canvas_w, 3), BACKGROUND[0], np.uint8)
        self.canvas[: canvas.shape[0], : canvas.shape[1]] = canvas

    def _frame(self) -> np.ndarray:
        """The window's image: canvas, widget strip, status line."""
        im = Image.new("RGB", self.res, BACKGROUND)
        im.paste(Image.fromarray(self.canvas), (0, 0))
        draw = ImageDraw.Draw(im)
        font = images.font(13)
        for s in self.sliders:
            left, right, y = self._bar(s.row)
            t = min(max((s.value - s.lo) / (s.hi - s.lo), 0.0), 1.0)
            draw.text((left, s.row * ROW + 6), f"{s.text}: {s.value:.3g}", fill=TEXT, font=font)
            draw.line([(left, y), (right, y)], fill=BAR, width=4)
            x = left + t * (right - left)
            draw.line([(left, y), (x, y)], fill=HANDLE, width=4)
            draw.ellipse([x - 7, y - 7, x + 7, y + 7], fill=HANDLE, outline=TEXT, width=2)
        for text, row in self.buttons:
            box = [self.canvas_w + PAD, row * ROW + 6, self.res[0] - PAD, row * ROW + ROW - 6]
            draw.rounded_rectangle(box, radius=5, fill=BUTTON, outline=TEXT)
            draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, fill=TEXT, font=font, anchor="mm")
        draw.text((6, self.canvas_h + 4), self.status, fill=TEXT, font=font)
        return np.asarray(im)

    def show(self) -> None:
        self.gui.set_image(np.ascontiguousarray(self._frame().transpose(1, 0, 2)[:, ::-1]))  # ti.GUI: [x, y], y up
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
