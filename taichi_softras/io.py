"""Wavefront OBJ (+ MTL + texture image) reading and writing, and voxel grids to OBJ.

OBJ files are read by :mod:`taichi_softras.obj_reader` (vertices, faces and per-corner UVs in the
file's order, any number of materials; polygons fan-triangulated (0, i, i + 1) as SoftRas does).
Textures follow SoftRas's loader: every face starts white, takes its material's ``Kd``, and faces
with ``vt`` coordinates whose material has a ``map_Kd`` image sample that image (see
:mod:`taichi_softras.textures`). One deliberate difference: a face without ``vt`` in a textured
material keeps the ``Kd`` colour (SoftRas samples the image at the file's last ``vt``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import torch
from ._lazy import trimesh
from PIL import Image

from . import conventions as C
from .geometry import normalize_vertices
from .ops.checks import check_choice
from .obj_reader import Material, parse_obj, read_mtl
from .textures import sample_surface_textures, texture_atlas

PathLike = Union[str, os.PathLike]


@dataclass
class ObjData:
    """Everything :func:`read_obj` finds in an OBJ file (numpy arrays, file order).

    vertices ``(N, 3)`` float32, faces ``(F, 3)`` int64, uvs ``(F, 3, 2)`` float32 per-corner UVs
    (zeros where a face has no ``vt``; None when no face has them), has_uv ``(F,)`` bool,
    vertex_colors ``(N, 3)`` float32 or None, face_material ``(F,)`` int64 index into
    material_names (-1: no ``usemtl``), materials: the MTL files' materials by name, mtl_missing:
    ``mtllib`` files that were not found."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    has_uv: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    face_material: np.ndarray | None = None
    material_names: list[str] = field(default_factory=list)
    materials: dict[str, Material] = field(default_factory=dict)
    mtl_missing: list[Path] = field(default_factory=list)


def _mtl_paths(obj_path: Path, entry: str) -> list[Path]:
    """The files an ``mtllib`` entry names: the whole entry if it is a file (names with spaces),
    else each word."""
    whole = obj_path.parent / entry.strip()
    return [whole] if whole.is_file() else [obj_path.parent / word for word in entry.split()]


def read_obj(filename_obj: PathLike) -> ObjData:
    """Read an OBJ file and its MTL materials (see :mod:`taichi_softras.obj_reader`). Raises
    ValueError naming the path (and the line) if it is missing, not text, or malformed."""
    path = Path(filename_obj)
    if not path.is_file():
        raise ValueError(f"filename_obj {str(path)!r} does not exist or is not a file")
    rec = parse_obj(path.read_bytes(), str(path))
    materials: dict[str, Material] = {}
    missing = []
    for entry in rec.mtllibs:
        for mtl in _mtl_paths(path, entry):
            if mtl.is_file():
                materials.update(read_mtl(mtl, obj_dir=path.parent))
            else:
                missing.append(mtl)
    has_uv = (rec.face_texcoords >= 0).all(1)
    uvs = None
    if has_uv.any():
        uvs = rec.texcoords[np.maximum(rec.face_texcoords, 0)].astype(np.float32)
        uvs[~has_uv] = 0
    colors = rec.vertex_colors.astype(np.float32) if rec.vertex_colors is not None else None
    return ObjData(
        rec.vertices.astype(np.float32), rec.faces, uvs, has_uv, colors, rec.face_material,
        rec.material_names, materials, missing,
    )


