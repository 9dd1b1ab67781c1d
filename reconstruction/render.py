"""Rendering in the dataset's camera setup (look_at, viewing angle 15 deg, 64^2; see
:mod:`reconstruction.datasets`), shared by the generator and the training losses."""

from __future__ import annotations

import torch

from taichi_softras import Camera, lighting, soft_rasterize
from taichi_softras.geometry import face_normals, face_vertices

from . import datasets as D


def camera(view_ids: torch.Tensor, like: torch.Tensor) -> Camera:
    """The dataset's cameras of views ``(B,)`` in ``like``'s dtype and device."""
    eyes = D.view_eyes(view_ids).to(like)
    return Camera.look_at(eyes, viewing_angle=D.VIEWING_ANGLE, image_size=D.IMAGE_SIZE)


def project(vertices: torch.Tensor, view_ids: torch.Tensor) -> torch.Tensor:
    """World vertices ``(B, N, 3)`` -> NDC x, y and camera depth for the dataset views ``(B,)``."""
    return camera(view_ids, vertices).transform(vertices)


def render(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    view_ids: torch.Tensor,
    face_colours: torch.Tensor | None = None,
    *,
    image_size: int = D.IMAGE_SIZE,
    lit: bool = True,
    **raster_kwargs,
) -> torch.Tensor:
    """RGBA ``(B, 4, H, W)`` of meshes vertices ``(B, N, 3)``, faces ``(B, F, 3)`` seen from views
    ``(B,)``. ``face_colours (B, F, 3)`` are lit (ambient + directional, taichi_softras.conventions) unless
    ``lit=False``; without them the RGB is white and only the alpha (silhouette) matters."""
    world = face_vertices(vertices, faces)
    if face_colours is None:
        face_colours = torch.ones(world.shape[:2] + (3,), dtype=vertices.dtype, device=vertices.device)
    if lit:
        light = lighting.directional_lighting(
            lighting.ambient_lighting(torch.zeros_like(face_colours)), face_normals(world)
        )
        face_colours = face_colours * light
    textures = face_colours[:, :, None, :].contiguous()
    screen = face_vertices(project(vertices, view_ids), faces)
    return soft_rasterize(screen, textures, image_size, **raster_kwargs)
