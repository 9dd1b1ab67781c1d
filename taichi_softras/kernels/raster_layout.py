"""Layout of the soft rasterizer's Taichi fields, the codes and sizes its kernels read (no torch,
no Taichi here).

Data lives in flat, grow-only fields owned by ``ops/_raster_engine.py``, handed to every kernel as one
:class:`Fields` tuple (a ``ti.template()``: Taichi keys compiled variants by the fields in it) with
the compile-time switches in a :class:`Modes` tuple:

* ``fv``   (B*F*9)        face vertices, x, y NDC and z depth per corner (grad)
* ``tex``  (B*F*T*3)      textures: T = R*R surface texels or 3 vertex colours, or a UV image
                          (B*3*TH*TW) with per-corner ``uv`` (B*F*6) (grad)
* ``nfc`` (B) faces per mesh (ragged batches); ``grp`` (B*F) face groups; ``vn`` (B*F*9) normals
* ``fs``   (B*F, NS)      per-face setup (``S_*``): grown box, edge lines, barycentric coefficients,
                          1/z, 1/|edge|^2, facing — computed once per face by ``setup``
* ``box``  (B*F, 6)       each face's inclusive tile range (x0, x1, y0, y1, 0, 0); empty when x0 > x1
* ``pbox`` (B*F, 4)       its inclusive pixel range (col0, col1, row0, row1), a superset of the
                          pixels in its grown box; empty when col0 > col1
* :class:`Lists` ``off``, ``lst``, ``cell``: faces binned per tile (``kernels/binning.py``), tile c
                          lists ``lst[off[c]:off[c+1]]`` in face order; ``cell[q]`` is entry q's tile
                          (a separate template argument: only the two passes that read it
                          recompile when the lists outgrow their fields)
* ``pv`` (9 fields of n_pairs) each tile-face pair's copy of its face's corners (grad; the reverse
                          pass only, ``raster.gather_corners``): one 1-D field per coordinate, so
                          that Taichi writes their adjoints without atomics (docs/design.md)
* ``pm`` (B*P) softmax shift m, ``psel`` (B*P) nearest covering face, ``phard`` (B*P) hard alpha,
  ``pinv`` (B*P) 1 / sum(w) (forward-only: constants for gradients)
* ``acc``  (B*P, 7)       per-pixel sums: log(1-D), D, w, w*z, w*rgb (grad; a sum compose does not read stays 0: ``Modes.log_sum``, ``Modes.d_sum``); ``accg`` per group
* ``out``  (B*P, 5)       RGBA + depth (grad); ``outg`` group masks; ``aux`` (B*P, 9) auxiliary
* ``prm``  (16)           real-valued settings (``P_*``), so new sigma/gamma never recompile
* ``dims`` (9)            integer sizes (``D_*``, :class:`Dims`): B, F, H, W, R, TH, TW, log2 tile grid

The kernels are in :mod:`.raster` (the passes) and :mod:`.fragment` (the per-fragment maths).
"""

from typing import NamedTuple

from ..conventions import AUX_CHANNELS
from ..conventions import code as _code

TILE_LOG = 3
TILE = 1 << TILE_LOG
TILE_PIXELS = TILE * TILE

# Real settings in ``prm``.
P_SIGMA, P_GAMMA, P_EPS, P_NEAR, P_FAR, P_THR, P_RAD, P_BG = 0, 1, 2, 3, 4, 5, 6, 7  # P_BG..P_BG+2
P_INV_S = 10  # 1 / min(H, W): pixel centres by multiplication (a division per pixel costs ~15 cycles)
N_PRM = 16
#: Squared edge lengths below these count as points (see fragment._face_terms).
EDGE2_MIN_F32, EDGE2_MIN_F64 = 1e-16, 1e-30
#: Bound on softmax exponents in the backward (exp(30) is finite in float32).
EXP_ARG_MAX = 30.0
# Integer sizes in ``dims``.
D_B, D_F, D_H, D_W, D_R, D_TH, D_TW = 0, 1, 2, 3, 4, 5, 6
D_LOG_GX, D_LOG_GY = 7, 8  # log2 of the tile grid's padded width and height (see tile_grid)
N_DIMS = 9


