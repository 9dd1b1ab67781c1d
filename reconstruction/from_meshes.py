"""An NMR-format dataset from a folder of real meshes (a local ShapeNetCore copy, or any meshes laid
out like it).

    python -m reconstruction.make_dataset --meshes DIR --out OUT [--split auto] [--classes all] [--skip-bad]

Layouts found under ``DIR/<synset>/`` (synset = one of the 13 class ids, e.g. ``03001627``):
ShapeNetCore v1 ``<model_id>/model.obj``, v2 ``<model_id>/models/model_normalized.obj``, or plain
``<model_id>.obj`` files. Each model is read with its MTL materials (``Kd`` colours and ``map_Kd``
textures, SoftRas's rules, :mod:`taichi_softras.io`), kept in its own frame (ShapeNet's are
normalized to fit the dataset's cameras), and

* rendered like the NMR/SoftRas set: 24 look_at views at distance 2.732, elevation 30 deg, azimuth
  -15 deg * v, viewing angle 15 deg, 64^2 RGBA uint8, lit by SoftRas's default ambient 0.5 +
  directional 0.5 from +y, through this library's ``SoftRenderer`` (SoftRas's defaults);
* voxelized at 32^3 in NMR's voxel frame by :func:`taichi_softras.voxelization.solid_voxels`
  (SoftRas's surface shell and fill, united with the centre test that keeps meshes with holes,
  repeated or flipped faces solid; on closed meshes this is exactly SoftRas's voxelization).

Splits: ``auto`` puts a model in train / val / test by a hash of its model id (70 / 10 / 20 %), so
the assignment is the same on every run and for every subset of the folder; ``train``, ``val`` or
``test`` puts every model in that split. Writes ``OUT/{synset}_{split}_images.npz`` and
``..._voxels.npz`` (:mod:`reconstruction.datasets` reads them); with ``auto`` all three splits are
written, empty ones included.
"""

from __future__ import annotations

import pathlib
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from taichi_softras.io import obj_textures, read_obj
from taichi_softras.mesh import Mesh
from taichi_softras.renderer import SoftRenderer
from taichi_softras.voxelization import solid_voxels

from . import datasets as D
from .voxels import SIZE, stored_from_xyz

SPLIT_CHOICES = ("auto",) + D.SPLITS
#: ``auto`` split fractions (train, val, test), cut on a hash of the model id.
AUTO_FRACTIONS = (0.7, 0.1, 0.2)
#: Model files inside ``DIR/<synset>/<model_id>/``, first match wins (ShapeNetCore v1, v2).
MODEL_FILES = ("model.obj", "models/model_normalized.obj")
#: Texels per face side for textured materials (SoftRas's ``load_obj`` default).
TEXTURE_RES = 4
#: Faces rendered per batch (views x faces), to bound memory on very large models.
FACES_PER_BATCH = 2_000_000


class ModelError(ValueError):
    """A model that cannot be loaded, rendered or voxelized; the message names it."""


@dataclass(frozen=True)
class Model:
    synset: str
    model_id: str
    path: pathlib.Path

    @property
    def name(self) -> str:
        return f"{self.synset}/{self.model_id}"


@dataclass
class Summary:
    """What :func:`build` did: models written per split, models skipped (name: reason)."""

    classes: list[str]
    written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in D.SPLITS})
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self, out: pathlib.Path) -> str:
        total = sum(self.written.values())
        splits = " / ".join(f"{s} {n}" for s, n in self.written.items())
        skipped = f", skipped {len(self.skipped)} bad model(s)" if self.skipped else ""
        return (f"wrote {total} models of {len(self.classes)} class(es) ({splits}){skipped} to {out} "
                f"in {self.seconds:.1f} s")


def auto_split(model_id: str) -> str:
    """train / val / test for a model id, by CRC-32 of the id (stable across runs and platforms)."""
    u = zlib.crc32(model_id.encode()) / 2**32
    train, val, _ = AUTO_FRACTIONS
    return "train" if u < train else "val" if u < train + val else "test"


