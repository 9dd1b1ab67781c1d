"""SoftRas's ``soft_renderer.functional`` namespace: the stateless functions behind the modules.

``import taichi_softras.functional as srf`` gives the same names (and signatures) as SoftRas 1.0's
``srf``; everything here is defined elsewhere in the package and only re-exported.
"""

from .cameras import get_points_from_angles, look, look_at, orthogonal, perspective, projection
from .geometry import face_normals, face_vertices, normalize_vertices, vertex_normals
from .io import load_obj, save_obj, save_voxel
from .lighting import ambient_lighting, directional_lighting
from .losses import edge_length_loss, flatten_loss, iou_loss, laplacian_loss
from .ops.rasterize import soft_rasterize
from .voxelization import voxelization

__all__ = [
    # SoftRas 1.0's functional names
    "soft_rasterize",
    "get_points_from_angles",
    "ambient_lighting",
    "directional_lighting",
    "load_obj",
    "save_obj",
    "save_voxel",
    "look",
    "look_at",
    "perspective",
    "orthogonal",
    "projection",
    "face_vertices",
    "vertex_normals",
    "voxelization",
    # additions
    "face_normals",
    "normalize_vertices",
    "iou_loss",
    "laplacian_loss",
    "flatten_loss",
    "edge_length_loss",
]
