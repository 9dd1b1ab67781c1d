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
