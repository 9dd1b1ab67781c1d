"""taichi_softras: a differentiable soft rasterizer (SoftRas) and implicit-surface probing in Taichi.

Importing this package initializes nothing: Taichi starts lazily at the first kernel call, on the
arch of the first tensors it sees (see :mod:`taichi_softras.runtime`).
"""

from . import conventions, runtime
from .cameras import get_points_from_angles, look, look_at, orthogonal, perspective, pixel_rays, projection

__version__ = "0.1.0"

import pathlib as _pathlib

#: Bundled data: sphere_642.obj, sphere_1352.obj, camera.npy (SoftRas's 120 demo cameras) and
#: spot/spot_triangulated.obj (the Spot cow with its UV texture).
DATA_DIR = _pathlib.Path(__file__).parent / "data"

from .ops.rasterize import rasterize, soft_rasterize
from .spec import RasterOutputs, RasterSettings
from .camera import Camera
from .api import *  # noqa: E402,F401,F403  (SoftRas-compatible names: Mesh, SoftRenderer, functional, ...)
from . import implicit, sampling  # noqa: E402  (implicit surfaces: probing losses, regularizer, extraction)
from .implicit import FieldProber  # noqa: E402
from .ops.probe import probe_rays, probe_view  # noqa: E402
