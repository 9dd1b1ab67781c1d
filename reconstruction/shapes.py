"""Procedural, part-based shapes for the 13 NMR classes (boxes, cylinders, ellipsoids with random
proportions), each with an exact inside test (for voxels) and a triangle mesh (for renders).

Shapes are normalized like ShapeNet's: centred bounding box, longest side 0.94 (fits the NMR voxel
frame, which covers about [-0.516, 0.516]^3). y is up, the front faces -z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from taichi_softras import shapes as prim

#: Longest bounding-box side after normalization.
EXTENT = 0.94


@dataclass
class Part:
    """An axis-aligned primitive: 'box' (half sizes), 'cyl' (radius, half length, axis 0/1/2) or
    'ell' (semi-axes); ``centre`` (3,), ``size`` (3,): half extents along x, y, z."""

    kind: str
    centre: np.ndarray
    size: np.ndarray
    colour: np.ndarray

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Boolean ``(...,)`` for points ``(..., 3)``."""
        q = (p - self.centre) / self.size
        if self.kind == "box":
            return np.all(np.abs(q) <= 1.0, axis=-1)
        if self.kind == "ell":
            return (q**2).sum(-1) <= 1.0
        radial = [i for i in range(3) if i != self.axis]
        return ((q[..., radial] ** 2).sum(-1) <= 1.0) & (np.abs(q[..., self.axis]) <= 1.0)

    @property
    def axis(self) -> int:
        # cylinders: the axis is the one whose half size differs from the two equal (radius) ones
        s = self.size
        for i in range(3):
            j, k = [a for a in range(3) if a != i]
            if np.isclose(s[j], s[k]):
                return i
        raise ValueError(f"cylinder needs two equal radii, got half sizes {s}")

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Triangle mesh of the part: vertices ``(V, 3)`` float32, faces ``(F, 3)`` int64."""
        if self.kind == "box":
            return prim.box(extents=2 * self.size, center=self.centre)
        if self.kind == "ell":
            v, f = prim.sphere(radius=1.0, subdivisions=2)
            return v * torch.as_tensor(self.size, dtype=torch.float32) + torch.as_tensor(self.centre, dtype=torch.float32), f
        radius = self.size[[i for i in range(3) if i != self.axis][0]]
        return prim.cylinder(radius, 2 * self.size[self.axis], sections=16, axis=np.eye(3)[self.axis], center=self.centre)


def box(c, h, col) -> Part:
    return Part("box", np.asarray(c, float), np.asarray(h, float), col)


def ell(c, r, col) -> Part:
    return Part("ell", np.asarray(c, float), np.asarray(r, float), col)


def cyl(c, radius, half_len, axis, col) -> Part:
    s = np.full(3, float(radius))
    s[axis] = half_len
    return Part("cyl", np.asarray(c, float), s, col)


def _legs(rng, x, z, y_top, y_bot, t, col, round_legs=False):
    hy = (y_top - y_bot) / 2
    cy = (y_top + y_bot) / 2
    out = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * x, cy, sz * z)
            out.append(cyl(c, t, hy, 1, col) if round_legs else box(c, (t, hy, t), col))
    return out


def _airplane(rng, cols):
    L, r = rng.uniform(0.8, 1.0), rng.uniform(0.05, 0.09)
    span, chord, wz = rng.uniform(0.6, 1.0), rng.uniform(0.12, 0.25), rng.uniform(-0.1, 0.1)
    parts = [cyl((0, 0, 0), r, L / 2, 2, cols[0]),
             box((0, -r * 0.3, wz), (span / 2, 0.012, chord / 2), cols[1]),
             box((0, r + 0.08, L / 2 - 0.06), (0.012, 0.08, 0.05), cols[1]),
             box((0, 0, L / 2 - 0.05), (span * 0.2, 0.01, 0.045), cols[1])]
    if rng.random() < 0.5:  # engines under the wings
        for sx in (-1, 1):
            parts.append(cyl((sx * span * 0.25, -r - 0.02, wz - 0.02), 0.03, 0.07, 2, cols[2]))
    return parts


def _bench(rng, cols):
    w, d, h = rng.uniform(0.8, 1.0), rng.uniform(0.2, 0.35), rng.uniform(0.3, 0.45)
    t = rng.uniform(0.02, 0.05)
    parts = [box((0, h, 0), (w / 2, 0.025, d / 2), cols[0])]
    parts += _legs(rng, w / 2 - t, d / 2 - t, h, 0, t, cols[1])
    if rng.random() < 0.6:
        parts.append(box((0, h + 0.15, d / 2 - 0.02), (w / 2, 0.12, 0.02), cols[0]))
    return parts


def _cabinet(rng, cols):
    w, h, d = rng.uniform(0.5, 1.0), rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.6)
    parts = [box((0, h / 2, 0), (w / 2, h / 2, d / 2), cols[0]),
             box((0, h + 0.015, 0), (w / 2 + 0.02, 0.015, d / 2 + 0.02), cols[1])]
    if rng.random() < 0.5:
        parts.append(box((0, h / 2, -d / 2 - 0.01), (w / 2 - 0.04, h / 2 - 0.04, 0.012), cols[1]))
    return parts


def _car(rng, cols):
    L, w, hb = rng.uniform(0.85, 1.0), rng.uniform(0.38, 0.48), rng.uniform(0.12, 0.2)
    rw = rng.uniform(0.07, 0.1)
    hc, lc = rng.uniform(0.08, 0.15), rng.uniform(0.35, 0.6)
    parts = [box((0, rw + hb / 2, 0), (w / 2, hb / 2, L / 2), cols[0]),
             box((0, rw + hb + hc / 2, rng.uniform(-0.08, 0.08)), (w / 2 - 0.03, hc / 2, lc * L / 2), cols[1])]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(cyl((sx * (w / 2 - 0.02), rw, sz * (L / 2 - 0.15)), rw, 0.04, 0, cols[2]))
    return parts


def _chair(rng, cols):
    w, d, h = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.35, 0.5)
    bh, t = rng.uniform(0.35, 0.6), rng.uniform(0.02, 0.04)
    parts = [box((0, h, 0), (w / 2, 0.03, d / 2), cols[0]),
             box((0, h + bh / 2, d / 2 - 0.02), (w / 2, bh / 2, 0.025), cols[1])]
    parts += _legs(rng, w / 2 - t, d / 2 - t, h, 0, t, cols[2], round_legs=rng.random() < 0.5)
    if rng.random() < 0.4:  # armrests
        for sx in (-1, 1):
            parts.append(box((sx * w / 2, h + 0.12, 0), (0.02, 0.02, d / 2), cols[1]))
    return parts


def _display(rng, cols):
    w, h = rng.uniform(0.7, 1.0), rng.uniform(0.4, 0.65)
    neck, depth = rng.uniform(0.08, 0.2), rng.uniform(0.02, 0.06)
    return [box((0, neck + h / 2, 0), (w / 2, h / 2, depth), cols[0]),
            box((0, neck / 2, 0.02), (0.03, neck / 2, 0.02), cols[1]),
            box((0, 0.01, 0.02), (rng.uniform(0.1, 0.25), 0.01, rng.uniform(0.08, 0.15)), cols[1])]


def _lamp(rng, cols):
    H, rb = rng.uniform(0.7, 1.0), rng.uniform(0.1, 0.2)
    rs, hs = rng.uniform(0.12, 0.25), rng.uniform(0.1, 0.2)
    shade = (cyl if rng.random() < 0.5 else (lambda c, r, hl, a, col: ell(c, (r, hl, r), col)))
    return [cyl((0, 0.02, 0), rb, 0.02, 1, cols[0]),
            cyl((0, H / 2, 0), 0.015, H / 2, 1, cols[1]),
            shade((0, H - hs / 2, 0), rs, hs / 2, 1, cols[2])]


def _loudspeaker(rng, cols):
    w, h, d = rng.uniform(0.3, 0.6), rng.uniform(0.6, 1.0), rng.uniform(0.3, 0.5)
    parts = [box((0, h / 2, 0), (w / 2, h / 2, d / 2), cols[0])]
    for y in (h * 0.3, h * 0.7):
        r = min(w, h) * rng.uniform(0.2, 0.35)
        parts.append(cyl((0, y, -d / 2), r, 0.02, 2, cols[1]))
    return parts


def _rifle(rng, cols):
    L, t = rng.uniform(0.85, 1.0), rng.uniform(0.015, 0.03)
    ls, hs = rng.uniform(0.25, 0.4), rng.uniform(0.08, 0.14)
    parts = [cyl((0, 0.05, -L * 0.15), t, L * 0.35, 2, cols[0]),
             box((0, 0.04, L * 0.1), (0.03, 0.05, L * 0.2), cols[1]),
             box((0, 0.02 - hs / 3, L / 2 - ls / 2), (0.025, hs / 2, ls / 2), cols[1])]
    if rng.random() < 0.7:
        parts.append(box((0, -0.06, L * 0.05), (0.02, rng.uniform(0.05, 0.1), 0.03), cols[2]))
    return parts


def _sofa(rng, cols):
    w, d, h = rng.uniform(0.8, 1.0), rng.uniform(0.35, 0.5), rng.uniform(0.15, 0.25)
    bh, aw, ah = rng.uniform(0.2, 0.35), rng.uniform(0.05, 0.12), rng.uniform(0.08, 0.18)
    return [box((0, h / 2, 0), (w / 2, h / 2, d / 2), cols[0]),
            box((0, h + bh / 2, d / 2 - 0.06), (w / 2, bh / 2, 0.06), cols[1]),
            box((-w / 2 + aw / 2, h + ah / 2, 0), (aw / 2, ah / 2, d / 2), cols[1]),
            box((w / 2 - aw / 2, h + ah / 2, 0), (aw / 2, ah / 2, d / 2), cols[1])]


def _table(rng, cols):
    w, d, h = rng.uniform(0.6, 1.0), rng.uniform(0.4, 0.8), rng.uniform(0.35, 0.6)
    t = rng.uniform(0.02, 0.05)
    parts = [box((0, h, 0), (w / 2, 0.025, d / 2), cols[0])]
    if rng.random() < 0.7:
        parts += _legs(rng, w / 2 - t, d / 2 - t, h, 0, t, cols[1])
    else:  # pedestal table
        parts += [cyl((0, h / 2, 0), 0.04, h / 2, 1, cols[1]), cyl((0, 0.015, 0), min(w, d) * 0.3, 0.015, 1, cols[1])]
    return parts


def _telephone(rng, cols):
    w, h, d = rng.uniform(0.35, 0.55), rng.uniform(0.7, 1.0), rng.uniform(0.05, 0.1)
    return [box((0, 0, 0), (w / 2, h / 2, d / 2), cols[0]),
            box((0, 0.05, -d / 2 - 0.005), (w / 2 - 0.03, h / 2 - 0.1, 0.005), cols[1])]


def _watercraft(rng, cols):
    L, w, hh = rng.uniform(0.85, 1.0), rng.uniform(0.2, 0.35), rng.uniform(0.1, 0.18)
    parts = [ell((0, 0, 0), (w / 2, hh, L / 2), cols[0]),
             box((0, hh * 0.3, 0), (w / 2 * 0.85, hh * 0.3, L / 2 * 0.8), cols[0])]
    if rng.random() < 0.5:  # sail boat
        mh = rng.uniform(0.4, 0.6)
        parts += [cyl((0, hh * 0.5 + mh / 2, 0), 0.012, mh / 2, 1, cols[1]),
                  box((0, hh * 0.5 + mh / 2, 0.1), (0.008, mh * 0.4, 0.1), cols[2])]
    else:  # cabin
        parts.append(box((0, hh * 0.6 + 0.06, rng.uniform(-0.1, 0.1)), (w / 2 * 0.6, 0.06, L * 0.15), cols[1]))
    return parts


_BUILDERS = {
    "02691156": _airplane, "02828884": _bench, "02933112": _cabinet, "02958343": _car,
    "03001627": _chair, "03211117": _display, "03636649": _lamp, "03691459": _loudspeaker,
    "04090263": _rifle, "04256520": _sofa, "04379243": _table, "04401088": _telephone,
    "04530566": _watercraft,
}


@dataclass
class Shape:
    """A union of parts, normalized (see module docstring)."""

    parts: list[Part]

    def contains(self, p: np.ndarray) -> np.ndarray:
        inside = np.zeros(p.shape[:-1], bool)
        for part in self.parts:
            inside |= part.contains(p)
        return inside

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Concatenated part meshes: vertices ``(V, 3)`` float32, faces ``(F, 3)`` int64, face
        colours ``(F, 3)`` float32 in [0, 1]."""
        meshes = [p.mesh() for p in self.parts]
        cols = torch.cat([torch.as_tensor(p.colour, dtype=torch.float32).expand(len(f), 3) for p, (_, f) in zip(self.parts, meshes)])
        v, f = prim.combine(meshes)
        return v, f, cols


def random_shape(class_id: str, rng: np.random.Generator) -> Shape:
    """One random shape of a class (``class_id`` among the 13 NMR ids)."""
    if class_id not in _BUILDERS:
        raise ValueError(f"class_id: expected one of {sorted(_BUILDERS)}, got {class_id!r}")
    cols = rng.uniform(0.15, 0.95, size=(3, 3))
    parts = _BUILDERS[class_id](rng, cols)
    lo = np.min([p.centre - p.size for p in parts], axis=0)
    hi = np.max([p.centre + p.size for p in parts], axis=0)
    scale, mid = EXTENT / (hi - lo).max(), (lo + hi) / 2
    return Shape([Part(p.kind, (p.centre - mid) * scale, p.size * scale, p.colour) for p in parts])
