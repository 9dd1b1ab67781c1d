"""The SoftRas-compatible public surface, for ``from .api import *`` in the package's ``__init__``.

With it, code written for SoftRas 1.0 runs after changing ``import soft_renderer as sr`` to
``import taichi_softras as sr`` (differences: ``docs/softras_compat.md``).
"""

from . import functional
from .geometry import normalize_vertices
from .losses import EdgeLengthLoss, FlattenLoss, IoULoss, LaplacianLoss, edge_length_loss, flatten_loss, iou_loss, laplacian_loss
from .lighting import AmbientLighting, DirectionalLighting, Lighting
from .mesh import Mesh
from .rasterizer import Rasterizer, SoftRasterizer
from .renderer import Renderer, SoftRenderer
from .transform import Look, LookAt, Projection, Transform
from .voxelization import voxelization

__all__ = [
    # SoftRas 1.0's top-level names
    "functional",
    "Mesh",
    "Renderer",
    "SoftRenderer",
    "Projection",
    "LookAt",
    "Look",
    "Transform",
    "AmbientLighting",
    "DirectionalLighting",
    "Lighting",
    "Rasterizer",
    "SoftRasterizer",
    "LaplacianLoss",
    "FlattenLoss",
    # additions
    "IoULoss",
    "EdgeLengthLoss",
    "iou_loss",
    "laplacian_loss",
    "flatten_loss",
    "edge_length_loss",
    "normalize_vertices",
    "voxelization",
]
