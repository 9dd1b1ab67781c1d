"""Procedural, part-based shapes for the 13 NMR classes, each with an exact inside test (for voxels)
and a triangle mesh (for renders).

Every class varies the way its ShapeNet counterpart does, so that a class's mean shape is a poor
prediction: parts that appear or not (armrests, stretchers, shelves, engines, scopes, cabins),
counts that change (legs, wheels, seats, shelves, drivers, funnels), several sub-types per class
(sedan / pickup / van, floor / desk / multi-arm lamps, bookcase / sideboard / wardrobe, ...),
proportions drawn over wide ranges, thin and concave structures (slats, open shelves, frames,
truck beds, hollow hulls) and varied colours (per-part random colours, one- to four-colour
schemes). Parts are boxes, cylinders and ellipsoids, optionally rotated (swept wings, reclined
backs, lamp arms).

Shapes are normalized like ShapeNet's: centred bounding box, longest side 0.94 (fits the NMR voxel
frame, which covers about [-0.516, 0.516]^3). y is up, the front faces -z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from taichi_softras import shapes as prim

#: Bounding-box diagonal after normalization (ShapeNet's), and the cap on its longest side.
DIAGONAL = 1.0
EXTENT = 0.94


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    """3x3 rotation (local -> world) by angles in degrees about x, then y, then z."""
    a, b, c = np.radians([rx, ry, rz])
    mx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    my = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    mz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return mz @ my @ mx


@dataclass
class Part:
    """A primitive: 'box' (half sizes), 'cyl' (radius, half length, axis 0/1/2) or 'ell' (semi-axes);
    ``centre`` (3,), ``size`` (3,): half extents along its local x, y, z; ``rot`` (3, 3) local ->
    world rotation (None: axis-aligned)."""

    kind: str
    centre: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    rot: np.ndarray | None = field(default=None)

    def local(self, p: np.ndarray) -> np.ndarray:
        d = p - self.centre
        return d if self.rot is None else d @ self.rot

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Boolean ``(...,)`` for points ``(..., 3)``."""
        q = self.local(p) / self.size
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

    def half_extent(self) -> np.ndarray:
        """World half extents of the part's bounding box."""
        return self.size if self.rot is None else np.abs(self.rot) @ self.size

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Triangle mesh of the part: vertices ``(V, 3)`` float32, faces ``(F, 3)`` int64."""
        zero = np.zeros(3)
        if self.kind == "box":
            v, f = prim.box(extents=2 * self.size, center=zero)
        elif self.kind == "ell":
            v, f = prim.sphere(radius=1.0, subdivisions=2)
            v = v * torch.as_tensor(self.size, dtype=torch.float32)
        else:
            radius = self.size[[i for i in range(3) if i != self.axis][0]]
            v, f = prim.cylinder(radius, 2 * self.size[self.axis], sections=16, axis=np.eye(3)[self.axis], center=zero)
        if self.rot is not None:
            v = v @ torch.as_tensor(self.rot.T, dtype=torch.float32)
        return v + torch.as_tensor(self.centre, dtype=torch.float32), f


def box(c, h, col, rot=None) -> Part:
    return Part("box", np.asarray(c, float), np.asarray(h, float), col, rot)


def ell(c, r, col, rot=None) -> Part:
    return Part("ell", np.asarray(c, float), np.asarray(r, float), col, rot)


def cyl(c, radius, half_len, axis, col, rot=None) -> Part:
    s = np.full(3, float(radius))
    s[axis] = half_len
    return Part("cyl", np.asarray(c, float), s, col, rot)


def bar(a, b, t, col, round_=False) -> Part:
    """A thin box (or cylinder) of half thickness ``t`` from point ``a`` to point ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    length = float(np.linalg.norm(d))
    u = d / max(length, 1e-9)
    # rotation taking local y to u
    y = np.array([0.0, 1.0, 0.0])
    v = np.cross(y, u)
    s, c = np.linalg.norm(v), float(y @ u)
    if s < 1e-9:
        rot = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        k = v / s
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.eye(3) + s * kx + (1 - c) * kx @ kx
    mid = (a + b) / 2
    if round_:
        return cyl(mid, t, length / 2, 1, col, rot)
    return box(mid, (t, length / 2, t), col, rot)


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _legs(rng, xs, zs, y_top, y_bot, t, col, round_legs=False, splay=0.0):
    """Legs at every (x, z) of ``xs`` x ``zs`` from y_top down to y_bot, splayed outwards by ``splay``."""
    out = []
    for x in xs:
        for z in zs:
            top = (x, y_top, z)
            bot = (x + np.sign(x) * splay, y_bot, z + np.sign(z) * splay)
            out.append(bar(top, bot, t, col, round_legs))
    return out


def _four(w, d, t):
    return (-w / 2 + t, w / 2 - t), (-d / 2 + t, d / 2 - t)


