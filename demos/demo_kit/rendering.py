"""Meshes in, images out: OBJ loading with one-line errors, look-at eyes, one SoftRenderer call and
the projection of world points to pixels (for arrows, markers and picking)."""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from .cli import DemoError, check_file

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

    t = [torch.as_tensor(a, dtype=torch.float32).reshape(-1) for a in (distance, elevation, azimuth)]
    return get_points_from_angles(*t)


def to_pixels(points: torch.Tensor, eye: torch.Tensor, viewing_angle: float, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """World ``(N, 3)`` seen from look_at ``eye (1, 3)`` -> pixel (column, row) ``(N, 2)`` (pixel
    centres at integers, row 0 at the top) and camera depth ``(N,)``, by the renderer's conventions."""
    from taichi_softras import cameras

    ndc = cameras.perspective(cameras.look_at(points[None].float(), eye), viewing_angle)[0]
    s = image_size
    col = (ndc[:, 0] * s + s - 1) / 2
    row = (s - 1 - ndc[:, 1] * s) / 2
    return torch.stack([col, row], 1).numpy(), ndc[:, 2].numpy()
