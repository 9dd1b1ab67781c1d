"""Performance guards without timed asserts.

* Work is bounded by the geometry, not by H*W*F: the face-tile pairs binned by a forward
  (``engine.last_pairs``) are tiny for a small triangle in a big image and grow with the image's
  area, not with H*W*F.
* No recompilation for shapes seen before: the compiled variants of every kernel in
  ``taichi_softras.kernels.raster`` (``_primal`` and ``_adjoint``) stay the same objects.
* No memory growth over 1,000 calls cycling through 5 shapes (RSS from /proc/self/statm, pool
  allocations).
"""

from __future__ import annotations

import gc
import os

import pytest
import torch
import trimesh

import taichi_softras as sr
from taichi_softras.kernels import raster as K
from taichi_softras.ops.rasterize import engine_for

SIGMA = 1e-4


def _scene(subdivisions: int, batch: int = 1, scale: float = 0.8, dtype=torch.float32):
    """Icosphere face vertices (batch, F, 3, 3): x, y in NDC, depth 2 + z; flat colours."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = torch.tensor(m.vertices, dtype=dtype)
    v = torch.cat([v[:, :2] * scale, 2.0 + v[:, 2:]], 1)
    fv = v[torch.tensor(m.faces)][None].repeat(batch, 1, 1, 1).contiguous()
    tex = torch.linspace(0, 1, fv.shape[1] * 3, dtype=dtype).reshape(1, -1, 1, 3).repeat(batch, 1, 1, 1)
    return fv, tex.contiguous()


def _triangle(size: float, dtype=torch.float32):
    fv = torch.tensor([[[[0.1, 0.1, 2.0], [0.1 + size, 0.1, 2.0], [0.1, 0.1 + size, 2.0]]]], dtype=dtype)
    return fv, torch.ones(1, 1, 1, 3, dtype=dtype)


def _pairs(fv, tex, size):
    with torch.no_grad():
        sr.soft_rasterize(fv, tex, image_size=size, sigma_val=SIGMA)
    return engine_for(fv.dtype, grad=False).last_pairs


def _fwd_bwd(fv, tex, size):
    fv = fv.detach().requires_grad_()
    tex = tex.detach().requires_grad_()
    img = sr.soft_rasterize(fv, tex, image_size=size, sigma_val=SIGMA)
    img.backward(torch.ones_like(img))
    return fv.grad


def _compiled():
    """Every compiled kernel variant, by identity: a recompilation replaces (or adds) an object."""
    snap = {}
    for name, obj in vars(K).items():
        if hasattr(obj, "_primal"):
            for part in ("_primal", "_adjoint"):
                for key, compiled in getattr(obj, part).compiled_kernels.items():
                    snap[(name, part, key[1:])] = compiled
    return snap


def _changed(before: dict, after: dict) -> list:
    return sorted(k[:2] for k in after if k not in before or after[k] is not before[k])


def _tiles(size: int) -> int:
    return ((size + K.TILE - 1) // K.TILE) ** 2


def test_small_triangle_bins_to_few_tiles():
    fv, tex = _triangle(0.01)  # ~1.3 px at 256²
    for size in (256, 512):
        pairs = _pairs(fv, tex, size)
        # Its box (plus the cut radius and a pixel of rounding slack) spans at most 3 x 3 tiles;
        # a dense path would bin it to all of them (1,024 or 4,096).
        assert 1 <= pairs <= 9, f"a ~{0.005 * size:.1f}-px triangle binned to {pairs} tiles at {size}²"


def test_binned_pairs_scale_with_area_not_pixels_times_faces():
    fv, tex = _scene(2)  # 320 faces
    F = fv.shape[1]
    p256, p128, p64 = (_pairs(fv, tex, s) for s in (256, 128, 64))  # largest first: one pool growth
    for size, pairs in ((64, p64), (128, p128), (256, p256)):
        # An O(H*W*F) path would bin every face to every tile.
        assert pairs < 0.1 * _tiles(size) * F, (size, pairs)
    # Same geometry, 4x the pixels: the boxes' tile counts grow at most ~4x (+ a tile of slack per face).
    assert p128 <= 4 * p64 + 4 * F and p256 <= 4 * p128 + 4 * F, (p64, p128, p256)
    assert p256 > p64  # and they do grow with the covered area


def test_batch_bins_per_image():
    fv, tex = _scene(2)
    fv4, tex4 = _scene(2, batch=4)
    assert _pairs(fv4, tex4, 64) == 4 * _pairs(fv, tex, 64)


def test_no_recompilation_for_seen_shapes():
    shapes = [(_scene(2), 48), (_scene(1, batch=2), 40), (_scene(1), 32)]
    for (fv, tex), size in shapes:  # first calls may compile (and grow the pools)
        _fwd_bwd(fv, tex, size)
        _pairs(fv, tex, size)
    before = _compiled()
    allocations = engine_for(torch.float32).pool.allocations
    for _ in range(2):
        for (fv, tex), size in shapes:
            _fwd_bwd(fv, tex, size)
            _pairs(fv, tex, size)
    assert _changed(before, _compiled()) == []
    assert engine_for(torch.float32).pool.allocations == allocations


def _largest_capacity() -> int:
    pools = (engine_for(torch.float32, grad=g).pool for g in (True, False))
    return max((e.capacity for p in pools for e in p._entries.values()), default=1024)


def test_no_recompilation_when_the_other_path_grows():
    _pairs(*_triangle(0.5), 16)  # the no-grad pool holds fields, so growing it destroys a tree
    # A batch of one-triangle 16² images with more pixels than any pool holds yet: both paths must grow.
    batch = 2 * _largest_capacity() // 256 + 1
    fv, tex = _triangle(0.5)
    fv, tex = fv.repeat(batch, 1, 1, 1), tex.repeat(batch, 1, 1, 1)
    _fwd_bwd(fv, tex, 16)
    _fwd_bwd(fv, tex, 16)
    seen = _compiled()
    _pairs(fv, tex, 16)  # first no-grad call of this shape: grows the no-grad pool
    after_nograd = _compiled()
    _fwd_bwd(fv, tex, 16)  # a shape the grad path has seen: must not recompile
    assert _changed(after_nograd, _compiled()) == [], "the grad path recompiled a shape it had seen"
    assert seen.keys() <= after_nograd.keys()


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_no_memory_growth_over_1000_calls():
    shapes = [(_scene(2), 32), (_scene(0, batch=3), 28), (_scene(1), 24), (_scene(1, batch=2), 20), (_scene(0), 16)]
    for _ in range(3):  # warm-up: compile, grow the pools to their largest, fill allocator caches
        for (fv, tex), size in shapes:
            _fwd_bwd(fv, tex, size)
            _pairs(fv, tex, size)
    gc.collect()
    compiled = _compiled()
    allocations = (engine_for(torch.float32).pool.allocations, engine_for(torch.float32, grad=False).pool.allocations)
    rss0 = _rss()
    for i in range(1000):
        (fv, tex), size = shapes[i % len(shapes)]
        if i % 2:
            _fwd_bwd(fv, tex, size)
        else:
            _pairs(fv, tex, size)
    gc.collect()
    growth = _rss() - rss0
    # One leaked 32² RGBA output per call would be 1000 * 16 KiB = 16 MiB; allow allocator noise.
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1,000 calls"
    assert (engine_for(torch.float32).pool.allocations, engine_for(torch.float32, grad=False).pool.allocations) == allocations
    assert _changed(compiled, _compiled()) == []


@pytest.mark.parametrize("size, sigma", [(32, 1e-5), (40, 1e-3), (24, 3e-2)])
def test_benchmark_covered_pair_count_matches_reference(size, sigma):
    """The harness's ns/pair rests on ``benchmarks.common.covered_pairs``: hold it to the reference."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from benchmarks.common import covered_pairs
    finally:
        sys.path.pop(0)
    from taichi_softras.spec import RasterSettings
    from taichi_softras.reference.rasterize import _fragments, _pixel_grid

    fv, tex = _scene(2, batch=2)
    fv[1, :, :, :2] *= 0.5  # two different images
    s = RasterSettings(size, (0, 0, 0), 1, 100, True, 1e-3, sigma, "euclidean", 1e-4, 1e-4, "softmax", "prod", "surface")
    px, py = _pixel_grid(s, fv.double())
    keep = _fragments(fv.double(), s, px, py)["keep"]  # (B, F, P)
    pairs, kmax, exact = covered_pairs(fv, size, sigma, 1e-4)
    assert exact and pairs == int(keep.sum()) and kmax == int(keep.sum(1).max())
    approx, _, exact = covered_pairs(fv, size, sigma, 1e-4, budget=max(pairs // 4, 1))
    assert not exact and abs(approx - pairs) < 0.25 * pairs
