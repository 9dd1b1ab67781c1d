"""Checkpoints, resume, Ctrl-C, DistributedDataParallel (gloo) and the CLIs on a tiny dataset."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import torch
from PIL import Image

from reconstruction import datasets as D
from reconstruction import evaluate, make_dataset, predict, train
from reconstruction.checkpoint import CorruptCheckpointError, load_checkpoint, save_checkpoint
from reconstruction.config import TrainConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--widths", "4", "8", "8", "--hidden", "32", "--code", "16", "--decoder-hidden", "32", "64",
        "--mlp-width", "16", "--mlp-depth", "2", "--num-anchors", "128", "--num-rays", "64", "--probe-views", "3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    make_dataset.main(["--out", str(out), "--per-class", "4", "--classes", "car,chair"])
    return out


def _args(data_dir, out, model="mesh", steps=4, extra=()):
    return ["--model", model, "--data", str(data_dir), "--classes", "car,chair", "--out", str(out),
            "--steps", str(steps), "--batch-size", "2", "--val-every", "0", "--checkpoint-every", "2",
            "--log-every", "1", *TINY, *extra]


def _run(argv):
    cfg, resume = train.parse_args(argv)
    return train.train(cfg, resume)


def test_cosine_schedule_runs_from_lr_to_its_floor(data_dir, tmp_path):
    from reconstruction.config import COSINE_FLOOR

    cfg = TrainConfig(steps=5, lr=1e-3, lr_schedule="cosine")
    assert [cfg.lr_at(s) for s in (0, 2, 4, 9)] == pytest.approx([1e-3, 1e-3 * (1 + COSINE_FLOOR) / 2] + [1e-3 * COSINE_FLOOR] * 2)
    assert TrainConfig(steps=5, lr=1e-3).lr_at(4) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    _run(_args(data_dir, tmp_path / "c", steps=4, extra=["--lr", "1e-3", "--lr-schedule", "cosine"]))
    state = load_checkpoint(tmp_path / "c" / "checkpoint.pt")
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * COSINE_FLOOR)  # step 3 of 4: the floor


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "ck.pt"
    state = {"model": {"w": torch.arange(3.0)}, "optimizer": {}, "step": 7, "rng": {"torch": torch.get_rng_state()}}
    save_checkpoint(path, state)
    save_checkpoint(path, {**state, "step": 8})  # overwrite in place
    back = load_checkpoint(path)
    assert back["step"] == 8 and torch.equal(back["model"]["w"], torch.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary left behind
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CorruptCheckpointError, match="ck.pt"):
        load_checkpoint(path)
    save_checkpoint(path, {"step": 1})
    with pytest.raises(CorruptCheckpointError, match="lacks"):
        load_checkpoint(path)


def test_resume_reproduces_an_uninterrupted_run(data_dir, tmp_path):
    torch.set_num_threads(1)  # deterministic float reductions
    straight = _run(_args(data_dir, tmp_path / "a", steps=4))
    _run(_args(data_dir, tmp_path / "b", steps=2))
    resumed = _run(_args(data_dir, tmp_path / "b", steps=4, extra=["--resume"]))
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=name)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 4
    assert (tmp_path / "b" / "loss.png").stat().st_size > 0
    with pytest.raises(FileExistsError, match="--resume"):
        _run(_args(data_dir, tmp_path / "b", steps=6))


def test_ctrl_c_writes_a_final_checkpoint_and_corrupt_is_reported(data_dir, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = train.MeshObjective.__call__

    def interrupt_on_third(self, *a):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *a)

    monkeypatch.setattr(train.MeshObjective, "__call__", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        _run(_args(data_dir, tmp_path, steps=10, extra=["--checkpoint-every", "100"]))
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exc:
        train.main(_args(data_dir, tmp_path, steps=10, extra=["--resume"]))
    assert exc.value.code == 2


def _user_error(capsys, main, argv) -> str:
    """Run a CLI that must fail with one ``error:`` line and exit 2; returns that line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "error: " in err[0] and "Traceback" not in err[0], err
    return err[0]


