"""Procedural meshes: primitives, a toy car, and an articulated chain with linear-blend skinning.

Every builder returns ``(vertices (V, 3) float32, faces (F, 3) int64)`` torch tensors with
counter-clockwise winding seen from outside (outward normals, positive signed volume). Geometry
comes from :mod:`trimesh.creation`; this module only places, combines and rigs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ._lazy import trimesh

MeshTensors = tuple[torch.Tensor, torch.Tensor]  # (vertices (V, 3) float32, faces (F, 3) int64)


def _to_torch(mesh: trimesh.Trimesh) -> MeshTensors:
    return (
        torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32),
        torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64),
    )


def _to_trimesh(vertices: torch.Tensor, faces: torch.Tensor) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices.detach().cpu().numpy(), faces.cpu().numpy(), process=False)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _vec3(name: str, value: Sequence[float]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,):
        raise ValueError(f"{name} must be 3 numbers, got shape {arr.shape}")
    return arr


def _axis_transform(axis: Sequence[float], center: Sequence[float]) -> np.ndarray:
    """4x4 transform taking trimesh's +z primitive axis to ``axis`` and the origin to ``center``."""
    axis = _vec3("axis", axis)
    if np.linalg.norm(axis) == 0:
        raise ValueError("axis must be a non-zero vector, got (0, 0, 0)")
    t = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], axis / np.linalg.norm(axis))
    t[:3, 3] = _vec3("center", center)
    return t


def box(extents: Sequence[float] = (1.0, 1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0)) -> MeshTensors:
    """Axis-aligned box with side lengths ``extents`` (3,) centred at ``center`` (3,): 8 vertices, 12 faces."""
    ext = _vec3("extents", extents)
    if not (ext > 0).all():
        raise ValueError(f"extents must all be > 0, got {tuple(ext)}")
    return _to_torch(trimesh.creation.box(extents=ext, transform=trimesh.transformations.translation_matrix(_vec3("center", center))))


