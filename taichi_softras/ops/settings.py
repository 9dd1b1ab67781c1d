"""Validated settings of one ``soft_rasterize`` call, shared by the Taichi op and the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import conventions as C
from .checks import (
    check_choice,
    check_color,
    check_finite,
    check_in_range,
    check_number,
    check_positive,
    check_same_device,
    check_tensor,
    image_hw,
)


@dataclass(frozen=True)
class RasterSettings:
    """Everything but the tensors. ``texture_res`` is R for surface textures (R*R texels), 0 for vertex."""

    height: int
    width: int
    background_color: tuple[float, float, float]
    near: float
    far: float
    fill_back: bool
    eps: float
    sigma_val: float
    dist_func: str
    dist_eps: float
    gamma_val: float
    aggr_func_rgb: str
    aggr_func_alpha: str
    texture_type: str
    texture_res: int

    @property
    def threshold(self) -> float:
        """Squared NDC distance beyond which an outside face is skipped."""
        return C.dist_threshold(self.sigma_val, self.dist_eps)


def parse_rasterize_args(
    face_vertices,
    textures,
    image_size,
    background_color,
    near,
    far,
    fill_back,
    eps,
    sigma_val,
    dist_func,
    dist_eps,
    gamma_val,
    aggr_func_rgb,
    aggr_func_alpha,
    texture_type,
) -> RasterSettings:
    """Validate ``soft_rasterize``'s arguments; raise ValueError/TypeError naming the argument."""
    check_tensor(face_vertices, "face_vertices", ndim=4, last=(3, 3))
    check_choice(texture_type, "texture_type", C.RASTER_TEXTURE_TYPES)
    check_tensor(textures, "textures", ndim=4, last=(3, None, None) if texture_type == "uv" else (3,))
    check_choice(dist_func, "dist_func", C.DIST_FUNCS)
    check_choice(aggr_func_rgb, "aggr_func_rgb", C.AGGR_FUNCS_RGB)
    check_choice(aggr_func_alpha, "aggr_func_alpha", C.AGGR_FUNCS_ALPHA)
    if textures.dtype != face_vertices.dtype:
        raise TypeError(f"textures dtype {textures.dtype} differs from face_vertices dtype {face_vertices.dtype}")
    check_same_device(face_vertices, textures, "face_vertices", "textures")
    b, f = face_vertices.shape[:2]
    if texture_type == "uv":
        if textures.shape[0] != b or textures.shape[2] == 0 or textures.shape[3] == 0:
            raise ValueError(f"uv textures must be images (B, 3, TH, TW) with B = {b} and TH, TW >= 1, got {tuple(textures.shape)}")
        res = 0
    elif textures.shape[0] != b or textures.shape[1] != f:
        raise ValueError(
            f"textures must have batch and face dims (B, F) = ({b}, {f}) like face_vertices, got {tuple(textures.shape)}"
        )
    if texture_type == "uv":
        pass
    elif texture_type == "vertex":
        if textures.shape[2] != 3:
            raise ValueError(f"vertex textures must have shape (B, F, 3, 3), got {tuple(textures.shape)}")
        res = 0
    else:
        res = math.isqrt(textures.shape[2])
        if res * res != textures.shape[2] or res == 0:
            raise ValueError(f"surface textures must have shape (B, F, R*R, 3), got {tuple(textures.shape)}")
    check_finite(face_vertices, "face_vertices")
    check_finite(textures, "textures")
    h, w = image_hw(image_size)
    bg = check_color(background_color, "background_color")
    sigma_val = check_positive(sigma_val, "sigma_val")
    gamma_val = check_positive(gamma_val, "gamma_val")
    near = check_positive(near, "near")
    far = check_number(far, "far", "a finite number > near")
    if not far > near:
        raise ValueError(f"far must be > near, got near={near}, far={far}")
    # eps is the background's normalized depth z_n; faces between near and far have z_n in [0, 1].
    eps = check_in_range(eps, "eps", 0.0, 1.0, "a finite number in (0, 1) (the background's normalized depth)")
    dist_eps = check_in_range(dist_eps, "dist_eps", 0.0, 0.5)
    return RasterSettings(
        height=h,
        width=w,
        background_color=bg,
        near=near,
        far=far,
        fill_back=bool(fill_back),
        eps=eps,
        sigma_val=sigma_val,
        dist_func=dist_func,
        dist_eps=dist_eps,
        gamma_val=gamma_val,
        aggr_func_rgb=aggr_func_rgb,
        aggr_func_alpha=aggr_func_alpha,
        texture_type=texture_type,
        texture_res=res,
    )