def _airplane(rng, cols):
    L, r = _u(rng, 0.6, 1.0), _u(rng, 0.03, 0.1)
    span = L * _u(rng, 0.5, 1.6)
    chord, sweep = _u(rng, 0.08, 0.3), _u(rng, 0, 40)
    wz, wy = _u(rng, -0.25, 0.1) * L, r * _u(rng, -0.8, 0.8)
    parts = [cyl((0, 0, 0), r, L / 2, 2, cols[0]),
             ell((0, 0, -L / 2), (r, r, r * _u(rng, 1, 3)), cols[0])]
    for sx in (-1, 1):  # swept wing halves
        parts.append(box((sx * span / 4, wy, wz + span / 4 * np.tan(np.radians(sweep))), (span / 4, 0.01, chord / 2),
                         cols[1], rotation(ry=-sx * sweep, rz=sx * _u(rng, -8, 8))))
    tail = rng.integers(3)
    tz, th = L / 2 - 0.06, _u(rng, 0.06, 0.2)
    hs = span * _u(rng, 0.15, 0.35)
    if tail == 0:  # conventional
        parts += [box((0, r + th / 2, tz), (0.01, th / 2, 0.06), cols[1]), box((0, 0, tz), (hs, 0.01, 0.05), cols[1])]
    elif tail == 1:  # T-tail
        parts += [box((0, r + th / 2, tz), (0.01, th / 2, 0.06), cols[1]), box((0, r + th, tz), (hs, 0.01, 0.05), cols[1])]
    else:  # twin fins
        parts.append(box((0, 0, tz), (hs, 0.01, 0.05), cols[1]))
        for sx in (-1, 1):
            parts.append(box((sx * hs, th / 2, tz), (0.01, th / 2, 0.05), cols[1]))
    n_eng = rng.choice([0, 2, 4])
    for k in range(n_eng // 2):
        for sx in (-1, 1):
            x = sx * span * (0.15 + 0.15 * k)
            parts.append(cyl((x, wy - 0.04, wz - 0.05), _u(rng, 0.02, 0.04), _u(rng, 0.05, 0.1), 2, cols[2]))
    if rng.random() < 0.3:  # canards
        parts.append(box((0, 0, -L * 0.35), (span * 0.12, 0.008, 0.03), cols[1]))
    return parts


def _bench(rng, cols):
    w, d, h = _u(rng, 0.6, 1.0), _u(rng, 0.15, 0.45), _u(rng, 0.2, 0.5)
    t = _u(rng, 0.015, 0.04)
    parts = []
    if rng.random() < 0.5:  # slatted seat
        n = int(rng.integers(2, 6))
        gap = d / (2 * n)
        for k in range(n):
            z = -d / 2 + gap + 2 * gap * k
            parts.append(box((0, h, z), (w / 2, 0.015, gap * 0.7), cols[0]))
    else:
        parts.append(box((0, h, 0), (w / 2, _u(rng, 0.01, 0.04), d / 2), cols[0]))
    base = rng.integers(3)
    if base == 0:  # legs, 4 or 6
        xs = (-w / 2 + t, w / 2 - t) if rng.random() < 0.6 else (-w / 2 + t, 0.0, w / 2 - t)
        parts += _legs(rng, xs, (-d / 2 + t, d / 2 - t), h, 0, t, cols[1], rng.random() < 0.4, _u(rng, 0, 0.05))
    elif base == 1:  # two slab sides
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - 0.02), h / 2, 0), (0.02, h / 2, d / 2 * _u(rng, 0.6, 1)), cols[1]))
    else:  # trestles: an A of two bars at each end
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(bar((sx * (w / 2 - 0.05), h, 0), (sx * (w / 2 - 0.05), 0, sz * d / 2), t, cols[1]))
    if rng.random() < 0.5:  # stretcher
        parts.append(box((0, h * _u(rng, 0.2, 0.5), 0), (w / 2 - t, t, t), cols[1]))
    if rng.random() < 0.6:  # backrest (solid or two rails), maybe reclined
        bh = _u(rng, 0.1, 0.4)
        rot = rotation(rx=-_u(rng, 0, 20))
        if rng.random() < 0.5:
            parts.append(box((0, h + bh / 2, d / 2), (w / 2, bh / 2, 0.015), cols[0], rot))
        else:
            for y in (h + bh * 0.4, h + bh):
                parts.append(box((0, y, d / 2), (w / 2, 0.02, 0.015), cols[0], rot))
            for sx in (-1, 1):
                parts.append(box((sx * (w / 2 - 0.02), h + bh / 2, d / 2), (0.015, bh / 2, 0.015), cols[1]))
    if rng.random() < 0.35:  # armrests
        for sx in (-1, 1):
            parts += [box((sx * w / 2, h + 0.12, 0), (0.02, 0.015, d / 2), cols[1]),
                      box((sx * w / 2, h + 0.06, -d / 2 + 0.02), (0.015, 0.06, 0.015), cols[1])]
    return parts


