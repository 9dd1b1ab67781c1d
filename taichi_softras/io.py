"""Wavefront OBJ (+ MTL + texture image) reading and writing, and voxel grids to OBJ.

Vertices are read by trimesh with ``process=False, maintain_order=True`` so the file's vertex order
(and watertightness) is kept. Faces, per-corner UVs (``vt`` and the ``f v/vt`` indices) and
per-vertex colours (``v x y z r g b``) are read from the file's lines directly: trimesh merges or
splits vertices along UV seams and triangulates polygons with another corner order; here polygons are
fan-triangulated as SoftRas does, (0, i, i+1).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import torch
import trimesh
from PIL import Image

from . import conventions as C
from .geometry import normalize_vertices
from .textures import sample_surface_textures, texture_atlas

PathLike = Union[str, os.PathLike]


@dataclass
class Material:
    """One MTL material: diffuse colour ``Kd`` and/or the path of its ``map_Kd`` image."""

    color: tuple[float, float, float] | None = None
    image_path: Path | None = None


@dataclass
class ObjData:
    """Everything :func:`read_obj` finds in an OBJ file (numpy arrays, file order).

    vertices ``(N, 3)`` float32, faces ``(F, 3)`` int64, uvs ``(F, 3, 2)`` per-corner UVs or None,
    vertex_colors ``(N, 3)`` or None, face_materials: per face its material name ('' if none),
    materials: the MTL's materials by name."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    face_materials: list[str] = field(default_factory=list)
    materials: dict[str, Material] = field(default_factory=dict)


def _malformed(path: Path, why: str) -> ValueError:
    return ValueError(f"filename_obj {str(path)!r} is not a valid OBJ file: {why}")


def _index(token: str, count: int, path: Path, kind: str) -> int:
    """1-based (or negative, relative) OBJ index -> 0-based."""
    try:
        i = int(token)
    except ValueError:
        raise _malformed(path, f"bad {kind} index {token!r}") from None
    i = i - 1 if i > 0 else count + i
    if not 0 <= i < count:
        raise _malformed(path, f"{kind} index {token} out of range (have {count})")
    return i


def read_mtl(path: PathLike) -> dict[str, Material]:
    """Materials of an MTL file: ``Kd`` colours and ``map_Kd`` image paths (resolved next to the file)."""
    path = Path(path)
    materials: dict[str, Material] = {}
    current = None
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl" and len(parts) > 1:
            current = materials.setdefault(parts[1], Material())
        elif current is not None and parts[0] == "Kd" and len(parts) >= 4:
            current.color = tuple(float(c) for c in parts[1:4])
        elif current is not None and parts[0] == "map_Kd" and len(parts) > 1:
            current.image_path = path.parent / parts[-1]  # options may precede the file name
    return materials