def test_resume_on_a_copied_run_trains_the_copy(data_dir, tmp_path, capsys):
    import shutil

    _run(_args(data_dir, tmp_path / "orig", steps=2))
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    before = (tmp_path / "orig" / "checkpoint.pt").read_bytes()
    train.main(["--resume", "--out", str(tmp_path / "copy"), "--steps", "4"])  # --out alone: the saved config
    out = capsys.readouterr()
    assert "resumed from step 2" in out.err and "trained mesh to step 4" in out.out
    assert load_checkpoint(tmp_path / "copy" / "checkpoint.pt")["step"] == 4
    assert (tmp_path / "orig" / "checkpoint.pt").read_bytes() == before  # the original is untouched
    assert TrainConfig.load(tmp_path / "copy").out == str(tmp_path / "copy")
    # flags that differ from the saved config are named in a warning
    train.main(["--resume", "--out", str(tmp_path / "copy"), "--steps", "5", "--lr", "0.5", "--hidden", "7"])
    err = capsys.readouterr().err
    assert "warning: --lr 0.5 differs from the saved config (0.0001)" in err and "warning: --hidden 7" in err
    assert "--steps" not in err.replace("training to step", "")
    # --steps below the checkpoint's step is an error, not a silent exit
    line = _user_error(capsys, train.main, ["--resume", "--out", str(tmp_path / "copy"), "--steps", "3"])
    assert "--steps 3 is below the checkpoint's step 5" in line


def test_checkpoint_integrity(tmp_path):
    path = tmp_path / "checkpoint.pt"
    good = {"model": {"w": torch.ones(3)}, "optimizer": {}, "step": 3, "rng": {}, "history": "[]"}
    save_checkpoint(path, good)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="checksum does not match"):
        load_checkpoint(path)
    for bad, message in (({"model": {"w": torch.tensor([1.0, float("nan")])}}, "'w' contain NaN or inf"),
                         ({"step": -5}, "step must be an integer >= 0, got -5"),
                         ({"step": 2.5}, "step must be an integer"),
                         ({"history": "{not json"}, "history is not valid JSON")):
        save_checkpoint(path, {**good, **bad})
        with pytest.raises(CorruptCheckpointError, match=message):
            load_checkpoint(path)
    # a killed writer's temporary is removed at the next save
    stale = tmp_path / "checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"partial")
    save_checkpoint(path, good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(path)["step"] == 3


def test_log_is_appended_at_each_log_interval(data_dir, tmp_path, monkeypatch):
    seen = []
    original = train.MeshObjective.__call__

    def record(self, *a):  # the log's length when each step starts
        path = tmp_path / "log.jsonl"
        seen.append(len(path.read_text().splitlines()) if path.exists() else 0)
        return original(self, *a)

    monkeypatch.setattr(train.MeshObjective, "__call__", record)
    _run(_args(data_dir, tmp_path, steps=3))
    assert seen == [0, 1, 2]  # written while training, not at exit
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [h["step"] for h in lines] == [1, 2, 3] and all("loss" in h for h in lines)


def test_cli_user_errors_are_one_line(data_dir, tmp_path, capsys):
    base = ["--data", str(data_dir), "--classes", "car,chair", "--out", str(tmp_path / "r")]
    assert "--model: invalid choice: 'meshy'" in _user_error(capsys, train.main, ["--model", "meshy", *base])
    assert "--data" in _user_error(capsys, train.main, ["--out", str(tmp_path / "r")])
    assert "does not exist" in _user_error(capsys, train.main, ["--resume", "--out", str(tmp_path / "missing")])
    # a batch larger than the training set is rejected before anything is written
    line = _user_error(capsys, train.main, [*base, "--batch-size", "16"])
    assert "--batch-size 16 exceeds the 4 training shapes" in line and not (tmp_path / "r").exists()
    assert "--per-class 0" in _user_error(capsys, make_dataset.main, ["--out", str(tmp_path / "d"), "--per-class", "0"])
    assert "run directory" in _user_error(capsys, evaluate.main, ["--run", str(tmp_path / "missing")])
    with pytest.raises(ValueError):  # --debug keeps the traceback
        train.main(["--model", "mesh", *base, "--batch-size", "16", "--debug"])
    help_text = subprocess.run([sys.executable, "-m", "reconstruction.train", "--help"], capture_output=True,
                               text=True, cwd=REPO).stdout
    assert "{mesh,implicit,voxel}" in help_text and "Adam learning rate (default: 0.0001)" in help_text.replace("\n", " ").replace("  ", " ")


def test_implicit_training_steps_and_cli(data_dir, tmp_path, capsys):
    model = _run(_args(data_dir, tmp_path, model="implicit", steps=2))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    text = evaluate.main(["--run", str(tmp_path)])
    assert "ours: implicit (field)" in text and "ours: implicit (marching-cubes mesh)" in text
    assert "baseline: per-class mean voxels" in text and "baseline: retrieval" in text
    assert "SoftRas (sil.) [SoftRas paper" in text
    assert (tmp_path / "eval_test.md").exists() and (tmp_path / "predictions_test.png").exists()


def test_evaluate_and_predict_cli(data_dir, tmp_path):
    _run(_args(data_dir, tmp_path, steps=2))
    text = evaluate.main(["--run", str(tmp_path)])
    assert "| ours: mesh (SoftRas sil.) |" in text and "| car | chair |" in text.replace("method | ", "")
    im, _ = D.load_class_split(data_dir, "02958343", "test")
    png = tmp_path / "view.png"
    Image.fromarray(im[0, 3].transpose(1, 2, 0)).save(png)
    predict.main(["--run", str(tmp_path), "--image", str(png), "--out", str(tmp_path / "m.obj")])
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in lines) == 642 and sum(line.startswith("f ") for line in lines) == 1280
    Image.fromarray(im[0, 3, :3].transpose(1, 2, 0)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png: expected an RGBA image"):
        predict.load_image(tmp_path / "rgb.png")


def test_predict_cli_errors(data_dir, tmp_path, capsys, monkeypatch):
    _run(_args(data_dir, tmp_path, model="implicit", steps=1))
    capsys.readouterr()
    im, _ = D.load_class_split(data_dir, "02958343", "test")
    Image.fromarray(im[0, 3, :3].transpose(1, 2, 0)).save(tmp_path / "rgb.png")
    Image.fromarray(im[0, 3].transpose(1, 2, 0)).save(tmp_path / "rgba.png")
    argv = ["--run", str(tmp_path), "--out", str(tmp_path / "m.obj")]
    assert "rgb.png: expected an RGBA image" in _user_error(capsys, predict.main, [*argv, "--image", str(tmp_path / "rgb.png")])
    # a field that never reaches 0.5 gives an empty mesh: an error, no file
    monkeypatch.setattr(predict, "field_meshes", lambda field: [(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))])
    assert "mesh is empty" in _user_error(capsys, predict.main, [*argv, "--image", str(tmp_path / "rgba.png")])
    assert not (tmp_path / "m.obj").exists()