def _cabinet(rng, cols):
    w, h, d = _u(rng, 0.3, 1.0), _u(rng, 0.3, 1.0), _u(rng, 0.2, 0.6)
    wall = _u(rng, 0.015, 0.04)
    y0 = _u(rng, 0.05, 0.2) if rng.random() < 0.4 else 0.0  # on legs
    parts = []
    kind = rng.integers(3)
    if kind == 0:  # open shelves: frame + back + shelves
        parts += [box((sx * (w / 2 - wall), y0 + h / 2, 0), (wall, h / 2, d / 2), cols[0]) for sx in (-1, 1)]
        parts += [box((0, y0 + wall, 0), (w / 2, wall, d / 2), cols[0]), box((0, y0 + h - wall, 0), (w / 2, wall, d / 2), cols[0])]
        if rng.random() < 0.7:
            parts.append(box((0, y0 + h / 2, d / 2 - wall / 2), (w / 2, h / 2, wall / 2), cols[1]))
        n = int(rng.integers(0, 5))
        for k in range(n):
            parts.append(box((0, y0 + h * (k + 1) / (n + 1), 0), (w / 2, wall * 0.7, d / 2), cols[1]))
        if rng.random() < 0.3:  # a vertical divider
            parts.append(box((_u(rng, -w / 4, w / 4), y0 + h / 2, 0), (wall * 0.7, h / 2, d / 2), cols[1]))
    else:  # closed body with doors or drawers, maybe a recessed plinth or an open niche
        parts.append(box((0, y0 + h / 2, 0), (w / 2, h / 2, d / 2), cols[0]))
        if kind == 1:
            n = int(rng.integers(1, 4))
            for k in range(n):
                parts.append(box((-w / 2 + w * (k + 0.5) / n, y0 + h / 2, -d / 2 - 0.006),
                                 (w / (2 * n) - 0.015, h / 2 - 0.03, 0.006), cols[1]))
        else:
            n = int(rng.integers(2, 6))
            for k in range(n):
                parts.append(box((0, y0 + h * (k + 0.5) / n, -d / 2 - 0.015), (0.06, 0.012, 0.015), cols[1]))
    if rng.random() < 0.5:  # top overhang
        parts.append(box((0, y0 + h + 0.015, 0), (w / 2 + 0.03, 0.015, d / 2 + 0.03), cols[2]))
    if y0 > 0:
        parts += _legs(rng, *_four(w, d, 0.03), y0, 0, 0.015, cols[2], rng.random() < 0.5)
    return parts


def _car(rng, cols):
    L, w = _u(rng, 0.6, 1.0), _u(rng, 0.28, 0.6)
    rw = _u(rng, 0.05, 0.14)
    hb = _u(rng, 0.06, 0.28)
    kind = rng.choice(6, p=[0.25, 0.15, 0.15, 0.15, 0.15, 0.15])  # sedan, pickup, van, sports, formula, bus
    y0 = rw * _u(rng, 0.4, 1.6)
    top = y0 + hb
    wheel_x = w / 2 - 0.01
    if kind == 4:  # open-wheel racer: a narrow nose-to-tail body, wheels outside, wings
        bw = w * _u(rng, 0.2, 0.4)
        y0, hb = rw * _u(rng, 0.5, 0.9), _u(rng, 0.04, 0.1)
        top = y0 + hb
        parts = [box((0, y0 + hb / 2, 0), (bw / 2, hb / 2, L / 2), cols[0]),
                 ell((0, top, _u(rng, -0.05, 0.1)), (bw / 2, _u(rng, 0.03, 0.08), L * 0.12), cols[1]),
                 box((0, y0 + 0.01, -L / 2 + 0.03), (w / 2, 0.01, 0.04), cols[2])]
        if rng.random() < 0.8:
            wy = top + _u(rng, 0.03, 0.12)
            parts += [box((0, wy, L / 2 - 0.04), (w / 2 * 0.8, 0.01, 0.04), cols[2]),
                      box((0, (top + wy) / 2, L / 2 - 0.04), (0.01, (wy - top) / 2, 0.02), cols[2])]
        wheel_x = w / 2
    elif kind == 5:  # bus: one tall long box with a row of windows
        hb = _u(rng, 0.25, 0.5)
        parts = [box((0, y0 + hb / 2, 0), (w / 2, hb / 2, L / 2), cols[0]),
                 box((-w / 2 - 0.005, y0 + hb * 0.7, 0), (0.005, hb * 0.12, L / 2 * 0.85), cols[1]),
                 box((w / 2 + 0.005, y0 + hb * 0.7, 0), (0.005, hb * 0.12, L / 2 * 0.85), cols[1])]
    else:
        parts = [box((0, y0 + hb / 2, 0), (w / 2, hb / 2, L / 2), cols[0])]
    if kind == 0:
        hc, lc, zc = _u(rng, 0.07, 0.18), _u(rng, 0.3, 0.6) * L, _u(rng, -0.1, 0.1)
        parts.append(box((0, top + hc / 2, zc), (w / 2 - 0.03, hc / 2, lc / 2), cols[1]))
    elif kind == 1:  # pickup: a cab and an open bed (concave)
        hc, lc = _u(rng, 0.1, 0.2), _u(rng, 0.2, 0.35) * L
        parts.append(box((0, top + hc / 2, -L / 2 + 0.1 + lc / 2), (w / 2 - 0.02, hc / 2, lc / 2), cols[1]))
        bed_h = _u(rng, 0.05, 0.1)
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - 0.012), top + bed_h / 2, L / 4), (0.012, bed_h / 2, L / 4), cols[0]))
        parts.append(box((0, top + bed_h / 2, L / 2 - 0.012), (w / 2, bed_h / 2, 0.012), cols[0]))
    elif kind == 2:  # van: a tall cabin over most of the body
        hc = _u(rng, 0.15, 0.35)
        parts.append(box((0, top + hc / 2, 0.05 * L), (w / 2 - 0.01, hc / 2, L * _u(rng, 0.35, 0.45)), cols[1]))
    elif kind == 3:  # sports car: low, a short canopy and maybe a spoiler
        hc = _u(rng, 0.04, 0.08)
        parts.append(ell((0, top, _u(rng, -0.1, 0.05)), (w / 2 - 0.04, hc, L * 0.22), cols[1]))
        if rng.random() < 0.6:
            parts += [box((0, top + 0.07, L / 2 - 0.04), (w / 2, 0.008, 0.04), cols[2])]
            parts += [box((sx * w / 3, top + 0.035, L / 2 - 0.04), (0.01, 0.035, 0.01), cols[2]) for sx in (-1, 1)]
    axles = 3 if (kind in (1, 5) and rng.random() < 0.4) else 2
    for k in range(axles):
        z = -L / 2 + 0.15 + (L - 0.3) * k / (axles - 1)
        for sx in (-1, 1):
            parts.append(cyl((sx * wheel_x, rw, z), rw, _u(rng, 0.025, 0.05), 0, cols[2]))
    if rng.random() < 0.3 and kind in (0, 2):  # roof rack
        parts.append(box((0, top + 0.2 if kind == 2 else top + 0.19, 0), (w / 2 - 0.05, 0.01, L * 0.2), cols[2]))
    return parts