class Dims(NamedTuple):
    """The integer sizes written to ``dims``, in its layout (field i is ``dims[i]``, the ``D_*``)."""

    B: int
    F: int
    H: int
    W: int
    R: int  # surface texture resolution (R*R texels), 0 otherwise
    TH: int  # UV image height, 0 otherwise
    TW: int
    log_gx: int
    log_gy: int


assert Dims._fields.index("log_gy") == D_LOG_GY and len(Dims._fields) == N_DIMS


def tile_grid(height: int, width: int) -> tuple[int, int]:
    """log2 of the tile grid's columns and rows: tiles per side rounded up to a power of two, so
    that the per-(tile, pixel) passes find a tile's batch element and position by shifts and masks
    (runtime integer division costs ~30 cycles per pixel); the padding tiles hold no faces."""
    ntx, nty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    return max(ntx - 1, 0).bit_length(), max(nty - 1, 0).bit_length()
# Per-face setup in ``fs``.
S_BOX = 0  # xmin, xmax, ymin, ymax of the box grown by the cut-off radius (empty when culled)
S_LINES = 4  # 3 edge lines (nx, ny, c), each with the triangle on its side n.p + c <= 0
S_LIM = 13  # rejection threshold for the edge-line test
S_BARY = 14  # A0, B0, A1, B1: w0 = A0 (px - x2) + B0 (py - y2), w1 = A1 (px - x2) + B1 (py - y2)
S_INVZ = 18  # 1 / z of the three corners
S_INVLEN = 21  # 1 / |edge|^2 of edges 01, 12, 20
S_FRONT = 24  # 1.0 if front-facing
S_XY = 25  # x0, y0, x1, y1, x2, y2
S_KLINE = 31  # det^2 / |edge opposite corner i|^2: inside, d^2 = min_i w_i^2 k_i (see fragment._dist2)
NS = 34

# Channels of ``aux`` (conventions.AUX_CHANNELS).
AUX_Q, AUX_N, AUX_S = (AUX_CHANNELS[name][0] for name in ("barycentrics", "normals", "screen_normals"))

# Compile-time mode codes: the index of the name in conventions' tables.
DIST_EUCLIDEAN, DIST_BARYCENTRIC, DIST_HARD = (_code("dist_func", n) for n in ("euclidean", "barycentric", "hard"))
ALPHA_PROD, ALPHA_SUM, ALPHA_HARD = (_code("aggr_func_alpha", n) for n in ("prod", "sum", "hard"))
RGB_SOFTMAX, RGB_HARD = (_code("aggr_func_rgb", n) for n in ("softmax", "hard"))
TEX_SURFACE, TEX_VERTEX, TEX_UV = (_code("texture_type", n) for n in ("surface", "vertex", "uv"))
WRAP_REPEAT, WRAP_CLAMP = (_code("texture_wrap", n) for n in ("repeat", "clamp"))


class Fields(NamedTuple):
    """Every field a call uses (see the module docstring)."""

    fv: object
    tex: object
    uv: object
    vn: object
    nfc: object
    grp: object
    fs: object
    box: object
    pbox: object
    pm: object
    psel: object
    phard: object
    pinv: object
    acc: object
    accg: object
    out: object
    outg: object
    aux: object
    prm: object
    dims: object


class Lists(NamedTuple):
    """Faces binned per tile (kernels/binning.py): tile c lists ``lst[off[c]:off[c + 1]]``."""

    off: object
    lst: object
    cell: object


class Modes(NamedTuple):
    """Compile-time switches of a call."""

    dist: int
    alpha: int
    rgb: int
    texmode: int
    wrap: int
    fill_back: bool
    groups: bool  # face groups given (group masks)
    normals: bool  # vertex normals given (aux output)
    serial: bool  # one thread (deterministic=True)

    # Which of the per-pixel sums ``compose`` reads: the passes skip the others (and their sigmoid
    # or softplus), so a silhouette-only call pays for neither colours nor the unused alpha sum.
    @property
    def log_sum(self) -> bool:
        """acc[:, 0], sum of log(1 - D) = -softplus(x): product alpha with soft distances."""
        return self.alpha == ALPHA_PROD and self.dist != DIST_HARD

    @property
    def d_sum(self) -> bool:
        """acc[:, 1], sum of D: summed alpha."""
        return self.alpha == ALPHA_SUM

