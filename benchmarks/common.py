"""Scenes and timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import time

import torch
import trimesh

import taichi_softras as sr


def spot(device="cpu", dtype=torch.float32, texture_res=4, azimuth=-45.0):
    """Spot (5,856 faces) seen from SoftRas's demo camera: face_vertices (1, F, 3, 3), textures."""
    mesh = sr.Mesh.from_obj(sr.DATA_DIR / "spot" / "spot_triangulated.obj", load_texture=True, texture_res=texture_res)
    return project(mesh.vertices, mesh.faces, mesh.textures, device, dtype, azimuth)


def icosphere(subdivisions: int, device="cpu", dtype=torch.float32, radius=0.9):
    """Icosphere of 20 * 4**subdivisions faces, flat random colours."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    v = torch.tensor(m.vertices, dtype=torch.float32)[None]
    f = torch.tensor(m.faces, dtype=torch.long)[None]
    tex = torch.rand(1, f.shape[1], 1, 3, generator=torch.Generator().manual_seed(0))
    return project(v, f, tex, device, dtype)


def project(vertices, faces, textures, device="cpu", dtype=torch.float32, azimuth=-45.0):
    eye = sr.get_points_from_angles(2.732, 30.0, azimuth)
    v = sr.perspective(sr.look_at(vertices.to(dtype), eye))
    fv = v[0][faces[0]][None].contiguous()
    return fv.to(device), textures.to(device=device, dtype=dtype).contiguous()


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn, device="cpu", repeats=5, warmup=1):
    """(first call seconds, best steady-state seconds) of ``fn()``."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return first, best


def fwd(fv, tex, **kw):
    return lambda: sr.soft_rasterize(fv, tex, **kw)


def fwd_bwd(fv, tex, **kw):
    fv = fv.detach().requires_grad_()
    tex = tex.detach().requires_grad_()

    def run():
        img = sr.soft_rasterize(fv, tex, **kw)
        img.backward(torch.ones_like(img))

    return run


def machine(device="cpu") -> str:
    import taichi

    cpu = platform.processor() or platform.machine()
    ti_version = ".".join(map(str, taichi.__version__))
    desc = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, taichi {ti_version}"
    if str(device).startswith("cuda"):
        desc += f", GPU {torch.cuda.get_device_name()}"
    return desc


# --- harness helpers (benchmarks/run.py) -------------------------------------------------------

ICOSPHERE_FACES = {s: 20 * 4**s for s in range(3, 8)}  # 1,280 5,120 20,480 81,920 327,680