def class_folders(root: str | pathlib.Path, classes: str | list[str] = "all") -> list[str]:
    """The class ids to build from ``root``: 'all' (every class folder present) or ids/names, each
    of which must have a folder. ValueError naming what was expected otherwise."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"meshes: {str(root)!r} is not a directory")
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in D.CLASS_NAMES)
    if classes in ("all", ["all"]):
        if not present:
            raise ValueError(
                f"meshes: no class folder in {str(root)!r}; expected ShapeNet synset folders such as "
                f"{root / '03001627'} (chair), named by one of {', '.join(D.CLASS_IDS)}"
            )
        return present
    wanted = D.parse_class_ids(classes)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ValueError(f"meshes: no folder for class(es) {missing} in {str(root)!r} (found {present})")
    return wanted


def find_models(root: str | pathlib.Path, synset: str) -> list[Model]:
    """The models of one class folder (see the module docstring), sorted by model id. A model
    folder without a model file is listed with a missing path (reported when built)."""
    models = []
    for entry in sorted((pathlib.Path(root) / synset).iterdir()):
        if entry.is_dir():
            found = [entry / m for m in MODEL_FILES if (entry / m).is_file()]
            models.append(Model(synset, entry.name, found[0] if found else entry / MODEL_FILES[0]))
        elif entry.suffix.lower() == ".obj":
            models.append(Model(synset, entry.stem, entry))
    return models


def load_model(path: pathlib.Path) -> Mesh:
    """A model file as a surface-textured Mesh (its materials' Kd / map_Kd; white without an MTL)."""
    obj = read_obj(path)
    textures = obj_textures(obj, path, TEXTURE_RES, "surface") if obj.materials or obj.mtl_missing else None
    vertices = torch.from_numpy(obj.vertices)
    if not bool(torch.isfinite(vertices).all()):
        raise ValueError("vertices contain NaN or inf")
    return Mesh(vertices, torch.from_numpy(obj.faces), textures, texture_res=1 if textures is None else TEXTURE_RES)


def dataset_renderer() -> SoftRenderer:
    """SoftRas's SoftRenderer in the dataset's camera setup (eyes set per batch of views)."""
    return SoftRenderer(image_size=D.IMAGE_SIZE, camera_mode="look_at", viewing_angle=D.VIEWING_ANGLE)


def render_views(mesh: Mesh, renderer: SoftRenderer | None = None) -> np.ndarray:
    """uint8 RGBA ``(24, 4, 64, 64)`` of a batch-1 mesh from the 24 dataset views."""
    renderer = renderer or dataset_renderer()
    per_batch = max(1, min(D.NUM_VIEWS, FACES_PER_BATCH // max(mesh.num_faces, 1)))
    out = []
    with torch.no_grad():
        for start in range(0, D.NUM_VIEWS, per_batch):
            views = torch.arange(start, min(start + per_batch, D.NUM_VIEWS))
            n = len(views)
            batch = Mesh(mesh.vertices.expand(n, -1, -1), mesh.faces.expand(n, -1, -1),
                         mesh.textures.expand(n, -1, -1, -1), texture_type="surface")
            renderer.transform.set_eyes(D.view_eyes(views))
            out.append(renderer.render_mesh(batch))
    return (torch.cat(out).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def model_voxels(mesh: Mesh) -> np.ndarray:
    """bool ``(32, 32, 32)`` in the stored NMR order: vertices mapped by v * 31/32 + 0.5 into the
    unit cube, :func:`solid_voxels` at 32^3, NMR's axis order."""
    fv = mesh.face_vertices * ((SIZE - 1) / SIZE) + 0.5
    return stored_from_xyz(solid_voxels(fv.contiguous(), SIZE) > 0)[0].numpy()


def process(model: Model, renderer: SoftRenderer) -> tuple[np.ndarray, np.ndarray]:
    """(images, voxels) of one model; :class:`ModelError` naming it if it cannot be loaded,
    rendered or voxelized."""
    if not model.path.is_file():
        raise ModelError(f"model {model.name}: no model file ({' or '.join(MODEL_FILES)}) in {model.path.parent}")
    try:
        mesh = load_model(model.path)
        return render_views(mesh, renderer), model_voxels(mesh)
    except (ValueError, OSError) as exc:
        raise ModelError(f"model {model.name} ({model.path}): {exc}") from exc


def build(meshes: str | pathlib.Path, out: str | pathlib.Path, split: str = "auto", classes="all",
          skip_bad: bool = False, progress: bool = True) -> Summary:
    """Render and voxelize every model under ``meshes`` and write the NMR-format files to ``out``.
    A bad model raises :class:`ModelError` naming it, unless ``skip_bad`` (then it is listed in the
    summary's ``skipped``). Returns the :class:`Summary`."""
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split: expected one of {SPLIT_CHOICES}, got {split!r}")
    start = time.perf_counter()
    summary = Summary(class_folders(meshes, classes))
    models = {synset: find_models(meshes, synset) for synset in summary.classes}
    renderer = dataset_renderer()
    out = pathlib.Path(out)
    with tqdm(total=sum(map(len, models.values())), desc="models", unit="model", disable=not progress) as bar:
        for synset, members in models.items():
            bar.set_postfix_str(D.CLASS_NAMES[synset])
            images = np.zeros((len(members), D.NUM_VIEWS, 4, D.IMAGE_SIZE, D.IMAGE_SIZE), np.uint8)
            voxels = np.zeros((len(members),) + (SIZE,) * 3, bool)
            ok = np.zeros(len(members), bool)
            for i, model in enumerate(members):
                try:
                    images[i], voxels[i] = process(model, renderer)
                    ok[i] = True
                except ModelError as exc:
                    if not skip_bad:
                        raise ModelError(f"{exc} (pass --skip-bad to skip bad models)") from exc
                    summary.skipped[model.name] = str(exc)
                bar.update()
            splits = np.array([split if split != "auto" else auto_split(m.model_id) for m in members])
            for name in D.SPLITS if split == "auto" else (split,):
                keep = ok & (splits == name)
                D.save_class_split(out, synset, name, images[keep], voxels[keep])
                summary.written[name] += int(keep.sum())
    summary.seconds = time.perf_counter() - start
    return summary