def load_image(path: PathLike) -> torch.Tensor:
    """RGB image as a float32 ``(H, W, 3)`` tensor in [0, 1] (grey is replicated, alpha dropped)."""
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def surface_textures(obj: ObjData, texture_res: int) -> torch.Tensor:
    """Per-face texels ``(F, R*R, 3)`` of an OBJ's materials (SoftRas's rules): ones, then each
    material's ``Kd`` colour, then, for its faces with ``vt``, its ``map_Kd`` image sampled at the
    face's UVs. A used material whose image is missing raises ValueError naming the image."""
    textures = torch.ones(len(obj.faces), texture_res**2, 3)
    images: dict[Path, torch.Tensor] = {}
    for index, name in enumerate(obj.material_names):
        material = obj.materials.get(name)
        faces = obj.face_material == index
        if material is None or not faces.any():
            continue
        if material.color is not None:
            textures[torch.from_numpy(faces)] = torch.tensor(material.color, dtype=torch.float32)
        textured = faces & obj.has_uv
        if material.image_path is not None and textured.any():
            if material.image_path not in images:
                if not material.image_path.is_file():
                    raise ValueError(f"material {name!r}: its map_Kd image {str(material.image_path)!r} does not exist")
                images[material.image_path] = load_image(material.image_path)
            uvs = torch.from_numpy(obj.uvs[textured])
            textures[torch.from_numpy(textured)] = sample_surface_textures(images[material.image_path], uvs, texture_res)
    return textures


def read_geometry(filename_obj: PathLike, normalization: bool, texture_type: str) -> tuple[ObjData, torch.Tensor]:
    """Parse an OBJ for ``load_obj``/``Mesh.from_obj``: the file's data and its vertices ``(N, 3)``
    (centred and scaled into [-1, 1]^3 with ``normalization``); ``texture_type`` is checked first."""
    check_choice(texture_type, "texture_type", C.TEXTURE_TYPES)
    obj = read_obj(filename_obj)
    vertices = torch.from_numpy(obj.vertices)
    return obj, normalize_vertices(vertices) if normalization else vertices


def load_obj(
    filename_obj: PathLike,
    normalization: bool = False,
    load_texture: bool = False,
    texture_res: int = 4,
    texture_type: str = "surface",
):
    """SoftRas's ``load_obj``: ``(vertices (N, 3), faces (F, 3))`` or, with ``load_texture``,
    ``(vertices, faces, textures)`` with textures ``(F, R*R, 3)`` (surface: from the MTL's Kd /
    map_Kd) or ``(N, 3)`` (vertex: the ``v x y z r g b`` colours). Tensors on the CPU: vertices and
    textures float32, faces int64. ``normalization`` centres the mesh and scales it into [-1, 1]^3."""
    obj, vertices = read_geometry(filename_obj, normalization, texture_type)
    faces = torch.from_numpy(obj.faces)
    if not load_texture:
        return vertices, faces
    return vertices, faces, obj_textures(obj, filename_obj, texture_res, texture_type)


def obj_textures(obj: ObjData, filename_obj: PathLike, texture_res: int, texture_type: str) -> torch.Tensor:
    """The textures ``load_obj(load_texture=True)`` returns: surface ``(F, R*R, 3)`` from the MTL,
    vertex ``(N, 3)`` from ``v x y z r g b``; ValueError naming the file if it has none."""
    if texture_type == "surface":
        if obj.mtl_missing:
            missing = ", ".join(repr(str(p)) for p in obj.mtl_missing)
            raise ValueError(f"filename_obj {str(filename_obj)!r}: its mtllib file {missing} does not exist (textures requested)")
        if not obj.materials:
            raise ValueError(f"filename_obj {str(filename_obj)!r} has no 'mtllib' materials to load textures from")
        try:
            return surface_textures(obj, texture_res)
        except ValueError as exc:
            raise ValueError(f"filename_obj {str(filename_obj)!r}: {exc}") from None
    if obj.vertex_colors is None:
        raise ValueError(f"filename_obj {str(filename_obj)!r} has no per-vertex colours ('v x y z r g b')")
    return torch.from_numpy(obj.vertex_colors)


def _check_2d(x: torch.Tensor, name: str, last: int) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[-1] != last:
        raise ValueError(f"{name} must have shape (*, {last}) (one mesh, unbatched), got {tuple(x.shape)}")
    return x.detach().cpu()


