"""The ``ti.ui`` (GGUI, Vulkan) window (``--ui ggui``): ImGui widgets, image panels and an
orbitable 3D view in one window.

GGUI 1.7.4 draws its 3D scene over the whole window, on top of the canvas image, and its
perspective camera has no lens shift. So the image panels are painted into the canvas image
(``Window.background``) and the 3D view, confined to a region of the window, uses an orthographic
camera whose left/right/top/bottom bounds put the orbit centre in the middle of that region
(:class:`OrbitView`); the region's own background is painted too. Picking projects the vertices
with the same camera (:meth:`OrbitView.project`).

Headless use: under Xvfb with Mesa's Vulkan driver (lavapipe) this runs with ``show_window=True``;
``show_window=False`` segfaulted there, so it is never used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import pathlib

import numpy as np

BACKGROUND = (0.2, 0.2, 0.2)
PICK_RADIUS = 20  # pixels: the largest cursor-to-vertex distance that picks
CLICK_SLOP = 4  # pixels: a press and release closer than this is a click, farther a drag


class _VkInstanceCreateInfo(ctypes.Structure):
    _fields_ = [("sType", ctypes.c_int32), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                ("pApplicationInfo", ctypes.c_void_p), ("enabledLayerCount", ctypes.c_uint32),
                ("ppEnabledLayerNames", ctypes.c_void_p), ("enabledExtensionCount", ctypes.c_uint32),
                ("ppEnabledExtensionNames", ctypes.c_void_p)]


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None where GGUI can run (a Vulkan loader and at least one Vulkan device); else why not.

    Asks the Vulkan loader directly (create an instance, count devices), since Taichi only reports
    whether it was built with Vulkan and a failing window creation can take the process down.
    """
    from taichi._lib import core

    if not core.GGUI_AVAILABLE:
        return "this Taichi build has no GGUI"
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("vulkan") or "libvulkan.so.1")
    except OSError:
        return "no Vulkan loader (libvulkan); on Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers"
    instance, count = ctypes.c_void_p(), ctypes.c_uint32()
    info = _VkInstanceCreateInfo(sType=1)  # VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
    result = lib.vkCreateInstance(ctypes.byref(info), None, ctypes.byref(instance))
    if result != 0:
        return f"no Vulkan driver (vkCreateInstance returned {result}); on Debian/Ubuntu: apt-get install mesa-vulkan-drivers"
    lib.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), None)
    lib.vkDestroyInstance(instance, None)
    return None if count.value else "no Vulkan device"


