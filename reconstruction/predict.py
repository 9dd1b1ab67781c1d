"""Reconstruct one image into a mesh.

    python -m reconstruction.predict --run RUN_DIR --image view.png --out mesh.obj

The image is an RGBA PNG of one object on a transparent background, seen like the dataset's views
(resized to 64^2). Mesh model: the deformed sphere (with face colours for the full model);
implicit model: marching cubes of the occupancy at the voxel frame's cell corners.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from taichi_softras.io import save_obj

from . import datasets as D
from .cli import Parser, UserError, run
from .evaluate import corner_points, field_meshes, load_run
from .models import MeshModel
from .voxels import SIZE


def load_image(path: str | pathlib.Path) -> torch.Tensor:
    """RGBA PNG -> float ``(1, 4, 64, 64)`` in [0, 1]; a clear error for unreadable or non-RGBA files."""
    path = pathlib.Path(path)
    try:
        img = Image.open(path)
        img.load()
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"image {path}: cannot read it as an image ({exc})") from exc
    if img.mode != "RGBA":
        raise ValueError(f"image {path}: expected an RGBA image (object on a transparent background), got mode {img.mode}")
    img = img.resize((D.IMAGE_SIZE, D.IMAGE_SIZE), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


@torch.no_grad()
def reconstruct(model: torch.nn.Module, image: torch.Tensor):
    """(vertices ``(N, 3)``, faces ``(F, 3)``, face colours ``(F, 3)`` or None) from ``(1, 4, 64, 64)``."""
    if isinstance(model, MeshModel):
        vertices, faces, colours = model(image)
        return vertices[0], faces[0], None if colours is None else colours[0]
    field = model(image, corner_points()[None]).reshape(1, SIZE + 1, SIZE + 1, SIZE + 1)
    vertices, faces = field_meshes(field)[0]
    return vertices, faces, None


def _main(argv: list[str]) -> None:
    p = Parser(prog="reconstruction.predict", description=__doc__)
    p.add_argument("--run", required=True, help="training run directory (config.json + checkpoint.pt)")
    p.add_argument("--image", required=True, help="RGBA PNG: one object on a transparent background")
    p.add_argument("--out", required=True, help="output .obj")
    args = p.parse_args(argv)
    image = load_image(args.image)
    _, model = load_run(args.run)
    vertices, faces, colours = reconstruct(model, image)
    if len(faces) == 0:
        raise UserError(f"--image {args.image}: the implicit model's occupancy never reaches 0.5 in the voxel frame, "
                        f"so its marching-cubes mesh is empty; nothing written to {args.out}")
    save_obj(args.out, vertices, faces, None if colours is None else colours[:, None, :], texture_res=1)
    print(f"wrote {args.out}: {len(vertices)} vertices, {len(faces)} faces")



def main(argv: list[str] | None = None) -> None:
    run("reconstruction.predict", _main, argv)


if __name__ == "__main__":
    main()
