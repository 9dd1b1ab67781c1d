"""Lighting functions and modules, normals (SoftRas semantics)."""

import pytest
import torch

from taichi_softras import DATA_DIR
from taichi_softras.geometry import face_normals, face_vertices, vertex_normals
from taichi_softras.lighting import ambient_lighting, directional_lighting
from taichi_softras.mesh import Mesh
from taichi_softras.renderer import AmbientLighting, DirectionalLighting, Lighting


def test_face_normal_orientation():
    tri = torch.tensor([[[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]])
    assert torch.allclose(face_normals(tri), torch.tensor([[[0.0, 0.0, 1.0]]]))
    assert torch.allclose(face_normals(tri[:, :, [0, 2, 1]]), torch.tensor([[[0.0, 0.0, -1.0]]]))
    degenerate = torch.zeros(1, 1, 3, 3)
    assert torch.isfinite(face_normals(degenerate)).all()


def test_vertex_normals_are_area_weighted_and_radial_on_a_sphere():
    # Two faces sharing vertex 0: normals +z (area 2) and +x (area 0.5) -> direction (0.5, 0, 2).
    v = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 1], [0, 1, 0]]])
    f = torch.tensor([[[0, 1, 2], [0, 4, 3]]])
    expected = torch.tensor([0.5, 0.0, 2.0]) / torch.tensor([0.5, 0.0, 2.0]).norm()
    assert torch.allclose(vertex_normals(v, f)[0, 0], expected, atol=1e-6)
    sphere = Mesh.from_obj(DATA_DIR / "sphere_642.obj")
    n = vertex_normals(sphere.vertices, sphere.faces)
    radial = sphere.vertices / sphere.vertices.norm(dim=-1, keepdim=True)
    assert (n * radial).sum(-1).min() > 0.99  # outward and close to radial


def test_face_vertices_gathers_corners():
    v = torch.arange(12.0).reshape(1, 4, 3)
    f = torch.tensor([[[3, 1, 0]]])
    assert torch.equal(face_vertices(v, f)[0, 0], v[0, [3, 1, 0]])
    with pytest.raises(ValueError, match="faces"):
        face_vertices(v, torch.tensor([[[0, 1, 2]], [[0, 1, 2]]]))


def test_ambient_and_directional():
    light = torch.zeros(2, 3, 3)
    amb = ambient_lighting(light, 0.3, torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]]))  # per-batch colours
    assert torch.allclose(amb[0, 1], torch.tensor([0.3, 0.15, 0.0])) and torch.allclose(amb[1, 2], torch.tensor([0.0, 0.3, 0.3]))
    assert torch.equal(light, torch.zeros(2, 3, 3))  # not modified in place
    normals = torch.tensor([[[0.0, 1, 0], [0, -1, 0], [0.6, 0.8, 0]]]).expand(2, 3, 3)
    d = directional_lighting(torch.zeros(2, 3, 3), normals, 0.5, (1, 1, 1), (0, 1, 0))
    assert torch.allclose(d[0, :, 0], torch.tensor([0.5, 0.0, 0.4]))  # relu(n . l) * I
    with pytest.raises(ValueError, match="light_direction"):
        directional_lighting(torch.zeros(1, 3, 3), normals[:1], 0.5, (1, 1, 1), (0, 1))


def test_lighting_module_surface_and_vertex_modes():
    # One face facing +y: lit = 0.5 + 0.5 = 1; flipped (facing -y): 0.5 (ambient only).
    v = torch.tensor([[[0.0, 0, 0], [0, 0, 1], [1, 0, 0]]])
    up = Mesh(v, torch.tensor([[0, 1, 2]]), torch.full((1, 4, 3), 0.8))
    lit = Lighting()(up)
    assert torch.allclose(lit.textures, torch.full((1, 1, 4, 3), 0.8))
    down = Mesh(v, torch.tensor([[0, 2, 1]]), torch.full((1, 4, 3), 0.8))
    assert torch.allclose(Lighting()(down).textures, torch.full((1, 1, 4, 3), 0.4))
    assert torch.allclose(up.textures, torch.full((1, 1, 4, 3), 0.8))  # input mesh untouched
    colours = Lighting(intensity_ambient=0.2, color_ambient=(1, 0, 0), intensity_directionals=1.0)(up).textures
    assert torch.allclose(colours[0, 0, 0], torch.tensor([0.96, 0.8, 0.8]))
    vmesh = Mesh(v, torch.tensor([[0, 1, 2]]), torch.ones(1, 3, 3), texture_type="vertex")
    assert torch.allclose(Lighting("vertex")(vmesh).textures, torch.ones(1, 3, 3))


def test_lighting_modules_and_gradients():
    assert torch.allclose(AmbientLighting(0.25)(torch.zeros(1, 2, 3)), torch.full((1, 2, 3), 0.25))
    n = torch.tensor([[[0.0, 0.0, 1.0]]])
    assert torch.allclose(DirectionalLighting(1.0, light_direction=(0, 0, 1))(torch.zeros(1, 1, 3), n), torch.ones(1, 1, 3))
    # Lit textures are differentiable w.r.t. the vertices (through the normals).
    v = torch.tensor([[[0.0, 0, 0], [0, 0.3, 1], [1, 0.2, 0]]], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2]])
    tex = torch.rand(1, 1, 4, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: Lighting()(Mesh(x, f, tex)).textures, (v,))