def inside(pixel: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    """Whether window pixel (column, row) lies in the box (x, y, w, h), from the top-left."""
    x, y, w, h = box
    return x <= pixel[0] < x + w and y <= pixel[1] < y + h


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length along its last axis."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class OrbitView:
    """An orbit camera around ``center`` drawn into the window region ``(x0, y0, w, h)`` (pixels,
    from the top-left): orthographic, the region's shorter side spanning ``2 * radius / zoom``.

    The eye sits at ``azimuth``/``elevation`` degrees around the centre by SoftRas's formula
    (azimuth 0 on the -z side, elevation 90 above), always with +y up on the screen.
    """

    def __init__(self, window_res: tuple[int, int], region: tuple[int, int, int, int], center, radius: float,
                 azimuth: float = 45.0, elevation: float = 25.0):
        self.window_res, self.region = window_res, region
        self.center, self.radius = np.asarray(center, np.float64), float(radius)
        self.home = (azimuth, elevation)
        self.azimuth, self.elevation, self.zoom = azimuth, elevation, 1.0

    def reset(self) -> None:
        (self.azimuth, self.elevation), self.zoom = self.home, 1.0

    def controls(self, gui) -> None:
        """This view's ImGui widgets (inside a sub-window): zoom and reset."""
        gui.text("3D view (drag to orbit)")
        self.zoom = gui.slider_float("3D zoom", self.zoom, 0.5, 4.0)
        if gui.button("reset 3D view"):
            self.reset()

    def orbit(self, dx: float, dy: float) -> None:
        """Turn by a mouse drag of (dx, dy) pixels (right, down)."""
        self.azimuth = (self.azimuth - 0.4 * dx) % 360
        self.elevation = float(np.clip(self.elevation + 0.4 * dy, -89, 89))

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Eye position, and the camera's right, up and forward unit vectors (world)."""
        a, e = math.radians(self.azimuth), math.radians(self.elevation)
        back = np.array([math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)])
        eye = self.center + 4 * self.radius * back
        forward = -back
        right = unit(np.cross(forward, [0.0, 1.0, 0.0]))
        return eye, right, np.cross(right, forward), forward

    def _units_per_pixel(self) -> float:
        return 2 * self.radius / self.zoom / min(self.region[2], self.region[3])

    def camera(self):
        """The ``ti.ui.Camera`` for this frame."""
        import taichi as ti

        eye, _, _, _ = self.basis()
        x0, y0, w, h = self.region
        cx, cy = x0 + w / 2, y0 + h / 2  # the region's centre, window pixels
        u = self._units_per_pixel()
        cam = ti.ui.Camera()
        cam.position(*eye)
        cam.lookat(*self.center)
        cam.up(0.0, 1.0, 0.0)
        cam.projection_mode(ti.ui.ProjectionMode.Orthogonal)
        cam.left(-cx * u)
        cam.right((self.window_res[0] - cx) * u)
        # GGUI passes top and bottom to glm::ortho in swapped order and flips y on screen, so
        # its 'top' is the world height at the window's bottom edge and 'bottom' at the top edge.
        cam.top(-(self.window_res[1] - cy) * u)
        cam.bottom(cy * u)
        cam.z_near(0.01 * self.radius)
        cam.z_far(10 * self.radius)
        return cam

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World ``(N, 3)`` -> window pixels (column, row from the top) ``(N, 2)`` and depth along the view ``(N,)``."""
        eye, right, up, forward = self.basis()
        rel = np.asarray(points, np.float64) - self.center
        u = self._units_per_pixel()
        x0, y0, w, h = self.region
        cols = x0 + w / 2 + rel @ right / u
        rows = y0 + h / 2 - rel @ up / u
        return np.stack([cols, rows], 1), (np.asarray(points) - eye) @ forward

    def contains(self, pixel: tuple[float, float]) -> bool:
        return inside(pixel, self.region)

    def pick(self, points: np.ndarray, pixel: tuple[float, float], normals: np.ndarray | None = None) -> int | None:
        """The point projecting nearest to ``pixel``, within PICK_RADIUS pixels, among those facing
        the eye (when ``normals`` are given; a closed mesh's hidden side faces away); None if none."""
        xy, _ = self.project(points)
        distance = np.hypot(*(xy - np.asarray(pixel)).T)
        if normals is not None:
            distance[normals @ self.basis()[3] >= 0] = np.inf
        best = int(distance.argmin())
        return best if distance[best] < PICK_RADIUS else None


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` of a mesh (counter-clockwise faces point outward)."""
    v = vertices[faces]
    face_normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return unit(normals)


class MeshBuffer:
    """Taichi fields for one triangle mesh of fixed size, drawn with per-vertex colours."""

    def __init__(self, faces: np.ndarray, num_vertices: int):
        import taichi as ti

        self.faces = np.asarray(faces, np.int32)
        self.vertices = ti.Vector.field(3, ti.f32, num_vertices)
        self.normals = ti.Vector.field(3, ti.f32, num_vertices)
        self.colors = ti.Vector.field(3, ti.f32, num_vertices)
        self.indices = ti.field(ti.i32, self.faces.size)
        self.indices.from_numpy(self.faces.reshape(-1))

    def update(self, vertices: np.ndarray, colors: np.ndarray) -> None:
        """``vertices (V, 3)`` world, ``colors (V, 3)`` uint8 or floats in [0, 1]."""
        colors = np.asarray(colors)
        colors = colors / 255.0 if colors.dtype == np.uint8 else colors
        self.vertices.from_numpy(np.asarray(vertices, np.float32))
        self.normals.from_numpy(vertex_normals(np.asarray(vertices, np.float64), self.faces).astype(np.float32))
        self.colors.from_numpy(np.asarray(colors, np.float32))

    def draw(self, scene) -> None:
        # Explicit normals and two_sided: with GGUI's own normals and one-sided shading a
        # per_vertex_color mesh can come out black (its triangles then face away from the light).
        scene.mesh(self.vertices, self.indices, normals=self.normals, per_vertex_color=self.colors, two_sided=True)


class LineBuffer:
    """Up to ``capacity`` line segments (pairs of points) with per-point colours."""

    def __init__(self, capacity: int):
        import taichi as ti

        self.points = ti.Vector.field(3, ti.f32, 2 * capacity)
        self.colors = ti.Vector.field(3, ti.f32, 2 * capacity)
        self.count = 0

    def update(self, starts: np.ndarray, ends: np.ndarray, colors) -> None:
        """Segments ``starts[i] -> ends[i]`` ``(N, 3)``, ``colors`` ``(N, 3)`` (or one RGB) in [0, 1]."""
        n = min(len(starts), self.points.shape[0] // 2)
        pts = np.zeros((self.points.shape[0], 3), np.float32)
        pts[0 : 2 * n : 2], pts[1 : 2 * n : 2] = starts[:n], ends[:n]
        col = np.zeros_like(pts)
        col[: 2 * n] = np.repeat(np.broadcast_to(np.asarray(colors, np.float32), (len(starts), 3))[:n], 2, 0)
        self.points.from_numpy(pts)
        self.colors.from_numpy(col)
        self.count = 2 * n

    def draw(self, scene, width: float = 2.0) -> None:
        if self.count:
            scene.lines(self.points, width=width, per_vertex_color=self.colors, vertex_count=self.count)


class PointBuffer:
    """Up to ``capacity`` spheres of one radius and colour."""

    def __init__(self, capacity: int):
        import taichi as ti

        self.centers = ti.Vector.field(3, ti.f32, capacity)
        self.count = 0

    def update(self, centers: np.ndarray) -> None:
        c = np.zeros((self.centers.shape[0], 3), np.float32)
        self.count = min(len(centers), len(c))
        c[: self.count] = centers[: self.count]
        self.centers.from_numpy(c)

    def draw(self, scene, radius: float, color) -> None:
        if self.count:
            scene.particles(self.centers, radius=radius, color=tuple(color), index_count=self.count)


def arrow_segments(starts: np.ndarray, ends: np.ndarray, view_forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments ``(3N, 3)`` drawing arrows ``starts -> ends``: the shaft and two head strokes
    a quarter of its length, in the plane facing the viewer."""
    d = ends - starts
    head = 0.25 * d
    side = unit(np.cross(d, view_forward)) * np.linalg.norm(head, axis=1, keepdims=True) * 0.6
    a = np.concatenate([starts, ends, ends])
    b = np.concatenate([ends, ends - head + side, ends - head - side])
    return a, b


def frustum_segments(eye: np.ndarray, at: np.ndarray, viewing_angle: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Line segments ``(8, 3)`` of a look-at camera's view pyramid (up = +y), ``length`` deep, for drawing it."""
    forward = unit(at - eye)
    right = unit(np.cross([0.0, 1.0, 0.0], forward))
    up = np.cross(forward, right)
    half = length * math.tan(math.radians(viewing_angle))
    corners = [eye + length * forward + half * (sx * right + sy * up) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    starts = [eye] * 4 + corners
    ends = corners + corners[1:] + corners[:1]
    return np.array(starts), np.array(ends)


class Window:
    """A GGUI window: a background image (the image panels), a 3D scene, ImGui widgets.

    Each frame: :meth:`background`, draw into :attr:`scene` (after :meth:`begin_scene`),
    :meth:`end_scene`, widgets on :attr:`gui`, then :meth:`show`. ``frames`` > 0 closes it after that
    many frames, ``screenshot`` saves the last one as a PNG. Mouse: :meth:`drag` and :meth:`click`.
    """

    def __init__(self, title: str, res: tuple[int, int], frames: int = 0, screenshot: pathlib.Path | None = None):
        import taichi as ti

        from taichi_softras import runtime

        runtime.ensure_initialized()  # GGUI needs Taichi initialized; it works with any compute arch
        self.ti, self.res = ti, res
        self.window = ti.ui.Window(title, res, vsync=False, show_window=True)
        self.canvas, self.scene, self.gui = self.window.get_canvas(), self.window.get_scene(), self.window.get_gui()
        self.frames, self.screenshot, self.count = frames, screenshot, 0
        self.pressed: tuple[float, float] | None = None  # where the left button went down, while it is down
        self._last: tuple[float, float] | None = None
        self.clicked: tuple[float, float] | None = None  # set by poll(): a click (press, no drag) this frame
        self.keys: list[str] = []

    @property
    def running(self) -> bool:
        return self.window.running

    def cursor(self) -> tuple[float, float]:
        """The mouse position in window pixels (column, row from the top)."""
        x, y = self.window.get_cursor_pos()
        return x * self.res[0], (1 - y) * self.res[1]

    def poll(self, accept=lambda pixel: True) -> tuple[float, float]:
        """Read this frame's input: keys pressed (:attr:`keys`), a click (:attr:`clicked`) and the
        drag (returned as (dx, dy) pixels) of the left button; presses where ``accept(pixel)`` is
        False (e.g. on the widgets) are ignored."""
        self.keys, self.clicked = [], None
        ui = self.ti.ui
        for e in self.window.get_events(ui.PRESS):  # GGUI's events carry only their key: ask per type
            if e.key != ui.LMB:
                self.keys.append(e.key)
            elif accept(self.cursor()):
                self.pressed = self._last = self.cursor()
        for e in self.window.get_events(ui.RELEASE):
            if e.key == ui.LMB and self.pressed is not None:
                if math.dist(self.pressed, self.cursor()) < CLICK_SLOP:
                    self.clicked = self.pressed
                self.pressed = None
        if self.pressed is None or not self.window.is_pressed(self.ti.ui.LMB):
            return 0.0, 0.0
        now = self.cursor()
        dx, dy = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return (dx, dy) if math.dist(self.pressed, now) >= CLICK_SLOP else (0.0, 0.0)

    def background(self, image: np.ndarray) -> None:
        """Paint the window with a uint8 ``(H, W, 3)`` image (row 0 at the top; the window's size)."""
        self.canvas.set_image(np.ascontiguousarray(image.transpose(1, 0, 2)[:, ::-1]))  # GGUI: [x, y], y up

    def begin_scene(self, view: OrbitView) -> None:
        """Camera and lights for this frame: ambient plus a light at the eye."""
        self.scene.set_camera(view.camera())
        self.scene.ambient_light((0.35, 0.35, 0.35))
        self.scene.point_light(pos=tuple(view.basis()[0]), color=(0.75, 0.75, 0.75))

    def end_scene(self) -> None:
        self.canvas.scene(self.scene)

    def widgets(self, title: str, x: int, y: int, w: int, h: int):
        """An ImGui sub-window at pixels (x, y) of size (w, h); use as ``with win.widgets(...) as g:``."""
        return self.gui.sub_window(title, x / self.res[0], y / self.res[1], w / self.res[0], h / self.res[1])

    def show(self) -> None:
        self.count += 1
        last = self.frames and self.count >= self.frames
        if last and self.screenshot is not None:
            self.screenshot.parent.mkdir(parents=True, exist_ok=True)
            self.window.save_image(str(self.screenshot))  # before show(): GGUI saves the frame being drawn
        self.window.show()
        if last:
            self.window.running = False