def read_obj(filename_obj: PathLike) -> ObjData:
    """Read an OBJ file: trimesh geometry in file order, plus per-corner UVs, vertex colours and
    materials parsed from the file. Raises ValueError naming the path if it is missing or malformed."""
    path = Path(filename_obj)
    if not path.is_file():
        raise ValueError(f"filename_obj {str(path)!r} does not exist or is not a file")
    try:
        with warnings.catch_warnings():  # trimesh's own UV handling warns on some files; its UVs are unused
            warnings.simplefilter("ignore", RuntimeWarning)
            mesh = trimesh.load(path, file_type="obj", process=False, maintain_order=True, force="mesh", skip_materials=True)
    except Exception as exc:  # trimesh raises IndexError/ValueError/... on broken files
        raise _malformed(path, f"{type(exc).__name__}: {exc}") from exc
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    if len(vertices) == 0 or len(mesh.faces) == 0:
        raise _malformed(path, "no vertices or no faces")

    lines = path.read_text(errors="replace").splitlines()
    v_lines = [ln.split() for ln in lines if ln.startswith("v ")]
    vt = [ln.split()[1:3] for ln in lines if ln.startswith("vt ")]
    try:
        vt_arr = np.asarray(vt, dtype=np.float32).reshape(-1, 2)
    except ValueError:
        raise _malformed(path, "bad 'vt' line") from None
    corner_v, corner_vt, face_materials, materials = [], [], [], {}
    material = ""
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "usemtl" and len(parts) > 1:
            material = parts[1]
        elif parts[0] == "mtllib" and len(parts) > 1 and (path.parent / parts[1]).is_file():
            materials.update(read_mtl(path.parent / parts[1]))
        elif parts[0] == "f":
            refs = [p.split("/") for p in parts[1:]]
            vs = [_index(r[0], len(v_lines), path, "vertex") for r in refs]
            ts = [_index(r[1], len(vt_arr), path, "texture") if len(r) > 1 and r[1] else -1 for r in refs]
            for i in range(1, len(refs) - 1):
                corner_v.append((vs[0], vs[i], vs[i + 1]))
                corner_vt.append((ts[0], ts[i], ts[i + 1]))
                face_materials.append(material)
    if len(v_lines) != len(vertices):
        raise _malformed(path, f"trimesh read {len(vertices)} vertices but the file has {len(v_lines)} 'v' lines")
    faces = np.asarray(corner_v, dtype=np.int64).reshape(-1, 3)

    corner_vt = np.asarray(corner_vt, dtype=np.int64)
    uvs = vt_arr[corner_vt] if len(vt_arr) and (corner_vt >= 0).all() else None
    vertex_colors = None
    if v_lines and all(len(p) >= 7 for p in v_lines):
        vertex_colors = np.asarray([p[4:7] for p in v_lines], dtype=np.float32)
    return ObjData(vertices, faces, uvs, vertex_colors, face_materials, materials)


def load_image(path: PathLike) -> torch.Tensor:
    """RGB image as a float32 ``(H, W, 3)`` tensor in [0, 1] (grey is replicated, alpha dropped)."""
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def surface_textures(obj: ObjData, texture_res: int) -> torch.Tensor:
    """Per-face texels ``(F, R*R, 3)`` of an OBJ's materials (SoftRas's rules): ones, then each
    material's ``Kd`` colour, then its ``map_Kd`` image sampled at the face's UVs."""
    nf = len(obj.faces)
    textures = torch.ones(nf, texture_res**2, 3)
    names = np.asarray(obj.face_materials)
    for name, material in obj.materials.items():
        mask = torch.from_numpy(names == name)
        if not bool(mask.any()):
            continue
        if material.color is not None:
            textures[mask] = torch.tensor(material.color, dtype=torch.float32)
        if material.image_path is not None:
            if obj.uvs is None:
                raise ValueError(f"material {name!r} has a map_Kd image but the faces have no 'vt' coordinates")
            image = load_image(material.image_path)
            textures[mask] = sample_surface_textures(image, torch.from_numpy(obj.uvs[names == name]), texture_res)
    return textures


def read_geometry(filename_obj: PathLike, normalization: bool, texture_type: str) -> tuple[ObjData, torch.Tensor]:
    """Parse an OBJ for ``load_obj``/``Mesh.from_obj``: the file's data and its vertices ``(N, 3)``
    (centred and scaled into [-1, 1]^3 with ``normalization``); ``texture_type`` is checked first."""
    if texture_type not in C.TEXTURE_TYPES:
        raise ValueError(f"texture_type must be one of {C.TEXTURE_TYPES}, got {texture_type!r}")
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
        if not obj.materials:
            raise ValueError(f"filename_obj {str(filename_obj)!r} has no readable 'mtllib' to load textures from")
        return surface_textures(obj, texture_res)
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
    if texture_type not in C.TEXTURE_TYPES:
        raise ValueError(f"texture_type must be one of {C.TEXTURE_TYPES}, got {texture_type!r}")
    path = Path(filename)
    vertices = _check_2d(vertices, "vertices", 3)
    faces = _check_2d(faces, "faces", 3).long()
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
