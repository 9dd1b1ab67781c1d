"""Ragged batches: meshes with different vertex and face counts in one rasterizer call.

Meshes are padded to the largest vertex/face count; the per-mesh face counts go to
``soft_rasterize(..., num_faces=...)``, which renders the padding faces nowhere and gives them zero
gradient. Example::

    batch, num_faces = join_meshes([sr.Mesh.from_obj(a), sr.Mesh.from_obj(b)])
    screen = sr.perspective(sr.look_at(batch.vertices, eye))
    face_vertices = sr.functional.face_vertices(screen, batch.faces)
    rgba = sr.soft_rasterize(face_vertices, batch.face_textures, num_faces=num_faces)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .mesh import Mesh


def join_meshes(meshes: Sequence[Mesh]) -> tuple[Mesh, torch.Tensor]:
    """Pad single meshes (batch 1 each, same texture type and R) into one batched :class:`Mesh`.

    Returns the batch ``(B = len(meshes))`` and ``num_faces (B,)`` int64. Padding vertices sit at
    the origin; padding faces are ``(0, 0, 0)`` with zero textures.
    """
    if not meshes:
        raise ValueError("meshes must not be empty")
    kinds = {(m.texture_type, tuple(m.textures.shape[2:])) for m in meshes}
    if len(kinds) != 1:
        raise ValueError(f"meshes must share texture_type and texture shape, got {sorted(kinds)}")
    if any(m.batch_size != 1 for m in meshes):
        raise ValueError("join_meshes takes meshes of batch size 1")
    n_max = max(m.num_vertices for m in meshes)
    f_max = max(m.num_faces for m in meshes)
    surface = meshes[0].texture_type == "surface"
    verts, faces, texs = [], [], []
    for m in meshes:
        verts.append(F.pad(m.vertices[0], (0, 0, 0, n_max - m.num_vertices)))
        faces.append(F.pad(m.faces[0], (0, 0, 0, f_max - m.num_faces)))
        pad_rows = (f_max - m.num_faces) if surface else (n_max - m.num_vertices)
        tex = m.textures[0]
        texs.append(torch.cat([tex, tex.new_zeros(pad_rows, *tex.shape[1:])]))
    num_faces = torch.tensor([m.num_faces for m in meshes], dtype=torch.int64, device=meshes[0].device)
    batch = Mesh(torch.stack(verts), torch.stack(faces), torch.stack(texs), texture_type=meshes[0].texture_type)
    return batch, num_faces