def _chair(rng, cols):
    w, d, h = _u(rng, 0.35, 0.7), _u(rng, 0.35, 0.65), _u(rng, 0.25, 0.55)
    bh, t = _u(rng, 0.15, 0.7), _u(rng, 0.012, 0.04)
    st = _u(rng, 0.015, 0.06)
    parts = [box((0, h, 0), (w / 2, st, d / 2), cols[0])]
    recline = rotation(rx=-_u(rng, 0, 25))
    back = rng.integers(3)
    by = h + bh / 2
    if back == 0:  # solid
        parts.append(box((0, by, d / 2 - 0.02), (w / 2 * _u(rng, 0.7, 1), bh / 2, 0.02), cols[1], recline))
    elif back == 1:  # vertical slats between two posts and a top rail
        n = int(rng.integers(2, 6))
        parts += [box((sx * (w / 2 - t), by, d / 2 - t), (t, bh / 2, t), cols[1], recline) for sx in (-1, 1)]
        parts.append(box((0, h + bh, d / 2 - t), (w / 2, 0.03, t), cols[1], recline))
        for k in range(n):
            parts.append(box((-w / 2 + w * (k + 1) / (n + 1), by, d / 2 - t), (0.012, bh / 2, 0.01), cols[1], recline))
    else:  # frame with horizontal rails
        parts += [box((sx * (w / 2 - t), by, d / 2 - t), (t, bh / 2, t), cols[1], recline) for sx in (-1, 1)]
        for k in range(int(rng.integers(1, 4))):
            parts.append(box((0, h + bh * (1 - 0.3 * k), d / 2 - t), (w / 2, 0.025, t), cols[1], recline))
    base = rng.integers(3)
    if base == 0:  # 4 legs, maybe splayed
        parts += _legs(rng, *_four(w, d, t), h, 0, t, cols[2], rng.random() < 0.5, _u(rng, 0, 0.06))
        if rng.random() < 0.4:  # stretchers
            for sz in (-1, 1):
                parts.append(box((0, h * 0.3, sz * (d / 2 - t)), (w / 2 - t, t * 0.7, t * 0.7), cols[2]))
    elif base == 1:  # swivel: a column and a star of 4 or 5 feet
        parts.append(cyl((0, h / 2, 0), _u(rng, 0.02, 0.04), h / 2, 1, cols[2]))
        n, r = int(rng.integers(4, 6)), max(w, d) * _u(rng, 0.4, 0.6)
        for k in range(n):
            a = 2 * np.pi * k / n
            parts.append(bar((0, 0.03, 0), (r * np.cos(a), 0.015, r * np.sin(a)), 0.018, cols[2]))
    else:  # sled: two runners and uprights
        for sx in (-1, 1):
            x = sx * (w / 2 - t)
            parts += [box((x, t, 0), (t, t, d / 2), cols[2]),
                      bar((x, 0, -d / 2 + t), (x, h, -d / 2 + t), t, cols[2]),
                      bar((x, 0, d / 2 - t), (x, h, d / 2 - t), t, cols[2])]
    if rng.random() < 0.4:  # armrests
        ah = _u(rng, 0.08, 0.2)
        for sx in (-1, 1):
            parts += [box((sx * w / 2, h + ah, 0), (0.025, 0.015, d / 2 * 0.9), cols[1]),
                      box((sx * w / 2, h + ah / 2, -d / 2 + 0.05), (0.015, ah / 2, 0.015), cols[1])]
    return parts