def save_obj(
    filename: PathLike,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    textures: torch.Tensor | None = None,
    texture_res: int = 16,
    texture_type: str = "surface",
) -> None:
    """Write one mesh as OBJ. vertices ``(N, 3)``, faces ``(F, 3)``; textures: surface ``(F, R*R, 3)``
    (written as ``<name>.png`` atlas of ``texture_res``-pixel tiles + ``<name>.mtl`` + per-corner UVs,
    which :func:`load_obj` reads back, exactly up to 8-bit rounding when ``texture_res >= 6 R + 1``)
    or vertex ``(N, 3)`` (written as ``v x y z r g b``)."""
    check_choice(texture_type, "texture_type", C.TEXTURE_TYPES)
    path = Path(filename)
    vertices = _check_2d(vertices, "vertices", 3)
    faces = _check_2d(faces, "faces", 3)
    if faces.is_floating_point() or faces.is_complex() or faces.dtype == torch.bool:
        raise TypeError(f"faces must be an integer tensor, got {faces.dtype}")
    faces = faces.long()
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= len(vertices)):
        raise ValueError(
            f"faces must index vertices 0..{len(vertices) - 1}, got range {int(faces.min())}..{int(faces.max())}"
        )
    if not bool(torch.isfinite(vertices).all()):
        raise ValueError("vertices contain NaN or inf: an OBJ file cannot hold them")
    if textures is not None and not bool(torch.isfinite(torch.as_tensor(textures)).all()):
        raise ValueError("textures contain NaN or inf")
    lines = [f"# {path.name}", ""]
    if textures is not None and texture_type == "surface":
        textures = torch.as_tensor(textures).detach().cpu()
        if textures.ndim != 3 or textures.shape[0] != len(faces) or textures.shape[-1] != 3:
            raise ValueError(f"surface textures must have shape (F={len(faces)}, R*R, 3), got {tuple(textures.shape)}")
        image, uvs = texture_atlas(textures.float(), texture_res)
        png, mtl = path.with_suffix(".png"), path.with_suffix(".mtl")
        Image.fromarray((image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(png)
        mtl.write_text(f"newmtl material_1\nmap_Kd {png.name}\n")
        lines += [f"mtllib {mtl.name}", ""]
        lines += [f"v {x:.8f} {y:.8f} {z:.8f}" for x, y, z in vertices.tolist()]
        lines += [f"vt {u:.8f} {v:.8f}" for u, v in uvs.reshape(-1, 2).tolist()]
        lines += ["usemtl material_1"]
        lines += [
            f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}" for i, (a, b, c) in enumerate(faces.tolist())
        ]
    elif textures is not None:
        colors = _check_2d(textures, "textures", 3)
        if len(colors) != len(vertices):
            raise ValueError(f"vertex textures must have shape (N={len(vertices)}, 3), got {tuple(colors.shape)}")
        lines += [f"v {x:.8f} {y:.8f} {z:.8f} {r:.8f} {g:.8f} {b:.8f}" for (x, y, z), (r, g, b) in zip(vertices.tolist(), colors.tolist())]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    else:
        lines += [f"v {x:.8f} {y:.8f} {z:.8f}" for x, y, z in vertices.tolist()]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    path.write_text("\n".join(lines) + "\n")


def save_voxel(filename: PathLike, voxel) -> None:
    """Write an occupancy grid ``(S, S, S)`` (nonzero = filled) as an OBJ of unit cubes: voxel
    ``[i, j, k]`` spans ``[i, i+1] x [j, j+1] x [k, k+1]`` (the frame of :func:`voxelization`)."""
    grid = np.asarray(torch.as_tensor(voxel).detach().cpu()) != 0
    if grid.ndim != 3:
        raise ValueError(f"voxel must have shape (S, S, S), got {grid.shape}")
    if not grid.any():
        raise ValueError("voxel is empty: nothing to save")
    boxes = trimesh.voxel.VoxelGrid(grid).as_boxes()  # cube centres at integer indices
    boxes.apply_translation((0.5, 0.5, 0.5))
    save_obj(filename, torch.as_tensor(boxes.vertices), torch.as_tensor(boxes.faces))