def sphere_batch(batch: int, device="cpu", dtype=torch.float32, viewing_angle=15.0):
    """``sphere_642`` (1,280 faces) seen by ``batch`` NMR-style cameras (look_at, distance 2.732,
    elevation 30, azimuth -15 * v, viewing angle 15): the reconstruction training shape."""
    mesh = sr.Mesh.from_obj(sr.DATA_DIR / "sphere_642.obj")
    v = mesh.vertices.to(dtype).expand(batch, -1, -1)
    eye = torch.stack([torch.as_tensor(sr.get_points_from_angles(2.732, 30.0, -15.0 * i), dtype=dtype)
                       for i in range(batch)])
    v = sr.perspective(sr.look_at(v, eye), angle=viewing_angle)
    fv = v[:, mesh.faces[0]].contiguous()
    tex = torch.rand(batch, fv.shape[1], 1, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    return fv.to(device), tex.to(device)


def time_adaptive(fn, device="cpu", budget_s=3.0, max_repeats=5, min_repeats=1, first_counts=False):
    """(first call s, best steady s, timed calls): a warm-up after the first call only when the
    call is cheap, then steady repeats until ``budget_s`` is spent (at least ``min_repeats``).
    ``first_counts``: the first call is itself a steady sample (code with no JIT or caches)."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t
    best, n, spent = (first, 1, first) if first_counts else (float("inf"), 0, 0.0)
    if not first_counts and first < budget_s / 4:
        fn()
    while n < min_repeats or (n < max_repeats and spent + best < budget_s):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t
        best, n, spent = min(best, dt), n + 1, spent + dt
    return first, best, n


def covered_pairs(fv: torch.Tensor, image_size, sigma_val: float, dist_eps: float, budget: int = 8_000_000,
                  chunk: int = 1_000_000, seed: int = 0):
    """Covered (pixel, face) pairs: pixels inside a face or within its cut ``d^2 < sigma*ln(1/dist_eps-1)``
    (the fragments the exact path must visit), counted with torch by enumerating each face's grown
    pixel box, so the cost is O(sum of box areas), never O(H*W*F).

    Returns ``(pairs, max_per_pixel, exact)``. When the boxes hold more than ``budget`` pixels, a
    uniform random subset of faces is counted and scaled up (``exact=False``, ``max_per_pixel=None``).
    Faces with a vertex at z <= Z_CULL are culled, as in the kernels.
    """
    from taichi_softras import conventions as C

    H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
    thr = C.dist_threshold(sigma_val, dist_eps)
    rad = thr**0.5
    B, F = fv.shape[:2]
    v = fv.detach().to(device="cpu", dtype=torch.float64).reshape(B * F, 3, 3)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    S = min(H, W)
    # Pixel centre x_k = (2k + 1 - W)/S, y_r = (H - 1 - 2r)/S: the box's index ranges.
    c0 = torch.ceil(((x.min(1).values - rad) * S + W - 1) / 2).clamp(0, W).long()
    c1 = torch.floor(((x.max(1).values + rad) * S + W - 1) / 2).clamp(-1, W - 1).long()
    r0 = torch.ceil((H - 1 - (y.max(1).values + rad) * S) / 2).clamp(0, H).long()
    r1 = torch.floor((H - 1 - (y.min(1).values - rad) * S) / 2).clamp(-1, H - 1).long()
    ncol, nrow = (c1 - c0 + 1).clamp(min=0), (r1 - r0 + 1).clamp(min=0)
    n = ncol * nrow * (z.min(1).values > C.Z_CULL)
    total_box = int(n.sum())
    faces = torch.arange(B * F)
    exact = total_box <= budget
    if not exact:
        gen = torch.Generator().manual_seed(seed)
        keep_n = max(1, int(B * F * budget / total_box))
        faces = torch.randperm(B * F, generator=gen)[:keep_n].sort().values
    counts = torch.zeros(B * H * W, dtype=torch.int32) if exact else None
    pairs = 0
    cum = torch.cumsum(n[faces], 0)
    start = 0
    while start < len(faces):
        base = int(cum[start - 1]) if start else 0
        stop = int(torch.searchsorted(cum, torch.tensor(base + chunk), right=True))
        stop = max(stop, start + 1)
        fi = faces[start:stop]
        ni = n[fi]
        rep = torch.repeat_interleave(torch.arange(len(fi)), ni)
        local = torch.arange(int(ni.sum())) - torch.repeat_interleave(torch.cumsum(ni, 0) - ni, ni)
        f = fi[rep]
        col = c0[f] + local % ncol[f]
        row = r0[f] + local // ncol[f]
        px = (2 * col + 1 - W).double() / S
        py = (H - 1 - 2 * row).double() / S
        keep = _covers(x[f], y[f], px, py, thr)
        pairs += int(keep.sum())
        if exact:
            idx = (f // F) * (H * W) + row * W + col
            counts += torch.bincount(idx[keep], minlength=B * H * W).int()
        start = stop
    if exact:
        return pairs, int(counts.max()) if counts.numel() else 0, True
    return round(pairs * (B * F) / len(faces)), None, False


def _covers(x, y, px, py, thr):
    """inside or squared distance to the triangle's edges < thr (x, y: (N, 3); px, py: (N,))."""
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    e0 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
    e1 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
    e2 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
    inside = ((e0 > 0) & (e1 > 0) & (e2 > 0)) | ((e0 < 0) & (e1 < 0) & (e2 < 0))

    def seg(ax, ay, bx, by):
        ex, ey = bx - ax, by - ay
        t = (((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey).clamp(min=1e-30)).clamp(0, 1)
        return (px - ax - t * ex) ** 2 + (py - ay - t * ey) ** 2

    d2 = torch.minimum(torch.minimum(seg(x0, y0, x1, y1), seg(x1, y1, x2, y2)), seg(x2, y2, x0, y0))
    return inside | (d2 < thr)


def rss_bytes() -> int:
    """Resident set size of this process (from /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """VmHWM: the peak RSS since the process start or the last :func:`reset_peak_rss`."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def torch_peak_bytes(fn, device="cpu") -> int:
    """Peak bytes torch's allocator held during ``fn()`` beyond what it held before (CUDA: the
    allocator's stats; CPU: the profiler's allocation events summed in time order). Untimed."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes()
        peak = max(peak, cur)
    return peak


def compiled_kernel_objects(module=None) -> dict:
    """Every compiled variant (forward and adjoint) of the Taichi kernels in ``module`` (default:
    ``taichi_softras.kernels.raster``), by identity: a recompilation adds or replaces an object."""
    if module is None:
        from taichi_softras.kernels import raster as module
    snap = {}
    for name, obj in vars(module).items():
        if hasattr(obj, "_primal"):
            for part in ("_primal", "_adjoint"):
                for key, compiled in getattr(obj, part).compiled_kernels.items():
                    snap[(name, part, key[1:])] = compiled
    return snap


def recompiled(before: dict, after: dict) -> int:
    """Kernel variants compiled (new or replaced) between two :func:`compiled_kernel_objects`."""
    return sum(1 for k, v in after.items() if before.get(k) is not v)


def time_interleaved(fns: dict, device="cpu", rounds=7) -> dict:
    """Best seconds of each ``fn`` in ``fns``, timed in alternating rounds so load drift hits all alike."""
    for fn in fns.values():  # warm-up (JIT)
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            best[k] = min(best[k], time.perf_counter() - t)
    return best
