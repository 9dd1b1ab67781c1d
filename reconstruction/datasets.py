"""The NMR/SoftRas ShapeNet format: per class and split, ``{class_id}_{split}_images.npz`` holding
uint8 renders ``(N, 24, 4, 64, 64)`` (RGBA, 24 look_at views) and ``{class_id}_{split}_voxels.npz``
holding bool ``(N, 32, 32, 32)`` occupancy in the NMR voxel frame (see :mod:`reconstruction.voxels`).
Each npz holds a single array (any key; NMR's files use ``arr_0``).
"""

from __future__ import annotations

import pathlib
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from taichi_softras.cameras import get_points_from_angles

#: The 13 ShapeNet classes of the NMR/SoftRas benchmark, id -> short name (PAPERS.md's table order).
CLASS_NAMES = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "loudspeaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "watercraft",
}
CLASS_IDS = tuple(CLASS_NAMES)
SPLITS = ("train", "val", "test")

NUM_VIEWS = 24
IMAGE_SIZE = 64
VOXEL_SIZE = 32
#: The dataset's cameras: look_at views at this distance and elevation, azimuth -15 deg * view.
DISTANCE = 2.732
ELEVATION = 30.0
AZIMUTH_STEP = -15.0
VIEWING_ANGLE = 15.0


def view_eyes(view_ids: torch.Tensor) -> torch.Tensor:
    """Eye positions ``(B, 3)`` (float32) of the dataset's cameras for view indices ``(B,)``."""
    view_ids = torch.as_tensor(view_ids)
    az = view_ids.to(torch.float32) * AZIMUTH_STEP
    return get_points_from_angles(
        torch.full_like(az, DISTANCE), torch.full_like(az, ELEVATION), az
    ).to(torch.float32)


def parse_class_ids(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``'all'``, a comma-separated string or a list of ids/names -> validated class ids."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    if items == ["all"]:
        return list(CLASS_IDS)
    by_name = {name: cid for cid, name in CLASS_NAMES.items()}
    out = []
    for item in (s.strip() for s in items):
        cid = by_name.get(item, item)
        if cid not in CLASS_NAMES:
            raise ValueError(
                f"classes: unknown class {item!r}; expected 'all' or ids/names among "
                f"{', '.join(f'{k} ({v})' for k, v in CLASS_NAMES.items())}"
            )
        out.append(cid)
    return out


def _load_array(path: pathlib.Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"dataset file missing: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) != 1:
                raise ValueError(f"dataset file {path}: expected one array, found keys {keys}")
            return npz[keys[0]]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("dataset file"):
            raise
        raise ValueError(f"dataset file {path} is corrupt or not an npz archive: {exc}") from exc


def image_path(directory: str | pathlib.Path, class_id: str, split: str) -> pathlib.Path:
    return pathlib.Path(directory) / f"{class_id}_{split}_images.npz"


def voxel_path(directory: str | pathlib.Path, class_id: str, split: str) -> pathlib.Path:
    return pathlib.Path(directory) / f"{class_id}_{split}_voxels.npz"


def load_class_split(directory: str | pathlib.Path, class_id: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one class/split: images uint8 ``(N, 24, 4, 64, 64)``, voxels bool
    ``(N, 32, 32, 32)``. Any problem raises one error naming the offending file."""
    if class_id not in CLASS_NAMES:
        raise ValueError(f"class_id: unknown class {class_id!r}; expected one of {list(CLASS_IDS)}")
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    ipath, vpath = image_path(directory, class_id, split), voxel_path(directory, class_id, split)
    images, voxels = _load_array(ipath), _load_array(vpath)
    want = (NUM_VIEWS, 4, IMAGE_SIZE, IMAGE_SIZE)
    if images.dtype != np.uint8 or images.ndim != 5 or images.shape[1:] != want:
        raise ValueError(
            f"dataset file {ipath}: expected uint8 (N, {', '.join(map(str, want))}), "
            f"got {images.dtype} {images.shape}"
        )
    vwant = (VOXEL_SIZE,) * 3
    if voxels.dtype not in (np.bool_, np.uint8, np.int32) or voxels.ndim != 4 or voxels.shape[1:] != vwant:
        raise ValueError(
            f"dataset file {vpath}: expected bool (N, 32, 32, 32), got {voxels.dtype} {voxels.shape}"
        )
    if voxels.shape[0] != images.shape[0]:
        raise ValueError(
            f"dataset file {vpath}: holds {voxels.shape[0]} shapes but {ipath} holds {images.shape[0]}"
        )
    return images, voxels.astype(bool)


def save_class_split(
    directory: str | pathlib.Path, class_id: str, split: str, images: np.ndarray, voxels: np.ndarray
) -> None:
    """Write one class/split in the NMR format (compressed npz, key ``arr_0``)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(image_path(directory, class_id, split), np.asarray(images, dtype=np.uint8))
    np.savez_compressed(voxel_path(directory, class_id, split), np.asarray(voxels, dtype=bool))


@dataclass
class ShapeNetSplit:
    """All shapes of some classes for one split, in memory.

    images: uint8 ``(N, 24, 4, 64, 64)``; voxels: bool ``(N, 32, 32, 32)``; labels: int64 ``(N,)``
    indices into ``class_ids``.
    """

    class_ids: list[str]
    images: torch.Tensor
    voxels: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def load(cls, directory: str | pathlib.Path, class_ids: list[str], split: str) -> "ShapeNetSplit":
        imgs, voxs, labels = [], [], []
        for i, cid in enumerate(class_ids):
            im, vx = load_class_split(directory, cid, split)
            imgs.append(torch.from_numpy(im))
            voxs.append(torch.from_numpy(vx))
            labels.append(torch.full((im.shape[0],), i, dtype=torch.int64))
        return cls(list(class_ids), torch.cat(imgs), torch.cat(voxs), torch.cat(labels))

    def __len__(self) -> int:
        return self.images.shape[0]

    def views(self, shape_idx: torch.Tensor, view_ids: torch.Tensor) -> torch.Tensor:
        """Float RGBA in [0, 1], ``(B, 4, 64, 64)`` for shapes ``(B,)`` seen from views ``(B,)``."""
        return self.images[shape_idx, view_ids].to(torch.float32) / 255.0


def view_pairs(batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two different random views per shape (SoftRas's training pairs): ``(B,)``, ``(B,)``."""
    a = torch.randint(0, NUM_VIEWS, (batch_size,), generator=generator)
    b = (a + torch.randint(1, NUM_VIEWS, (batch_size,), generator=generator)) % NUM_VIEWS
    return a, b


__all__ = [
    "CLASS_NAMES", "CLASS_IDS", "SPLITS", "NUM_VIEWS", "IMAGE_SIZE", "VOXEL_SIZE", "DISTANCE",
    "ELEVATION", "AZIMUTH_STEP", "VIEWING_ANGLE", "view_eyes", "parse_class_ids", "load_class_split",
    "save_class_split", "ShapeNetSplit", "view_pairs", "image_path", "voxel_path",
]
