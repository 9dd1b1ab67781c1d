"""The library inside real programs: lazy import, the user's own ti.init, ti.reset, forked and
spawned DataLoader workers, threads, and backend choice. Each scenario that needs a fresh Taichi
runtime runs as its own Python process."""

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
import torch

import taichi_softras as sr
from taichi_softras import runtime

ROOT = Path(__file__).resolve().parents[1]

# A small scene every script renders; prints the image's checksum so processes can be compared.
SCENE = """
import torch, taichi_softras as sr
def scene():
    g = torch.Generator().manual_seed(0)
    fv = torch.rand(2, 40, 3, 3, generator=g) * 1.6 - 0.8
    fv[..., 2] += 2.5
    return fv, torch.rand(2, 40, 1, 3, generator=g)
def render(fv=None, tex=None):
    if fv is None:
        fv, tex = scene()
    return sr.soft_rasterize(fv, tex, image_size=24, sigma_val=1e-3, gamma_val=1e-2)
"""


def run_script(body: str, timeout: float = 300, env: dict | None = None) -> str:
    """Run SCENE + body as a script file (Taichi reads kernels' source, so not ``python -c``)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scenario.py"
        script.write_text(SCENE + textwrap.dedent(body))
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode == 0, f"script failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _reference_image():
    ns: dict = {}
    exec(SCENE, ns)
    return ns["render"]()


def test_import_does_not_import_taichi_and_first_call_prints_no_banner_nor_loads_dynamo():
    out = run_script(
        """
        import sys
        heavy = [m for m in ("taichi", "trimesh", "skimage", "scipy", "matplotlib", "torch._dynamo") if m in sys.modules]
        assert not heavy, f"import taichi_softras imported {heavy}"
        img = render()
        assert "taichi" in sys.modules
        # torch.compiler.disable would import TorchDynamo (1.4 s); nothing traces without it.
        assert "torch._dynamo" not in sys.modules, "the first call imported TorchDynamo"
        print("RESULT", float(img.sum()))
        """
    )
    assert "[Taichi]" not in out  # neither the version banner nor "Starting on arch"
    assert "RESULT" in out


def test_users_own_ti_init_is_kept_and_their_fields_keep_working():
    out = run_script(
        """
        import taichi as ti
        ti.init(arch=ti.cpu)
        x = ti.field(ti.f32, shape=8)

        @ti.kernel
        def fill(v: ti.f32):
            for i in x:
                x[i] = v * i

        fill(2.0)
        prog = ti.lang.impl.get_runtime().prog
        img = render()
        assert ti.lang.impl.get_runtime().prog is prog, "the library re-initialized Taichi"
        fill(3.0)                                  # the user's kernel and field still work
        assert x.to_numpy().tolist() == [3.0 * i for i in range(8)]
        y = ti.field(ti.f32, shape=4)              # and new fields can be made afterwards
        y.fill(1.5)
        assert y.to_numpy().tolist() == [1.5] * 4
        img2 = render()
        assert torch.equal(img, img2)
        print("SUM", repr(float(img.double().sum())))
        """
    )
    assert f"SUM {float(_reference_image().double().sum())!r}" in out


def test_reset_by_the_user_rebuilds_pooled_buffers():
    out = run_script(
        """
        import taichi as ti
        a = render()
        ti.reset()
        b = render()                               # the library starts a runtime again
        ti.reset()
        ti.init(arch=ti.cpu)                        # the user's own runtime after a reset
        c = render()
        fv, tex = scene()
        v = fv.clone().requires_grad_()
        render(v, tex).sum().backward()
        ti.reset()
        w = fv.clone().requires_grad_()
        render(w, tex).sum().backward()
        assert torch.equal(a, b) and torch.equal(a, c)
        assert torch.allclose(v.grad, w.grad, rtol=1e-5, atol=1e-6)
        print("OK")
        """
    )
    assert "OK" in out


def test_backward_after_a_reset_between_forward_and_backward():
    run_script(
        """
        import taichi as ti
        fv, tex = scene()
        v = fv.clone().requires_grad_()
        img = render(v, tex)
        ti.reset()                                  # the forward's buffers died with the runtime
        img.sum().backward()
        w = fv.clone().requires_grad_()
        render(w, tex).sum().backward()
        assert torch.allclose(v.grad, w.grad, rtol=1e-5, atol=1e-6)
        """
    )


# fork is the case that hung; spawn (a fresh interpreter per worker, ~1 min here) runs in the slow suite
@pytest.mark.parametrize("start", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_dataloader_workers_render_after_the_parent_did(start):
    """Workers (fork: inheriting the parent's initialized runtime; spawn: fresh) render the same
    images as the parent. A hang would hit the subprocess timeout."""
    out = run_script(
        f"""
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Views(Dataset):
            def __len__(self):
                return 6
            def __getitem__(self, i):
                fv, tex = scene()
                return render(fv[i % 2 : i % 2 + 1], tex[i % 2 : i % 2 + 1])[0]

        if __name__ == "__main__":
            parent = render()                      # the parent has rendered before the workers start
            loader = DataLoader(Views(), batch_size=2, num_workers=2, multiprocessing_context="{start}")
            images = torch.cat(list(loader))
            for i in range(6):
                assert torch.equal(images[i], parent[i % 2]), i
            print("OK", len(images))
        """,
        timeout=240,
    )
    assert "OK 6" in out


def test_threads_serialize_and_match_sequential_results():
    fv, tex = _scene_tensors()
    expected = []
    for i in range(25):
        v = (fv + 0.01 * i).requires_grad_()
        sr.soft_rasterize(v, tex, image_size=24, sigma_val=1e-3, gamma_val=1e-2, deterministic=True).square().sum().backward()
        expected.append(v.grad)
    results: dict = {}
    errors: list = []

    def worker(k):
        try:
            for i in range(25):
                v = (fv + 0.01 * i).requires_grad_()
                sr.soft_rasterize(v, tex, image_size=24, sigma_val=1e-3, gamma_val=1e-2, deterministic=True).square().sum().backward()
                results[(k, i)] = v.grad
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (k, i), grad in results.items():
        assert torch.equal(grad, expected[i]), (k, i)
    assert len(results) == 50


def _scene_tensors():
    ns: dict = {}
    exec(SCENE, ns)
    return ns["scene"]()


def test_use_chooses_the_backend_before_first_use_and_refuses_after():
    out = run_script(
        """
        from taichi_softras import runtime
        import pytest
        with pytest.raises(ValueError, match="arch must be one of"):
            runtime.use("opengl")
        runtime.use("cpu")
        render()
        assert runtime.active_arch() == "cpu"
        with pytest.raises(RuntimeError, match="already runs on 'cpu'"):
            runtime.use("vulkan")
        print("OK")
        """
    )
    assert "OK" in out


def test_environment_variable_is_checked():
    done = subprocess.run([sys.executable, "-c", SCENE + "\nrender()"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TAICHI_SOFTRAS_ARCH": "cdua"}, timeout=120)
    assert done.returncode != 0 and "TAICHI_SOFTRAS_ARCH must be one of" in done.stderr


def test_cpu_threads_variable_sizes_taichis_thread_pool_and_is_checked():
    out = run_script(
        """
        import taichi as ti
        img = render()
        print(ti.lang.impl.current_cfg().cpu_max_num_threads, float(img.sum()))
        """,
        env={"TAICHI_SOFTRAS_CPU_THREADS": "1", "TAICHI_SOFTRAS_ARCH": "cpu"},
    )
    threads, total = out.split()
    assert threads == "1" and float(total) == pytest.approx(_reference_image().sum().item(), rel=1e-6)
    done = subprocess.run([sys.executable, "-c", SCENE + "\nrender()"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TAICHI_SOFTRAS_CPU_THREADS": "two", "TAICHI_SOFTRAS_ARCH": "cpu"},
                          timeout=120)
    assert done.returncode != 0 and "TAICHI_SOFTRAS_CPU_THREADS must be a positive integer, got 'two'" in done.stderr


def test_tensor_on_the_wrong_device_names_the_fix():
    arch = runtime.ensure_initialized()
    other = torch.device("cpu" if arch == "cuda" else "cuda")
    with pytest.raises(ValueError, match=rf"face_vertices is on device {other.type}.*Move the tensors with \.to\('{'cuda' if arch == 'cuda' else 'cpu'}'\)"):
        runtime.check_device(other, "face_vertices")


def test_vulkan_takes_cpu_tensors_and_refuses_float64_rasterization_clearly():
    if runtime.ensure_initialized() != "vulkan":
        ok = subprocess.run([sys.executable, "-c", "import taichi as ti; ti.init(arch=ti.vulkan, enable_fallback=False)"],
                            capture_output=True, timeout=120).returncode == 0
        if not ok:
            pytest.skip("no Vulkan device here")
    out = run_script(
        """
        import pytest
        from taichi_softras import runtime
        runtime.use("vulkan")
        img = render()                               # CPU tensors, copied to the device by Taichi
        assert img.device.type == "cpu" and runtime.active_arch() == "vulkan"
        fv, tex = scene()
        with pytest.raises(TypeError, match="float64 inputs to soft_rasterize need 64-bit floats on the 'vulkan' backend"):
            render(fv.double(), tex.double())
        import os
        pid = os.fork()
        if pid == 0:  # a forked child cannot carry Vulkan device state: a clear error, not a hang
            try:
                render()
            except RuntimeError as exc:
                os._exit(3 if "multiprocessing_context='spawn'" in str(exc) else 4)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] >> 8 == 3
        print("SUM", repr(float(img.double().sum())))
        """
    )
    ref = float(_reference_image().double().sum())
    got = float(out.split("SUM ")[1].split()[0])
    assert abs(got - ref) <= 1e-3 * abs(ref)
