"""Reconstruction networks, their losses and the voxelizations used for evaluation."""

import numpy as np
import pytest
import torch

from reconstruction import evaluate, make_dataset, shapes
from reconstruction.config import TrainConfig
from reconstruction.models import ColourGenerator, Encoder, ImplicitModel, MeshModel
from reconstruction.train import MeshObjective
from reconstruction.voxels import voxel_iou

SMALL = dict(widths=(8, 16, 32), hidden=64, code=32)


def test_encoder_and_mesh_model_shapes():
    torch.manual_seed(0)
    assert Encoder((8, 16, 32), 64, 32)(torch.rand(3, 4, 64, 64)).shape == (3, 32)
    model = MeshModel(**SMALL, decoder_hidden=(64, 128), colour=True)
    v, f, c = model(torch.rand(2, 4, 64, 64))
    assert v.shape == (2, 642, 3) and f.shape == (2, 1280, 3) and c.shape == (2, 1280, 3)
    assert MeshModel(**SMALL, decoder_hidden=(64, 128))(torch.rand(2, 4, 64, 64))[2] is None


def test_decoder_is_bounded_and_starts_from_the_template():
    torch.manual_seed(0)
    model = MeshModel(**SMALL, decoder_hidden=(64, 128))
    dec = model.decoder
    for layer in (dec.fc_bias, dec.fc_centroid):
        torch.nn.init.zeros_(layer.weight), torch.nn.init.zeros_(layer.bias)
    v, _, _ = model(torch.rand(2, 4, 64, 64))
    torch.testing.assert_close(v, (dec.vertices_base * 0.5).expand(2, -1, -1))  # radius-0.25 sphere
    for layer in (dec.fc_bias, dec.fc_centroid):
        torch.nn.init.normal_(layer.weight, std=100.0)
    v, _, _ = model(torch.rand(2, 4, 64, 64) * 10)
    assert v.abs().max() <= 0.5  # any displacement stays inside the voxel frame's unit box


def test_colour_generator_picks_image_colours():
    torch.manual_seed(0)
    gen = ColourGenerator(num_faces=10, dim_in=8, palette=4)
    images = torch.zeros(2, 4, 64, 64)
    images[0, :3] = torch.tensor([0.2, 0.5, 0.9])[:, None, None]  # a flat image: every colour is its colour
    images[1, :3] = torch.rand(3, 64, 64)
    c = gen(torch.randn(2, 8), images)
    assert c.shape == (2, 10, 3)
    torch.testing.assert_close(c[0], torch.tensor([0.2, 0.5, 0.9]).expand(10, 3))
    assert (c[1] >= 0).all() and (c[1] <= 1).all()


def test_implicit_model_shapes_and_conditioning():
    torch.manual_seed(0)
    model = ImplicitModel(**SMALL, mlp_width=16, mlp_depth=3)
    pts = torch.rand(2, 50, 3) - 0.5
    phi = model(torch.rand(2, 4, 64, 64), pts)
    assert phi.shape == (2, 50) and ((phi > 0) & (phi < 1)).all()
    phi2, code = model(torch.rand(2, 4, 64, 64), pts, return_code=True)
    assert code.shape == (2, 32) and torch.equal(phi2, model.field(code, pts))
    assert not torch.allclose(model.field(code, pts), model.field(code.flip(0), pts))  # the code matters


