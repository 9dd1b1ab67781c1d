"""The gradients demo's model (demos/gradients.py is its front end): the mesh, target and camera
(:class:`GradientScene`, which computes every panel's data: image, loss map, per-vertex gradients,
their 2D projections and one vertex's per-pixel gradient heat-map by central differences) and the
interactive state both windows share (:class:`Session`: sigma, gamma, camera, picked vertex, run/stop).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from . import images, rendering
from taichi_softras import assets, runtime

MESH_COLOR = (0.7, 0.75, 0.9)
TARGET_COLOR = (0.9, 0.35, 0.25)
CAMERA_COLOR = (1.0, 0.85, 0.2)
# Central differences: in float64 (accurate to ~1e-8) where the backend has it, else float32 with a
# step large enough for float32 rounding (Vulkan's code generator has no 64-bit exp/log).
FD_STEPS = {torch.float64: 1e-5, torch.float32: 1e-3}  # world units
REACH = 1e-3  # vertices with |dL/dv| above REACH * max count as reached (arrows, colour scale floor)
SHARE_DECADES = 1e-4  # the heat-map's log colour scale spans this fraction of its maximum
ARROW_FRACTION = 0.2  # the longest 2D arrow, as a fraction of the image side


class GradientScene:
    """Mesh, target and camera; :meth:`analyse` computes every panel's data for the current state."""

    DISTANCE, VIEWING_ANGLE = 2.732, 15.0

    def __init__(self, args: argparse.Namespace):
        v, self.faces, _ = rendering.load_mesh(args.mesh, "--mesh")
        self.rest = v * args.scale
        if args.target is None:
            self.target_vertices, self.target_faces = assets.car()
        else:
            self.target_vertices, self.target_faces, _ = rendering.load_mesh(args.target, "--target")
        self.image_size = args.image_size
        self.colors = torch.tensor(MESH_COLOR).expand(1, self.faces.shape[0], 1, 3)
        self.lr = args.lr
        self.fd_dtype = torch.float64
        try:
            runtime.ensure_initialized()
            runtime.require_float64("the heat map's central differences", transcendentals=True)
        except TypeError:
            self.fd_dtype = torch.float32
        self.set_camera(args.elevation, args.azimuth)
        self.reset()

    @property
    def fd_precision(self) -> str:
        """'float64' or 'float32': the precision of the heat map's central differences."""
        return str(self.fd_dtype).removeprefix("torch.")

    def set_camera(self, elevation: float, azimuth: float) -> None:
        """Move the camera (look-at, distance DISTANCE) and render the target from there."""
        self.eye = rendering.eyes_from_angles(self.DISTANCE, elevation, azimuth)
        colors = torch.tensor(TARGET_COLOR).expand(1, self.target_faces.shape[0], 1, 3)
        with torch.no_grad():
            self.target = self._render(self.target_vertices, self.target_faces, colors, 1e-5, 1e-4)[0]

    def reset(self) -> None:
        self.vertices = self.rest.clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.vertices], lr=self.lr)

    def _render(self, vertices, faces, colors, sigma, gamma) -> torch.Tensor:
        return rendering.render(
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
        # Arrows: the descent direction -grad, the longest ARROW_FRACTION of the image side.
        width = 2 * math.tan(math.radians(self.VIEWING_ANGLE)) * self.DISTANCE
        step = ARROW_FRACTION * width / max(float(norms.max()), 1e-30)
        start, depth = self.to_pixels(v)
        end, _ = self.to_pixels(v - step * grad)
        heat, fd_grad = self.vertex_heatmap(vertex, sigma, gamma)
        cosine = float(torch.nn.functional.cosine_similarity(fd_grad, grad[vertex].double(), dim=0))
        return dict(
            image=image.detach(), loss_map=lmap.detach(), loss=float(loss.detach()), grad=grad, norms=norms,
            vertices=v.clone(), start=start, end=end, depth=depth, vertex=vertex, heat=heat, fd_cosine=cosine,
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
        """World ``(V, 3)`` -> pixel (column, row) ``(V, 2)`` and camera depth ``(V,)``."""
        return rendering.to_pixels(vertices, self.eye, self.VIEWING_ANGLE, self.image_size)

    def vertex_heatmap(self, vertex: int, sigma: float, gamma: float) -> tuple[np.ndarray, torch.Tensor]:
        """|d loss_pixel / d v| ``(H, W)`` for one vertex by central differences (float64 where the
        backend has it), and its sum over pixels ``(3,)`` (the autodiff gradient up to FD error)."""
        base, h = self.vertices.detach().to(self.fd_dtype), FD_STEPS[self.fd_dtype]
        parts = []
        for axis in range(3):
            diffs = []
            for sign in (1.0, -1.0):
                moved = base.clone()
                moved[vertex, axis] += sign * h
                with torch.no_grad():
                    diffs.append(self.loss_map(moved, sigma, gamma)[1].double())
            parts.append((diffs[0] - diffs[1]) / (2 * h) / diffs[0].numel())  # d(mean loss) share
        per_pixel = torch.stack(parts, -1)  # (H, W, 3)
        return per_pixel.norm(dim=-1).numpy(), per_pixel.sum((0, 1))


def reached(state: dict) -> np.ndarray:
    """``(V,)`` bool: the vertices whose gradient is above REACH times the largest."""
    return (state["norms"] > REACH * state["norms"].max()).numpy()


def gradient_colors(state: dict) -> np.ndarray:
    """uint8 ``(V, 3)``: |dL/dv| on a log viridis scale over [REACH * max, max] (arrows and 3D mesh)."""
    top = max(float(state["norms"].max()), 1e-30)
    return images.colormap(state["norms"].numpy(), "viridis", REACH * top, top, log=True)


class Session:
    """What both windows show and change: sigma, gamma, the camera, the picked vertex, run/stop,
    and the analysis of the current state (recomputed only when one of those changed)."""

    def __init__(self, scene: GradientScene, args: argparse.Namespace):
        self.scene = scene
        self.log_sigma, self.log_gamma = math.log10(args.sigma), math.log10(args.gamma)
        self.elevation, self.azimuth = args.elevation, args.azimuth
        self.vertex, self.show_target, self.running, self.steps = args.vertex, False, False, 0
        self._camera = (self.elevation, self.azimuth)
        self._version = 0  # counts changes of the vertices (steps, resets)
        self._state, self._key = None, None

    @property
    def sigma(self) -> float:
        return 10**self.log_sigma

    @property
    def gamma(self) -> float:
        return 10**self.log_gamma

    def step(self) -> None:
        self.scene.step(self.sigma, self.gamma)
        self.steps += 1
        self._version += 1

    def reset(self) -> None:
        self.scene.reset()
        self.steps, self.running = 0, False
        self._version += 1

    def key(self, key: str) -> bool:
        """Apply a key press (g, space, r, t); False for escape (quit)."""
        if key == "g":
            self.step()
        elif key == " ":
            self.running = not self.running
        elif key == "r":
            self.reset()
        elif key == "t":
            self.show_target = not self.show_target
        return key != "Escape"

    def state(self) -> dict:
        """The analysis of the current state; takes a step first while running."""
        if self.running:
            self.step()
        if (self.elevation, self.azimuth) != self._camera:
            self.scene.set_camera(self.elevation, self.azimuth)
            self._camera = (self.elevation, self.azimuth)
        key = (self.log_sigma, self.log_gamma, self.vertex, self._version, self._camera)
        if key != self._key:
            self._state, self._key = self.scene.analyse(self.sigma, self.gamma, self.vertex), key
        return self._state

    def pick_in_image(self, col: float, row: float, radius: float = 3.0) -> None:
        """Pick the vertex nearest the eye among those within ``radius`` image pixels of (col, row)."""
        s = self._state
        near = np.hypot(*(s["start"] - [col, row]).T) < radius
        if near.any():
            self.vertex = int(np.flatnonzero(near)[s["depth"][near].argmin()])

    def status(self) -> str:
        s = self._state
        return (f"loss {s['loss']:.5f}  step {self.steps}  vertex {s['vertex']} |dL/dv| {float(s['norms'][s['vertex']]):.2e}  "
                f"FD/autodiff cosine {s['fd_cosine']:.4f} ({self.scene.fd_precision} FD)")
