"""Single-view reconstruction networks.

* :class:`MeshModel` (SoftRas, ICCV'19): image encoder -> decoder deforming sphere_642 with bounded
  displacements and a centre, plus an optional colour generator ("full" variant).
* :class:`ImplicitModel` (Liu et al., NeurIPS'19): the same encoder conditioning an occupancy MLP
  phi(p | image) in [0, 1].
* :class:`VoxelModel`: the 3D-supervised "Voxel" baseline of SoftRas's table: the same encoder and a
  3D deconvolution decoder trained on the true voxels.

Both predict shapes in the canonical object frame of the dataset (the frame of its voxels).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from taichi_softras import DATA_DIR
from taichi_softras.io import load_obj

from . import datasets as D


class Encoder(nn.Module):
    """SoftRas's encoder: 3 conv blocks (5x5, stride 2, BN, ReLU) of ``widths`` channels, then two FC
    layers of ``hidden`` and a FC to the code. images ``(B, 4, S, S)`` -> code ``(B, dim_out)``."""

    def __init__(self, widths=(64, 128, 256), hidden: int = 1024, dim_out: int = 512, image_size: int = D.IMAGE_SIZE):
        super().__init__()
        layers, cin = [], 4
        for w in widths:
            layers += [nn.Conv2d(cin, w, 5, stride=2, padding=2), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.conv = nn.Sequential(*layers)
        side = math.ceil(image_size / 2 ** len(widths))
        self.fc = nn.Sequential(
            nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, dim_out), nn.ReLU(inplace=True),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(images).flatten(1))


def load_template() -> tuple[torch.Tensor, torch.Tensor]:
    """SoftRas's template sphere_642: vertices ``(642, 3)`` on the unit sphere, faces ``(1280, 3)``."""
    return load_obj(DATA_DIR / "sphere_642.obj")


class MeshDecoder(nn.Module):
    """SoftRas's decoder: code ``(B, C)`` -> vertices ``(B, 642, 3)`` inside [-0.5, 0.5]^3.

    Each template coordinate is moved in logit space (sigmoid(logit(|base|) + bias) * sign(base),
    so it never crosses the origin's plane) and the result is squeezed towards a predicted centre
    in (-1, 1)^3 so it stays inside the unit box; the final 0.5 scale maps to the voxel frame."""

    def __init__(self, dim_in: int = 512, hidden=(1024, 2048), centroid_scale: float = 0.1,
                 bias_scale: float = 1.0, template_scale: float = 0.5):
        super().__init__()
        vertices, faces = load_template()
        self.register_buffer("vertices_base", vertices * template_scale)
        self.register_buffer("faces", faces)
        self.centroid_scale, self.bias_scale = centroid_scale, bias_scale
        self.fc = nn.Sequential(nn.Linear(dim_in, hidden[0]), nn.ReLU(inplace=True),
                                nn.Linear(hidden[0], hidden[1]), nn.ReLU(inplace=True))
        self.fc_centroid = nn.Linear(hidden[1], 3)
        self.fc_bias = nn.Linear(hidden[1], vertices.shape[0] * 3)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = self.fc(code)
        centroid = torch.tanh(self.fc_centroid(h) * self.centroid_scale)[:, None, :]
        bias = (self.fc_bias(h) * self.bias_scale).view(code.shape[0], -1, 3)
        base = self.vertices_base
        sign, mag = torch.sign(base), base.abs()
        v = torch.sigmoid(torch.log(mag / (1 - mag)) + bias) * sign
        v = F.relu(v) * (1 - centroid) - F.relu(-v) * (centroid + 1) + centroid
        return v * 0.5