def test_mesh_objective_fits_one_batch():
    """A few Adam steps on one batch lower the multi-view silhouette loss (gradients flow from the
    rasterizer through the decoder into the encoder)."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="mesh", **SMALL, decoder_hidden=(64, 128), lr=1e-3)
    model = MeshModel(**SMALL, decoder_hidden=(64, 128))
    objective = MeshObjective(cfg, model)
    shape = shapes.random_shape("02958343", np.random.default_rng(0))  # a car
    rgba = torch.from_numpy(make_dataset.render_shape(shape)).float() / 255
    va, vb = torch.tensor([0, 5]), torch.tensor([9, 17])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for _ in range(15):
        terms = objective(model, rgba[va], rgba[vb], va, vb, None, None)
        opt.zero_grad()
        terms["loss"].backward()
        assert model.encoder.conv[0].weight.grad.abs().sum() > 0
        opt.step()
        losses.append(terms["silhouette"].item())
    assert losses[-1] < 0.9 * losses[0]


def test_mesh_voxels_match_the_ground_truth_voxelizer():
    """A box mesh voxelized like SoftRas's evaluation equals the generator's analytic voxels (same
    NMR frame and axis order)."""
    part = shapes.box((0.05, -0.1, 0.12), (0.2, 0.3, 0.15), np.ones(3))
    truth = make_dataset.voxelize_shape(shapes.Shape([part]))
    v, f = part.mesh()
    pred = evaluate.mesh_voxels(v[None], f[None])[0].numpy()
    assert pred.shape == (32, 32, 32)
    np.testing.assert_array_equal(pred, truth)


def test_field_meshes_voxelize_like_the_shape():
    """Marching cubes of an occupancy field at the cell corners, voxelized, agrees with the
    analytic voxels of the same solid."""
    ell = shapes.ell((0.1, 0.0, -0.05), (0.3, 0.2, 0.25), np.ones(3))
    truth = torch.from_numpy(make_dataset.voxelize_shape(shapes.Shape([ell])))
    pts = evaluate.corner_points()
    field = torch.sigmoid(40 * (1 - (((pts - torch.tensor([0.1, 0.0, -0.05])) / torch.tensor([0.3, 0.2, 0.25])) ** 2).sum(-1)))
    (v, f), = evaluate.field_meshes(field.reshape(1, 33, 33, 33))
    pred = evaluate.mesh_voxels(v[None], f[None])
    assert voxel_iou(pred, truth[None]).item() > 0.9
    (v, f), = evaluate.field_meshes(torch.zeros(1, 33, 33, 33))
    assert v.shape == (0, 3) and f.shape == (0, 3)


def test_field_voxels_match_the_ground_truth_voxelizer():
    """An occupancy field sampled at cell corners and centres gives the analytic voxels of the same
    solid, also for a solid that fills the frame up to its border."""
    for centre, radii in (((0.1, 0.0, -0.05), (0.3, 0.2, 0.25)), ((0.0, 0.0, 0.0), (0.7, 0.3, 0.7))):
        ell = shapes.ell(centre, radii, np.ones(3))
        truth = torch.from_numpy(make_dataset.voxelize_shape(shapes.Shape([ell])))[None]

        def phi(p):
            return torch.sigmoid(60 * (1 - (((p - torch.tensor(centre)) / torch.tensor(radii)) ** 2).sum(-1)))

        pred = evaluate.field_voxels(phi(evaluate.corner_points()).reshape(1, 33, 33, 33),
                                     phi(evaluate.centre_points()).reshape(1, 32, 32, 32))
        assert voxel_iou(pred, truth).item() > 0.9


def test_mesh_objective_extra_views_render_every_view_and_keep_softras_scale():
    """mesh_views = 2 is SoftRas's sum of the IoU losses of views a and b; more views render the
    same mesh in each and the silhouette term is twice the mean of their IoU losses."""
    from reconstruction import datasets as D
    from reconstruction import objectives
    from taichi_softras.losses import iou_loss

    shape = shapes.random_shape("02958343", np.random.default_rng(1))
    images = torch.from_numpy(make_dataset.render_shape(shape))[None]
    data = D.ShapeNetSplit(["02958343"], images, torch.zeros(1, 32, 32, 32, dtype=torch.bool), torch.zeros(1).long())
    model = MeshModel(**SMALL, decoder_hidden=(64, 128)).eval()
    idx, va, vb = torch.tensor([0, 0]), torch.tensor([0, 5]), torch.tensor([9, 17])
    img_a, img_b = data.views(idx, va), data.views(idx, vb)
    calls = []
    real_render = objectives.render

    def spy(vertices, faces, views, *args, **kwargs):
        calls.append(views.tolist())
        return real_render(vertices, faces, views, *args, **kwargs)

    objectives.render = spy
    try:
        with torch.no_grad():
            vertices = model(img_a)[0]
            two = MeshObjective(TrainConfig(model="mesh", **SMALL, render_size=32), model, data)
            t2 = two(model, img_a, img_b, va, vb, torch.Generator().manual_seed(0), idx)
            four = MeshObjective(TrainConfig(model="mesh", **SMALL, render_size=32, mesh_views=4), model, data)
            t4 = four(model, img_a, img_b, va, vb, torch.Generator().manual_seed(0), idx)
    finally:
        objectives.render = real_render
    assert calls[0] == [0, 5, 9, 17] and len(calls[1]) == 8 and calls[1][:4] == [0, 5, 9, 17]
    ref = lambda views: sum(  # noqa: E731
        iou_loss(real_render(vertices, model.decoder.faces[None].expand(2, -1, -1), v, lit=False, image_size=32,
                             sigma_val=1e-4, aggr_func_rgb="hard", dist_eps=1e-10)[:, 3],
                 torch.nn.functional.avg_pool2d(data.views(idx, v), 2)[:, 3]) for v in views)
    assert t2["silhouette"].item() == pytest.approx(ref([va, vb]).item(), rel=1e-5)
    views4 = [va, vb] + [torch.tensor(calls[1][4:6]), torch.tensor(calls[1][6:8])]
    assert t4["silhouette"].item() == pytest.approx(ref(views4).item() / 2, rel=1e-5)