def test_mean_voxel_baselines():
    vox = torch.zeros(4, 32, 32, 32, dtype=torch.bool)
    vox[:, 8:24, 8:24, 8:24] = True
    vox[:3, 0:4] = True  # three of four shapes have an extra slab: the best level keeps it
    data = D.ShapeNetSplit(["02958343", "03001627"], torch.zeros(4, 24, 4, 64, 64, dtype=torch.uint8), vox,
                           torch.tensor([0, 0, 0, 1]))
    iou = evaluate.mean_voxel_baseline(data, data)
    assert iou.shape == (4,) and torch.equal(iou[:3], torch.ones(3, dtype=torch.float64)) and iou[3] < 1
    # per class, the chair (index 1) has its own grid, without the slab
    assert torch.equal(evaluate.mean_voxel_baseline(data, data, by_class=True), torch.ones(4, dtype=torch.float64))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER = """
import os, sys, torch
from reconstruction import train
torch.set_num_threads(1)
cfg, resume = train.parse_args(sys.argv[1:])
model = train.train(cfg, resume)
torch.save(model.state_dict(), os.path.join(cfg.out, f"rank{os.environ['RANK']}.pt"))
torch.distributed.destroy_process_group()
"""


# the DDP wiring is the same for both models (train.py); the implicit one runs in the slow suite
@pytest.mark.parametrize("model", ["mesh", pytest.param("implicit", marks=pytest.mark.slow)])
def test_ddp_two_gloo_ranks_end_with_identical_weights(data_dir, tmp_path, model):
    out = tmp_path / "ddp"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), *_args(data_dir, out, model=model, steps=3, extra=["--batch-size", "1"])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    torch.manual_seed(0)
    init = train.build_model(TrainConfig.load(out)).state_dict()
    changed = False
    for name in r0:
        assert torch.equal(r0[name], r1[name]), name
        changed |= not torch.equal(r0[name], init[name])
    assert changed  # the ranks trained, and stayed in sync
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
