"""Demo assets built from the primitives of :mod:`taichi_softras.shapes`: a toy car (the target of
``demos/deform.py``) and an articulated chain with linear-blend skinning (``demos/pose_nonrigid.py``).

Meshes are ``(vertices (V, 3) float32, faces (F, 3) int64)`` torch tensors, wound outward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ._lazy import trimesh
from .rotations import axis_angle_to_matrix
from .shapes import MeshTensors, _positive, _to_torch, box, combine, cylinder


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