def _display(rng, cols):
    w, h = _u(rng, 0.4, 1.0), _u(rng, 0.25, 0.8)
    depth = _u(rng, 0.01, 0.06)
    stand = rng.integers(3)
    neck = _u(rng, 0.05, 0.3) if stand != 2 else 0.0
    tilt = rotation(rx=_u(rng, -12, 12))
    parts = [box((0, neck + h / 2, 0), (w / 2, h / 2, depth), cols[0], tilt)]
    if rng.random() < 0.5:  # a housing bulge at the back (old monitors)
        parts.append(box((0, neck + h / 2, depth + _u(rng, 0.02, 0.15)), (w / 2 * _u(rng, 0.4, 0.8), h / 2 * _u(rng, 0.4, 0.8),
                                                                     _u(rng, 0.02, 0.15)), cols[1], tilt))
    if stand == 0:  # neck + base plate
        parts += [box((0, neck / 2 + 0.01, 0.03), (_u(rng, 0.015, 0.06), neck / 2, 0.015), cols[1]),
                  box((0, 0.01, 0.03), (_u(rng, 0.08, 0.3), 0.01, _u(rng, 0.06, 0.16)), cols[1])]
    elif stand == 1:  # two feet
        for sx in (-1, 1):
            x = sx * w * _u(rng, 0.25, 0.45)
            parts += [bar((x, neck + 0.02, 0.0), (x, 0, 0.0), 0.012, cols[1]), box((x, 0.008, 0), (0.02, 0.008, 0.09), cols[1])]
    else:  # an easel leg at the back
        parts.append(bar((0, h * 0.6, depth), (0, -h * 0.4, h * 0.5), 0.015, cols[1]))
    return parts


def _lamp(rng, cols):
    kind = rng.integers(3)
    rb = _u(rng, 0.05, 0.2)
    parts = [cyl((0, 0.015, 0), rb, 0.015, 1, cols[0])] if rng.random() < 0.7 else \
        [box((0, 0.02, 0), (rb, 0.02, rb * _u(rng, 0.5, 1)), cols[0])]

    def shade(c, r, hl):
        k = rng.integers(3)
        if k == 0:
            return [cyl(c, r, hl, 1, cols[2])]
        if k == 1:
            return [ell(c, (r, hl, r), cols[2])]
        return [cyl((c[0], c[1] - hl / 2, c[2]), r, hl / 2, 1, cols[2]), cyl((c[0], c[1] + hl / 2, c[2]), r * 0.6, hl / 2, 1, cols[2])]

    t = _u(rng, 0.008, 0.02)
    if kind == 0:  # floor / table lamp: a pole and a shade
        H = _u(rng, 0.3, 1.0)
        rs, hs = _u(rng, 0.06, 0.25), _u(rng, 0.06, 0.2)
        parts.append(cyl((0, H / 2, 0), t, H / 2, 1, cols[1]))
        parts += shade((0, H - hs / 3, 0), rs, hs / 2)
    elif kind == 1:  # desk lamp: two angled arm segments and a head
        l1, l2 = _u(rng, 0.2, 0.5), _u(rng, 0.15, 0.45)
        a1, a2 = _u(rng, -40, 40), _u(rng, 40, 130)
        p0 = np.array([0.0, 0.03, 0.0])
        p1 = p0 + l1 * np.array([np.sin(np.radians(a1)), np.cos(np.radians(a1)), 0])
        p2 = p1 + l2 * np.array([np.sin(np.radians(a2)), np.cos(np.radians(a2)), 0])
        parts += [bar(p0, p1, t, cols[1], True), bar(p1, p2, t, cols[1], True)]
        r = _u(rng, 0.04, 0.12)
        parts.append(cyl(p2 - np.array([0, r * 0.5, 0]), r, r * _u(rng, 0.5, 1.2), 1, cols[2]))
    else:  # multi-arm: a pole with 2-4 arms, each with a small shade
        H = _u(rng, 0.4, 1.0)
        parts.append(cyl((0, H / 2, 0), t, H / 2, 1, cols[1]))
        n, r = int(rng.integers(2, 5)), _u(rng, 0.1, 0.35)
        y = H * _u(rng, 0.6, 0.95)
        for k in range(n):
            a = 2 * np.pi * k / n + _u(rng, 0, 1)
            tip = np.array([r * np.cos(a), y + _u(rng, -0.05, 0.15), r * np.sin(a)])
            parts.append(bar((0, y, 0), tip, t * 0.8, cols[1], True))
            parts += shade(tip + np.array([0, 0.03, 0]), _u(rng, 0.03, 0.08), _u(rng, 0.03, 0.06))
    return parts


