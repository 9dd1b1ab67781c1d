"""``Mesh``: batched vertices, faces and textures with SoftRas 1.0's interface.

Unlike SoftRas, rendering never modifies a mesh (SoftRas's lighting and camera write lit textures and
projected vertices into it, hence its ``reset_()``; here ``reset_()`` only undoes the caller's own
assignments). Tensors stay on the device they come on (numpy input goes to the CPU).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import conventions as C
from .geometry import face_normals, face_vertices, vertex_normals
from .io import PathLike, load_image, obj_textures, read_geometry, save_obj
from .ops.checks import check_choice, check_face_indices


def _as_tensor(x, name: str, floating: bool) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
        x = x.float() if floating else x.long()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not floating and x.is_floating_point():
        raise TypeError(f"{name} must be an integer tensor, got {x.dtype}")
    return x


class Mesh:
    """A batch of triangle meshes sharing a face count.

    vertices ``(N, 3)`` or ``(B, N, 3)``; faces ``(F, 3)`` or ``(B, F, 3)`` (integer); textures:
    surface ``(F, R*R, 3)`` / ``(B, F, R*R, 3)`` or vertex ``(N, 3)`` / ``(B, N, 3)``, default white.
    A batch of 1 in faces or textures is broadcast to the vertices' batch."""

    def __init__(self, vertices, faces, textures=None, texture_res: int = 1, texture_type: str = "surface"):
        check_choice(texture_type, "texture_type", C.TEXTURE_TYPES)
        vertices = _as_tensor(vertices, "vertices", floating=True)
        faces = _as_tensor(faces, "faces", floating=False).to(vertices.device)
        if vertices.ndim == 2:
            vertices = vertices[None]
        if faces.ndim == 2:
            faces = faces[None]
        if vertices.ndim != 3 or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must have shape (N, 3) or (B, N, 3), got {tuple(vertices.shape)}")
        if faces.ndim != 3 or faces.shape[-1] != 3:
            raise ValueError(f"faces must have shape (F, 3) or (B, F, 3), got {tuple(faces.shape)}")
        check_face_indices(faces, vertices.shape[1])
        b = vertices.shape[0]
        faces = self._broadcast(faces, b, "faces")
        self.texture_type = texture_type
        if textures is None:
            textures = self._default_textures(vertices, faces.shape[1], texture_res)
        else:
            textures = _as_tensor(textures, "textures", floating=True).to(vertices.device)
            if textures.ndim == (3 if texture_type == "surface" else 2):
                textures = textures[None]
            textures = self._broadcast(textures, b, "textures")
            self._check_textures(textures, vertices.shape[1], faces.shape[1])
        self._vertices, self._faces, self._textures = vertices, faces, textures
        self._origin = (vertices, faces, textures)

    @staticmethod
    def _broadcast(x: torch.Tensor, b: int, name: str) -> torch.Tensor:
        if x.shape[0] == b:
            return x
        if x.shape[0] == 1:
            return x.expand(b, *x.shape[1:])
        raise ValueError(f"{name} has batch {x.shape[0]} but vertices have batch {b}")

    def _default_textures(self, vertices: torch.Tensor, num_faces: int, texture_res: int) -> torch.Tensor:
        b, n = vertices.shape[:2]
        if self.texture_type == "surface":
            if texture_res < 1:
                raise ValueError(f"texture_res must be >= 1, got {texture_res}")
            return torch.ones(b, num_faces, texture_res**2, 3, dtype=vertices.dtype, device=vertices.device)
        return torch.ones(b, n, 3, dtype=vertices.dtype, device=vertices.device)

    def _check_textures(self, textures: torch.Tensor, num_vertices: int, num_faces: int) -> None:
        if self.texture_type == "surface":
            ok = textures.ndim == 4 and textures.shape[1] == num_faces and textures.shape[-1] == 3
            r = math.isqrt(textures.shape[2]) if textures.ndim == 4 else 0
            if not ok or r * r != textures.shape[2]:
                raise ValueError(f"surface textures must have shape (B, F={num_faces}, R*R, 3), got {tuple(textures.shape)}")
        elif textures.ndim != 3 or textures.shape[1] != num_vertices or textures.shape[-1] != 3:
            raise ValueError(f"vertex textures must have shape (B, N={num_vertices}, 3), got {tuple(textures.shape)}")

    # --- data -------------------------------------------------------------------------------
    @property
    def vertices(self) -> torch.Tensor:
        """``(B, N, 3)``."""
        return self._vertices

    @vertices.setter
    def vertices(self, vertices: torch.Tensor) -> None:
        if vertices.ndim != 3 or vertices.shape[0] != self.batch_size or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must have shape (B={self.batch_size}, N, 3), got {tuple(vertices.shape)}")
        self._vertices = vertices

    @property
    def faces(self) -> torch.Tensor:
        """``(B, F, 3)`` integer."""
        return self._faces

    @faces.setter
    def faces(self, faces: torch.Tensor) -> None:
        if faces.ndim != 3 or faces.shape[0] != self.batch_size or faces.shape[-1] != 3:
            raise ValueError(f"faces must have shape (B={self.batch_size}, F, 3), got {tuple(faces.shape)}")
        check_face_indices(faces, self.num_vertices)
        self._faces = faces

    @property
    def textures(self) -> torch.Tensor:
        """Surface ``(B, F, R*R, 3)`` or vertex ``(B, N, 3)``."""
        return self._textures

    @textures.setter
    def textures(self, textures: torch.Tensor) -> None:
        self._check_textures(textures, self.num_vertices, self.num_faces)
        self._textures = textures

    @property
    def batch_size(self) -> int:
        return self._vertices.shape[0]

    @property
    def num_vertices(self) -> int:
        return self._vertices.shape[1]

    @property
    def num_faces(self) -> int:
        return self._faces.shape[1]

    @property
    def device(self) -> torch.device:
        return self._vertices.device

    @property
    def texture_res(self) -> int:
        """R of surface textures (1 for vertex textures)."""
        return math.isqrt(self._textures.shape[2]) if self.texture_type == "surface" else 1

    # --- derived quantities (recomputed on access, so they follow the current tensors) -------
    @property
    def face_vertices(self) -> torch.Tensor:
        """``(B, F, 3, 3)``."""
        return face_vertices(self._vertices, self._faces)

    @property
    def surface_normals(self) -> torch.Tensor:
        """Unit face normals ``(B, F, 3)``."""
        return face_normals(self.face_vertices)

    @property
    def vertex_normals(self) -> torch.Tensor:
        """Area-weighted unit vertex normals ``(B, N, 3)``."""
        return vertex_normals(self._vertices, self._faces)

    @property
    def face_textures(self) -> torch.Tensor:
        """What the rasterizer takes: surface ``(B, F, R*R, 3)`` or vertex colours per corner ``(B, F, 3, 3)``."""
        if self.texture_type == "surface":
            return self._textures
        return face_vertices(self._textures, self._faces)

    def fill_back_(self) -> "Mesh":
        """SoftRas's in-place doubling of the faces with reversed winding (so back faces render as
        front faces of the copy). Surface textures are doubled along; vertex textures need nothing.
        The renderers do not need it: they pass ``fill_back`` to the rasterizer instead."""
        self._faces = torch.cat((self._faces, self._faces[:, :, [2, 1, 0]]), dim=1)
        if self.texture_type == "surface":
            self._textures = torch.cat((self._textures, self._textures), dim=1)
        return self

    def reset_(self) -> "Mesh":
        """Restore the vertices, faces and textures given at construction."""
        self._vertices, self._faces, self._textures = self._origin
        return self

    def to(self, device) -> "Mesh":
        """A copy on ``device``."""
        return Mesh(self._vertices.to(device), self._faces.to(device), self._textures.to(device), texture_type=self.texture_type)

    def __repr__(self) -> str:
        return f"Mesh(batch_size={self.batch_size}, num_vertices={self.num_vertices}, num_faces={self.num_faces}, texture_type={self.texture_type!r}, device={self.device})"

    # --- files ------------------------------------------------------------------------------
    @classmethod
    def from_obj(
        cls,
        filename_obj: PathLike,
        normalization: bool = False,
        load_texture: bool = False,
        texture_res: int = 1,
        texture_type: str = "surface",
    ) -> "Mesh":
        """Load an OBJ (SoftRas's defaults). With ``load_texture``, surface textures are sampled from
        the MTL's ``Kd``/``map_Kd`` into ``texture_res``-per-side texels and vertex textures come from
        ``v x y z r g b``. The per-corner UVs ``(F, 3, 2)`` (zeros for faces without ``vt``) and the
        image of the first textured material the faces use ``(H, W, 3)`` stay available as
        ``mesh.uvs`` / ``mesh.texture_image`` (None when absent)."""
        obj, vertices = read_geometry(filename_obj, normalization, texture_type)
        textures = obj_textures(obj, filename_obj, texture_res, texture_type) if load_texture else None
        mesh = cls(vertices, torch.from_numpy(obj.faces), textures, texture_res, texture_type)
        mesh.uvs = torch.from_numpy(obj.uvs) if obj.uvs is not None else None
        used = [obj.materials.get(name) for name in obj.material_names]
        images = [m.image_path for m in used if m is not None and m.image_path is not None and m.image_path.is_file()]
        mesh.texture_image = load_image(images[0]) if load_texture and images else None
        return mesh

    def save_obj(self, filename_obj: PathLike, save_texture: bool = False, texture_res_out: int = 16) -> None:
        """Write this (batch-1) mesh; with ``save_texture`` also ``.mtl`` + ``.png`` (surface
        textures, ``texture_res_out``-pixel tiles per face) or per-vertex colours (vertex textures)."""
        if self.batch_size != 1:
            raise ValueError(f"save_obj needs a mesh of batch size 1, got {self.batch_size}")
        save_obj(
            filename_obj,
            self._vertices[0],
            self._faces[0],
            textures=self._textures[0] if save_texture else None,
            texture_res=texture_res_out,
            texture_type=self.texture_type,
        )

    def voxelize(self, voxel_size: int = 32) -> torch.Tensor:
        """SoftRas's ``Mesh.voxelize``: occupancy ``(B, S, S, S)`` int32 of the vertices mapped by
        ``v * S / (S - 1) + 0.5`` into the unit cube (see :func:`taichi_softras.voxelization.voxelization`)."""
        from .voxelization import voxelization

        return voxelization(self.face_vertices * (voxel_size / (voxel_size - 1)) + 0.5, voxel_size, False)