def cylinder(
    radius: float = 0.5,
    height: float = 1.0,
    sections: int = 24,
    axis: Sequence[float] = (0.0, 0.0, 1.0),
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> MeshTensors:
    """Closed cylinder around ``axis`` through ``center``: ``2 * sections + 2`` vertices, ``4 * sections`` faces."""
    _positive("radius", radius)
    _positive("height", height)
    if sections < 3:
        raise ValueError(f"sections must be >= 3, got {sections}")
    m = trimesh.creation.cylinder(radius=radius, height=height, sections=sections, transform=_axis_transform(axis, center))
    return _to_torch(m)


def sphere(radius: float = 0.5, subdivisions: int = 2, center: Sequence[float] = (0.0, 0.0, 0.0)) -> MeshTensors:
    """Icosphere: ``10 * 4**s + 2`` vertices, ``20 * 4**s`` faces for ``s = subdivisions``."""
    _positive("radius", radius)
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    m.apply_translation(_vec3("center", center))
    return _to_torch(m)


def combine(parts: Sequence[MeshTensors]) -> MeshTensors:
    """Concatenate meshes into one (faces re-indexed); parts may overlap (silhouettes don't mind)."""
    if len(parts) == 0:
        raise ValueError("parts must hold at least one (vertices, faces) mesh, got none")
    vertices, faces, offset = [], [], 0
    for v, f in parts:
        vertices.append(v.to(torch.float32))
        faces.append(f.to(torch.int64) + offset)
        offset += v.shape[0]
    return torch.cat(vertices), torch.cat(faces)


def car(length: float = 0.9) -> MeshTensors:
    """A toy car (body, cabin, four wheels across z) along x, ``length`` long, centred near the origin.

    The default ``length=0.9`` fits the unit cube like SoftRas's demo car, the target of ``demos/deform.py``.
    """
    _positive("length", length)
    s = length / 0.9  # proportions below are for a 0.9-long car
    wheel_r, wheel_w = 0.11 * s, 0.08 * s
    parts = [
        box((0.90 * s, 0.16 * s, 0.40 * s), (0.0, -0.08 * s, 0.0)),  # body
        box((0.45 * s, 0.14 * s, 0.34 * s), (-0.05 * s, 0.07 * s, 0.0)),  # cabin
    ]
    for x in (-0.28 * s, 0.28 * s):
        for z in (-0.18 * s, 0.18 * s):
            parts.append(cylinder(wheel_r, wheel_w, 24, axis=(0, 0, 1), center=(x, -0.17 * s, z)))
    return combine(parts)


# --- rotations (used by the rig and the pose demos) -------------------------------------------


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors ``(..., 3)`` (angle = norm, radians) -> rotations ``(..., 3, 3)``.

    Differentiable everywhere, including at zero (Taylor terms below 1e-4 rad).
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis_angle must have shape (..., 3), got {tuple(axis_angle.shape)}")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)  # sin t / t
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)  # (1 - cos t) / t^2
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*axis_angle.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(..., 4)`` as (w, x, y, z), any non-zero norm (normalized here) -> rotations ``(..., 3, 3)``."""
    if q.shape[-1] != 4:
        raise ValueError(f"q must have shape (..., 4), got {tuple(q.shape)}")
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(*q.shape[:-1], 3, 3)


def rotation_angle_deg(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Geodesic angle in degrees between rotations ``(..., 3, 3)``: arccos((trace(r1^T r2) - 1) / 2)."""
    cos = ((r1.transpose(-1, -2) @ r2).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


# --- an articulated chain with linear-blend skinning -------------------------------------------


def _tube(radius: float, length: float, rings: int, sections: int) -> trimesh.Trimesh:
    """Vertices and faces of a capped tube along +y from y = 0 to ``length`` (outward CCW winding)."""
    ang = np.linspace(0, 2 * math.pi, sections, endpoint=False)
    ys = np.linspace(0, length, rings)
    # Ring vertices counter-clockwise seen from +y: (cos a, -sin a) in (x, z) since y = z x x.
    ring = np.stack([radius * np.cos(ang), np.zeros_like(ang), -radius * np.sin(ang)], 1)
    side = (ring[None] + ys[:, None, None] * np.array([0, 1, 0])).reshape(-1, 3)
    verts = np.concatenate([side, [[0, 0, 0], [0, length, 0]]])
    bottom, top = len(side), len(side) + 1
    faces = []
    for r in range(rings - 1):
        for s in range(sections):
            a, b = r * sections + s, r * sections + (s + 1) % sections
            c, d = a + sections, b + sections
            faces += [[a, b, d], [a, d, c]]
    last = (rings - 1) * sections
    for s in range(sections):
        s1 = (s + 1) % sections
        faces += [[bottom, s1, s], [top, last + s, last + s1]]
    return trimesh.Trimesh(verts, np.asarray(faces), process=False)


@dataclass(frozen=True)
class ChainRig:
    """A tube of ``n`` bones stacked along +y, bent at hinge joints by linear-blend skinning.

    Joint k sits at the base of bone k (joint 0 at the origin is the root) and turns bone k and every
    bone after it about ``hinge_axes[k]``. Attributes: ``vertices (V, 3)`` rest pose, ``faces (F, 3)``,
    ``weights (V, n)`` skinning weights (rows sum to 1), ``joints (n, 3)`` rest joint positions,
    ``hinge_axes (n, 3)`` unit axes.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    weights: torch.Tensor
    joints: torch.Tensor
    hinge_axes: torch.Tensor

    @property
    def num_joints(self) -> int:
        return self.joints.shape[0]

    def pose(self, angles: torch.Tensor) -> torch.Tensor:
        """Skinned vertices ``(B, V, 3)`` for hinge angles ``(B, n)`` or ``(n,)`` in radians (differentiable)."""
        if angles.shape[-1] != self.num_joints:
            raise ValueError(f"angles must have shape (B, {self.num_joints}), got {tuple(angles.shape)}")
        angles = angles.reshape(-1, self.num_joints)
        dtype, device = angles.dtype, angles.device
        axes = self.hinge_axes.to(dtype=dtype, device=device)
        joints = self.joints.to(dtype=dtype, device=device)
        local = axis_angle_to_matrix(angles[..., None] * axes)  # (B, n, 3, 3)
        # Bone k's world transform: x -> R_k (x - j_k) + t_k, composed root to tip.
        rot, trans = [], []
        for k in range(self.num_joints):
            if k == 0:
                r_k, t_k = local[:, 0], joints[0].expand(angles.shape[0], 3)
            else:
                # Joint k moves with bone k-1.
                t_k = (rot[-1] @ (joints[k] - joints[k - 1])[:, None])[..., 0] + trans[-1]
                r_k = rot[-1] @ local[:, k]
            rot.append(r_k)
            trans.append(t_k)
        rot = torch.stack(rot, 1)  # (B, n, 3, 3)
        trans = torch.stack(trans, 1)  # (B, n, 3)
        v = self.vertices.to(dtype=dtype, device=device)
        local_v = v[None, None] - joints[None, :, None]  # (1, n, V, 3)
        per_bone = torch.einsum("bnij,bnvj->bnvi", rot, local_v.expand(angles.shape[0], -1, -1, -1)) + trans[:, :, None]
        w = self.weights.to(dtype=dtype, device=device)
        return torch.einsum("vn,bnvi->bvi", w, per_bone)


def chain(
    num_bones: int = 3,
    bone_length: float = 0.3,
    radius: float = 0.06,
    hinge_axes: Sequence[Sequence[float]] | None = None,
    blend: float = 0.03,
    rings_per_bone: int = 8,
    sections: int = 16,
) -> ChainRig:
    """Build a :class:`ChainRig`: an arm/finger-like tube of ``num_bones`` bones along +y from y = -total/2.

    ``hinge_axes`` (num_bones, 3) defaults to alternating z and x hinges after a z root, so poses are
    out of plane and need several views. ``blend`` is the width (in length units) of the smooth
    weight transition at each inner joint.
    """
    if num_bones < 1:
        raise ValueError(f"num_bones must be >= 1, got {num_bones}")
    _positive("bone_length", bone_length)
    _positive("radius", radius)
    _positive("blend", blend)
    total = num_bones * bone_length
    tube = _tube(radius, total, num_bones * rings_per_bone + 1, sections)
    tube.apply_translation([0, -total / 2, 0])
    v, f = _to_torch(tube)
    joint_y = torch.arange(num_bones, dtype=torch.float32) * bone_length - total / 2
    joints = torch.stack([torch.zeros_like(joint_y), joint_y, torch.zeros_like(joint_y)], 1)
    # Bone k owns [j_k, j_{k+1}); sigmoid steps at the inner joints telescope to rows summing to 1.
    steps = torch.sigmoid((v[:, 1:2] - joint_y[None, 1:]) / blend)  # (V, n-1)
    upper = torch.cat([torch.ones_like(v[:, :1]), steps], 1)
    lower = torch.cat([steps, torch.zeros_like(v[:, :1])], 1)
    weights = upper - lower
    if hinge_axes is None:
        hinge_axes = [(0.0, 0.0, 1.0) if k % 2 == 0 else (1.0, 0.0, 0.0) for k in range(num_bones)]
    axes = torch.as_tensor(np.asarray(hinge_axes, dtype=np.float32))
    if axes.shape != (num_bones, 3):
        raise ValueError(f"hinge_axes must have shape ({num_bones}, 3), got {tuple(axes.shape)}")
    axes = axes / axes.norm(dim=1, keepdim=True)
    return ChainRig(v, f, weights, joints, axes)