def _loudspeaker(rng, cols):
    w, h, d = _u(rng, 0.2, 0.8), _u(rng, 0.2, 1.0), _u(rng, 0.2, 0.6)
    y0 = _u(rng, 0.1, 0.5) if rng.random() < 0.3 else 0.0  # on a stand
    parts = [box((0, y0 + h / 2, 0), (w / 2, h / 2, d / 2), cols[0])]
    if rng.random() < 0.3:  # a rounded or tapered top
        parts.append(ell((0, y0 + h, 0), (w / 2, _u(rng, 0.03, 0.15), d / 2), cols[0]))
    n = int(rng.integers(1, 4))
    for k in range(n):
        r = min(w, h / n) * _u(rng, 0.2, 0.42)
        parts.append(cyl((0, y0 + h * (k + 0.5) / n, -d / 2), r, _u(rng, 0.01, 0.04), 2, cols[1]))
    if y0 > 0:
        parts += [cyl((0, y0 / 2, 0), _u(rng, 0.02, 0.05), y0 / 2, 1, cols[2]),
                  box((0, 0.01, 0), (w / 2 * _u(rng, 0.6, 1.2), 0.01, d / 2 * _u(rng, 0.6, 1.2)), cols[2])]
    elif rng.random() < 0.4:  # feet
        parts += _legs(rng, *_four(w, d, 0.03), 0.0, -0.04, 0.015, cols[2])
    return parts


def _rifle(rng, cols):
    kind = rng.choice(3, p=[0.5, 0.3, 0.2])  # rifle, submachine gun (short, tall), launcher (a thick tube)
    if kind == 2:
        L, r = _u(rng, 0.7, 1.0), _u(rng, 0.03, 0.08)
        parts = [cyl((0, 0, 0), r, L / 2, 2, cols[0]),
                 bar((0, -r, _u(rng, -0.1, 0.1)), (0, -r - _u(rng, 0.06, 0.12), 0.02), 0.015, cols[1]),
                 box((0, r + 0.03, -L * 0.1), (0.015, 0.03, 0.04), cols[2])]
        if rng.random() < 0.5:
            parts.append(cyl((0, 0, L / 2 + 0.03), r * _u(rng, 1.1, 1.6), 0.03, 2, cols[2]))
        if rng.random() < 0.5:
            parts.append(bar((0, -r, L * 0.2), (0, -r - _u(rng, 0.06, 0.12), L * 0.22), 0.015, cols[1]))
        return parts
    L, t = (_u(rng, 0.7, 1.0), _u(rng, 0.008, 0.025)) if kind == 0 else (_u(rng, 0.35, 0.6), _u(rng, 0.01, 0.03))
    body_l = L * (_u(rng, 0.25, 0.45) if kind == 0 else _u(rng, 0.4, 0.6))
    body_h = _u(rng, 0.03, 0.08) if kind == 0 else _u(rng, 0.06, 0.14)
    bz = _u(rng, -0.05, 0.1)
    parts = [box((0, 0, bz), (0.025, body_h / 2, body_l / 2), cols[1])]
    barrel_l = L / 2 + bz - body_l / 2  # the barrel reaches the front of the frame (z = -L/2)
    parts.append(cyl((0, body_h / 4, bz - body_l / 2 - barrel_l / 2), t, barrel_l / 2, 2, cols[0]))
    stock_l, stock_h = _u(rng, 0.15, 0.35), _u(rng, 0.05, 0.16)
    z_s = bz + body_l / 2 + stock_l / 2
    drop = rotation(rx=_u(rng, -15, 5))
    parts.append(box((0, -stock_h / 3, z_s), (0.02, stock_h / 2, stock_l / 2), cols[1], drop))
    parts.append(bar((0, -body_h / 2, bz + body_l / 3), (0, -body_h / 2 - _u(rng, 0.05, 0.1), bz + body_l / 3 + 0.04),
                     0.015, cols[1]))  # grip
    if rng.random() < 0.6:  # magazine
        parts.append(bar((0, -body_h / 2, bz - body_l / 4), (0, -body_h / 2 - _u(rng, 0.05, 0.14), bz - body_l / 4 - _u(rng, -0.03, 0.05)),
                         0.018, cols[2]))
    if rng.random() < 0.5:  # scope
        parts.append(cyl((0, body_h / 2 + 0.035, bz), _u(rng, 0.015, 0.03), _u(rng, 0.06, 0.14), 2, cols[2]))
    if rng.random() < 0.3:  # bipod
        for sx in (-1, 1):
            zb = bz - body_l / 2 - barrel_l * 0.6
            parts.append(bar((0, 0, zb), (sx * 0.06, -_u(rng, 0.1, 0.2), zb - 0.03), 0.006, cols[2]))
    if rng.random() < 0.4:  # handguard
        parts.append(box((0, body_h / 4, bz - body_l / 2 - barrel_l * 0.2), (0.022, 0.025, barrel_l * 0.2), cols[1]))
    return parts