class ColourGenerator(nn.Module):
    """Per-face colours sampled from the input image (SoftRas's "full" model).

    ``palette`` selection maps (softmax over pixels) pick K colours from the image; each face blends
    them with its own softmax weights. code ``(B, C)``, images ``(B, 4, S, S)`` -> ``(B, F, 3)``."""

    def __init__(self, num_faces: int, dim_in: int = 512, palette: int = 16, select_size: int = 16):
        super().__init__()
        self.palette, self.select_size = palette, select_size
        # selection maps over the image pooled to select_size^2 (a full-resolution map would need a
        # dim_in x 64^2 x K layer)
        self.select = nn.Linear(dim_in, palette * select_size * select_size)
        self.blend = nn.Linear(dim_in, num_faces * palette)

    def forward(self, code: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        b = code.shape[0]
        select = torch.softmax(self.select(code).view(b, self.palette, -1), dim=-1)  # (B, K, HW)
        pooled = F.adaptive_avg_pool2d(images[:, :3], self.select_size)
        colours = torch.bmm(select, pooled.flatten(2).transpose(1, 2))  # (B, K, 3)
        blend = torch.softmax(self.blend(code).view(b, -1, self.palette), dim=-1)  # (B, F, K)
        return torch.bmm(blend, colours)


class MeshModel(nn.Module):
    """images ``(B, 4, 64, 64)`` -> (vertices ``(B, 642, 3)``, faces ``(B, 1280, 3)``, face colours
    ``(B, 1280, 3)`` or None without the colour generator)."""

    def __init__(self, widths=(64, 128, 256), hidden: int = 1024, code: int = 512,
                 decoder_hidden=(1024, 2048), colour: bool = False):
        super().__init__()
        self.encoder = Encoder(widths, hidden, code)
        self.decoder = MeshDecoder(code, decoder_hidden)
        self.colour = ColourGenerator(self.decoder.faces.shape[0], code) if colour else None

    def forward(self, images: torch.Tensor):
        code = self.encoder(images)
        vertices = self.decoder(code)
        faces = self.decoder.faces[None].expand(images.shape[0], -1, -1)
        colours = self.colour(code, images) if self.colour is not None else None
        return vertices, faces, colours


class ImplicitModel(nn.Module):
    """Occupancy network: images ``(B, 4, 64, 64)``, points ``(B, N, 3)`` -> phi ``(B, N)`` in (0, 1).

    Every hidden layer sees the image code: ``relu(W_h h + W_c code + b)`` (the code part is
    computed once per image, not once per point, which is the same as concatenating it)."""

    def __init__(self, widths=(64, 128, 256), hidden: int = 1024, code: int = 512,
                 mlp_width: int = 128, mlp_depth: int = 4):
        super().__init__()
        self.encoder = Encoder(widths, hidden, code)
        self.point_layers = nn.ModuleList(nn.Linear(3 if i == 0 else mlp_width, mlp_width) for i in range(mlp_depth))
        self.code_layers = nn.ModuleList(nn.Linear(code, mlp_width, bias=False) for _ in range(mlp_depth))
        self.out = nn.Linear(mlp_width, 1)

    def forward(self, images: torch.Tensor, points: torch.Tensor, return_code: bool = False):
        """phi ``(B, N)``, and the image codes ``(B, C)`` with ``return_code``."""
        code = self.encoder(images)
        phi = self.field(code, points)
        return (phi, code) if return_code else phi

    def field(self, code: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """phi ``(B, N)`` at points ``(B, N, 3)`` for codes ``(B, C)``."""
        h = points
        for point_layer, code_layer in zip(self.point_layers, self.code_layers):
            h = F.relu(point_layer(h) + code_layer(code)[:, None, :])
        return torch.sigmoid(self.out(h)[..., 0])


class VoxelModel(nn.Module):
    """The 3D-supervised baseline of SoftRas's table ("Voxel"): the same encoder, then a small 3D
    deconvolution decoder: code -> FC -> ``(C, 4, 4, 4)`` -> three stride-2 transposed 3D convs ->
    occupancy logits ``(B, 32, 32, 32)`` in the dataset's stored voxel order. Trained with binary
    cross-entropy on the true voxels (the only model here that sees 3D data)."""

    def __init__(self, widths=(64, 128, 256), hidden: int = 1024, code: int = 512, channels: int = 64):
        super().__init__()
        self.encoder = Encoder(widths, hidden, code)
        self.channels = channels
        # the probability above which a cell is predicted full: chosen on the training set at each
        # checkpoint (reconstruction.objectives.calibrate_voxel_level)
        self.register_buffer("level", torch.tensor(0.5))
        self.fc = nn.Sequential(nn.Linear(code, channels * 4 ** 3), nn.ReLU(inplace=True))
        c = channels
        self.deconv = nn.Sequential(
            nn.ConvTranspose3d(c, c // 2, 4, stride=2, padding=1), nn.BatchNorm3d(c // 2), nn.ReLU(inplace=True),
            nn.ConvTranspose3d(c // 2, c // 4, 4, stride=2, padding=1), nn.BatchNorm3d(c // 4), nn.ReLU(inplace=True),
            nn.ConvTranspose3d(c // 4, 1, 4, stride=2, padding=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Occupancy logits ``(B, 32, 32, 32)`` (stored order)."""
        h = self.fc(self.encoder(images)).view(images.shape[0], self.channels, 4, 4, 4)
        return self.deconv(h)[:, 0]


def build_model(cfg) -> nn.Module:
    """The network a :class:`reconstruction.config.TrainConfig` describes."""
    if cfg.model == "mesh":
        return MeshModel(cfg.widths, cfg.hidden, cfg.code, cfg.decoder_hidden, colour=cfg.lambda_colour > 0)
    if cfg.model == "voxel":
        return VoxelModel(cfg.widths, cfg.hidden, cfg.code, cfg.voxel_channels)
    return ImplicitModel(cfg.widths, cfg.hidden, cfg.code, cfg.mlp_width, cfg.mlp_depth)