def _sofa(rng, cols):
    seats = int(rng.integers(1, 4))
    w = seats * _u(rng, 0.3, 0.5)
    d, h = _u(rng, 0.3, 0.55), _u(rng, 0.1, 0.25)
    bh, bt = _u(rng, 0.1, 0.4), _u(rng, 0.04, 0.12)
    y0 = _u(rng, 0.03, 0.1) if rng.random() < 0.5 else 0.0
    parts = [box((0, y0 + h / 2, 0), (w / 2, h / 2, d / 2), cols[0])]
    for k in range(seats):  # seat cushions
        parts.append(box((-w / 2 + w * (k + 0.5) / seats, y0 + h + 0.02, -0.01), (w / (2 * seats) - 0.01, 0.02, d / 2 - bt), cols[1]))
    parts.append(box((0, y0 + h + bh / 2, d / 2 - bt / 2), (w / 2, (h + bh) / 2 - h / 2, bt / 2), cols[1],
                     rotation(rx=-_u(rng, 0, 15))))
    arms = rng.choice([0, 1, 2], p=[0.2, 0.2, 0.6])
    aw, ah = _u(rng, 0.03, 0.12), _u(rng, 0.05, 0.25)
    for sx in ((-1, 1) if arms == 2 else ((1,) if arms == 1 else ())):
        parts.append(box((sx * (w / 2 + aw / 2), y0 + (h + ah) / 2, 0), (aw / 2, (h + ah) / 2, d / 2), cols[1]))
    if rng.random() < 0.35:  # L-shaped chaise section
        cl = _u(rng, 0.2, 0.5)
        sx = rng.choice([-1, 1])
        parts.append(box((sx * (w / 2 - 0.15), y0 + h / 2, -d / 2 - cl / 2), (0.15, h / 2, cl / 2), cols[0]))
    if y0 > 0:
        ww = w / 2 + (aw if arms else 0)
        parts += _legs(rng, (-ww + 0.03, ww - 0.03), (-d / 2 + 0.03, d / 2 - 0.03), y0, 0, 0.015, cols[2])
    return parts


def _table(rng, cols):
    w, d = _u(rng, 0.4, 1.0), _u(rng, 0.25, 1.0)
    h = max(w, d) * _u(rng, 0.3, 1.1)
    t = _u(rng, 0.012, 0.05)
    top_t = _u(rng, 0.01, 0.04)
    round_top = rng.random() < 0.3
    parts = [cyl((0, h, 0), min(w, d) / 2, top_t, 1, cols[0]) if round_top else box((0, h, 0), (w / 2, top_t, d / 2), cols[0])]
    if round_top:
        w = d = min(w, d) * 0.72
    base = rng.integers(4)
    if base == 0:  # 4 legs, maybe splayed, maybe an apron
        parts += _legs(rng, *_four(w, d, t), h, 0, t, cols[1], rng.random() < 0.5, _u(rng, 0, 0.05))
        if rng.random() < 0.5:
            parts += [box((0, h - 0.04, sz * (d / 2 - t)), (w / 2 - t, 0.03, 0.008), cols[1]) for sz in (-1, 1)]
    elif base == 1:  # pedestal
        parts += [cyl((0, h / 2, 0), _u(rng, 0.02, 0.08), h / 2, 1, cols[1]),
                  cyl((0, 0.015, 0), min(w, d) * _u(rng, 0.2, 0.4), 0.015, 1, cols[1])]
    elif base == 2:  # trestle: two slab ends and a stretcher
        for sx in (-1, 1):
            parts.append(box((sx * (w / 2 - 0.05), h / 2, 0), (0.015, h / 2, d / 2 * _u(rng, 0.5, 0.9)), cols[1]))
        parts.append(box((0, h * 0.3, 0), (w / 2 - 0.05, 0.02, 0.015), cols[1]))
    else:  # 6 legs (long tables)
        parts += _legs(rng, (-w / 2 + t, 0.0, w / 2 - t), (-d / 2 + t, d / 2 - t), h, 0, t, cols[1])
    if rng.random() < 0.3 and base != 1:  # a lower shelf
        parts.append(box((0, h * _u(rng, 0.15, 0.35), 0), (w / 2 - t, 0.01, d / 2 - t), cols[2]))
    return parts


def _telephone(rng, cols):
    kind = rng.integers(3)
    if kind == 0:  # smartphone slab, maybe tilted on a stand
        w, h, d = _u(rng, 0.25, 0.6), _u(rng, 0.5, 1.0), _u(rng, 0.02, 0.08)
        rot = rotation(rx=_u(rng, -30, 30)) if rng.random() < 0.5 else None
        parts = [box((0, 0, 0), (w / 2, h / 2, d / 2), cols[0], rot),
                 box((0, 0.03, -d / 2 - 0.004), (w / 2 - 0.02, h / 2 - 0.06, 0.004), cols[1], rot)]
        if rng.random() < 0.3:  # camera bump
            parts.append(box((w / 5, h / 3, d / 2 + 0.01), (0.05, 0.05, 0.01), cols[2], rot))
        return parts
    if kind == 1:  # flip phone, open: two slabs at an angle
        w, h, d = _u(rng, 0.2, 0.4), _u(rng, 0.3, 0.5), _u(rng, 0.02, 0.06)
        a = _u(rng, 120, 170)
        lower = box((0, -h / 2, 0), (w / 2, h / 2, d / 2), cols[0])
        upper = bar((0, 0, 0), (0, h * np.sin(np.radians(a)), -h * np.cos(np.radians(a))), d / 2, cols[1])
        upper.size = np.array([w / 2, upper.size[1], d / 2])
        return [lower, upper]
    # desk phone: a wedge body, a handset on top and maybe a cord
    w, d, hb = _u(rng, 0.4, 0.8), _u(rng, 0.3, 0.6), _u(rng, 0.06, 0.15)
    parts = [box((0, hb / 2, 0), (w / 2, hb / 2, d / 2), cols[0], rotation(rx=_u(rng, 0, 12)))]
    hl = w * _u(rng, 0.7, 1.0)
    parts += [box((0, hb + 0.03, d * 0.2), (hl / 2, 0.02, 0.035), cols[1])]
    parts += [ell((sx * hl / 2, hb + 0.04, d * 0.2), (0.05, 0.035, 0.05), cols[1]) for sx in (-1, 1)]
    if rng.random() < 0.5:  # keypad block
        parts.append(box((0, hb + 0.01, -d * 0.2), (w * 0.25, 0.012, d * 0.15), cols[2]))
    return parts


def _watercraft(rng, cols):
    L, w, hh = _u(rng, 0.7, 1.0), _u(rng, 0.12, 0.4), _u(rng, 0.05, 0.2)
    kind = rng.integers(4)
    hulls = [(-w * 0.6, w * 0.25), (w * 0.6, w * 0.25)] if kind == 3 else [(0.0, w / 2)]
    parts = []
    for x, hw in hulls:
        parts.append(ell((x, 0, 0), (hw, hh, L / 2), cols[0]))
        if rng.random() < 0.5 or kind == 3:
            parts.append(box((x, hh * 0.3, 0), (hw * 0.85, hh * 0.3, L / 2 * 0.8), cols[0]))
    deck = hh * 0.6
    if kind == 3:  # catamaran deck
        parts.append(box((0, deck, 0), (w * 0.85, 0.015, L * 0.3), cols[1]))
    if kind in (0, 3):  # sail boat: mast, one or two sails
        mh = _u(rng, 0.3, 0.9)
        parts.append(cyl((0, deck + mh / 2, 0), 0.01, mh / 2, 1, cols[1]))
        parts.append(box((0, deck + mh / 2, _u(rng, 0.05, 0.2)), (0.006, mh * 0.42, _u(rng, 0.06, 0.2)), cols[2],
                         rotation(rx=_u(rng, -10, 10))))
        if rng.random() < 0.5:
            parts.append(box((0, deck + mh * 0.4, -_u(rng, 0.05, 0.15)), (0.006, mh * 0.35, _u(rng, 0.04, 0.12)), cols[2]))
    elif kind == 1:  # motorboat: a cabin and maybe a windscreen
        ch = _u(rng, 0.04, 0.15)
        parts.append(box((0, deck + ch / 2, _u(rng, -0.15, 0.15)), (w / 2 * _u(rng, 0.4, 0.8), ch / 2, L * _u(rng, 0.08, 0.25)), cols[1]))
        if rng.random() < 0.5:
            parts.append(box((0, deck + ch + 0.03, -L * 0.1), (w / 2 * 0.5, 0.03, 0.005), cols[2]))
    else:  # ship: stacked superstructure, 1-3 funnels
        y = deck
        for k in range(int(rng.integers(1, 4))):
            lh = _u(rng, 0.03, 0.08)
            parts.append(box((0, y + lh / 2, _u(rng, -0.1, 0.1)), (w / 2 * (0.8 - 0.15 * k), lh / 2, L * (0.3 - 0.07 * k)), cols[1]))
            y += lh
        for k in range(int(rng.integers(1, 4))):
            parts.append(cyl((0, y + 0.05, -L * 0.15 + k * 0.1), _u(rng, 0.015, 0.035), 0.05, 1, cols[2]))
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


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Three part colours: one colour for all parts, two tones, or three random colours, each a
    random hue, saturation and brightness."""
    k = rng.choice([1, 2, 3], p=[0.25, 0.35, 0.4])
    base = rng.uniform(0.05, 0.95, size=(k, 3))
    return base[[0, min(1, k - 1), k - 1]]


def random_shape(class_id: str, rng: np.random.Generator) -> Shape:
    """One random shape of a class (``class_id`` among the 13 NMR ids)."""
    if class_id not in _BUILDERS:
        raise ValueError(f"class_id: expected one of {sorted(_BUILDERS)}, got {class_id!r}")
    parts = _BUILDERS[class_id](rng, _palette(rng))
    lo = np.min([p.centre - p.half_extent() for p in parts], axis=0)
    hi = np.max([p.centre + p.half_extent() for p in parts], axis=0)
    # ShapeNet's normalization: unit bounding-box diagonal (so squat shapes come out smaller than
    # long ones), capped so that the longest side fits the voxel frame
    scale, mid = min(DIAGONAL / np.linalg.norm(hi - lo), EXTENT / (hi - lo).max()), (lo + hi) / 2
    return Shape([Part(p.kind, (p.centre - mid) * scale, p.size * scale, p.colour, p.rot) for p in parts])
