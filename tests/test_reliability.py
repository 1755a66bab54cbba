"""Faults during a run: divergence rolls back and retries, a killed process leaves a run that samples and
resumes, and a checkpoint that cannot be written ends in one clear line with the previous one intact."""
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganforge import api, cli
from ganforge.errors import UserError
from ganforge.training import checkpoint
from ganforge.training.trainer import Trainer

from conftest import FAST, digits, make_trainer, small

def watch_d(trainer, nan_from=None, once=True):
    """Record D's weights as each step begins; then, from step `nan_from` on (once, or at every step), fill its
    first weight with NaN.

    Returns [(step, weights)] in the order the steps ran, repeats (after a roll-back) included.
    """
    seen, fired, last = [], [], []

    def hook(module, args):
        visit = (trainer.step, trainer.divergences)  # a step runs again after each roll-back
        if visit in last:
            return
        last.append(visit)
        seen.append((trainer.step, [p.detach().clone() for p in module.parameters()]))
        if nan_from is not None and trainer.step >= nan_from and not (once and fired):
            fired.append(trainer.step)
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))

    trainer.model.D.register_forward_pre_hook(hook)
    return seen


def lrs(trainer, scale=1.0):
    """Each optimiser's learning rates; with `scale`, the config's times scale instead."""
    if scale != 1.0:
        return {name: [trainer.cfg.optim[name]["lr"] * scale] for name in trainer.optimizers}
    return {name: [g["lr"] for g in opt.param_groups] for name, opt in trainer.optimizers.items()}


def train_steps(out):
    return [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


@pytest.mark.parametrize("every,nan_at,back_to", [(2, 3, 2), (0, 1, 0)])
def test_a_nan_rolls_back_to_the_last_good_state_and_halves_the_learning_rates(tmp_path, caplog, every, nan_at, back_to):
    trainer = make_trainer("dcgan", tmp_path, sets=[f"checkpoint.every={every}"], steps=5, batch_size=4)
    seen = watch_d(trainer, nan_from=nan_at)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        summary = trainer.fit()
    assert summary["step"] == 5
    lines = [r.getMessage() for r in caplog.records if "rolled back" in r.getMessage()]
    assert len(lines) == 1 and f"step {nan_at + 1}:" in lines[0] and f"to step {back_to} " in lines[0], lines
    # the retry started from exactly the weights step `back_to` had the first time (a checkpoint, or the start)
    visits = [w for s, w in seen if s == back_to]
    assert len(visits) == 2 and all(torch.equal(a, b) for a, b in zip(*visits))
    assert lrs(trainer) == lrs(trainer, 1 / 2)
    assert all(torch.isfinite(p).all() for p in trainer.model.D.parameters())
    assert train_steps(tmp_path) == [1, 2, 3, 4, 5]  # the log reads as one run: no records of the abandoned steps
    _, meta = checkpoint.load(summary["checkpoint"])
    assert meta["lr_scale"] == 0.5


def test_lowered_learning_rates_survive_resume(tmp_path):
    trainer = make_trainer("dcgan", tmp_path, sets=["checkpoint.every=2"], steps=4, batch_size=4)
    watch_d(trainer, nan_from=3)
    trainer.fit()
    cfg = api.resolve_config("dcgan", out=str(tmp_path), steps=6, resume=True)
    resumed = Trainer(cfg, tmp_path, resume=True, progress=False, data=digits())
    resumed.fit()
    # the schedule recomputes each step's rate from its base rates: those must be the lowered ones
    assert resumed.step == 6 and lrs(resumed) == lrs(resumed, 1 / 2)


def test_a_run_that_keeps_diverging_stops_with_the_step_after_the_retries(tmp_path, caplog):
    trainer = make_trainer("dcgan", tmp_path, sets=["checkpoint.every=1", "divergence.retries=3"], steps=5, batch_size=4)
    watch_d(trainer, nan_from=2, once=False)
    with caplog.at_level(logging.WARNING, logger="ganforge"), pytest.raises(UserError, match=r"diverged at step 3 .*3 roll-backs"):
        trainer.fit()
    assert len([r for r in caplog.records if "rolled back to step 2" in r.getMessage()]) == 3
    assert lrs(trainer) == lrs(trainer, 1 / 8)
    # what is on disk is still the last good state
    tensors, meta = checkpoint.load(str(tmp_path))
    assert meta["step"] == 2 and all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


# --- killed at any moment -----------------------------------------------------------------------------

def test_killed_runs_sample_and_resume(tmp_path, digits_npz):
    """SIGKILL a real training process at random moments; after each kill the run samples and resumes."""
    out, rng = tmp_path / "run", random.Random(0)
    base = [sys.executable, "-m", "ganforge", "train", "dcgan", "--data", str(digits_npz), "--out", str(out),
            "--batch-size", "4", "--quiet"]
    sets = ["--set", *FAST, *small("dcgan"), "checkpoint.every=1", "checkpoint.keep=2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reached = []
    for kill in range(4):  # each start costs the interpreter and torch start-up: a few seconds
        argv = base + ["--steps", "100000"] + (["--resume"] if kill else []) + sets
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ckpts = out / "checkpoints"
        before = checkpoint.list_checkpoints(ckpts)[-1][0] if kill else 0
        deadline = time.monotonic() + 60
        # wait until this process has written a checkpoint of its own, then kill it at a random moment
        while not (checkpoint.list_checkpoints(ckpts) and checkpoint.list_checkpoints(ckpts)[-1][0] > before):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        step = checkpoint.list_checkpoints(ckpts)[-1][0]
        assert step > before
        reached.append(step)
        grid = tmp_path / f"after_kill_{kill}.png"
        assert cli.main(["sample", str(out), "--n", "4", "--grid", str(grid)]) == 0 and grid.stat().st_size > 0
    final = reached[-1] + 2
    done = subprocess.run(base + ["--steps", str(final), "--resume"] + sets, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert checkpoint.list_checkpoints(out / "checkpoints")[-1][0] == final
    assert train_steps(out) == list(range(1, final + 1))  # every step logged once across the kills
    assert reached == sorted(reached)
    assert not list((out / "checkpoints").glob("*.tmp"))  # files of writes cut short are cleared


# --- a checkpoint that cannot be written ----------------------------------------------------------------

def test_a_checkpoint_that_cannot_be_written_stops_with_one_line_and_keeps_the_previous(tmp_path):
    trainer = make_trainer("dcgan", tmp_path, sets=["checkpoint.every=2"], steps=6, batch_size=4)
    folder = tmp_path / "checkpoints"

    def block(module, args):  # after the step-2 checkpoint: step 4's file name is taken by a folder
        if trainer.step == 3:
            (folder / "step_000004.safetensors").mkdir(exist_ok=True)

    trainer.model.G.register_forward_pre_hook(block)
    with pytest.raises(UserError, match="could not write a checkpoint .*the previous checkpoint is intact") as err:
        trainer.fit()
    assert "\n" not in str(err.value)
    assert [s for s, _ in checkpoint.list_checkpoints(folder)] == [2]
    tensors, meta = checkpoint.load(str(tmp_path))
    assert meta["step"] == 2 and api.load(tmp_path).sample(2).shape == (2, 1, 28, 28)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_checkpoints_folder_replaced_by_a_file_mid_run_is_one_line(tmp_path, digits_npz):
    """A real run whose checkpoints folder turns into a file: exit code 2, one line, the old checkpoints loadable."""
    out, moved = tmp_path / "run", tmp_path / "moved"
    argv = [sys.executable, "-m", "ganforge", "train", "dcgan", "--data", str(digits_npz), "--out", str(out),
            "--steps", "100000", "--batch-size", "4", "--quiet", "--set", *FAST, *small("dcgan"), "checkpoint.every=1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not checkpoint.list_checkpoints(out / "checkpoints"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    (out / "checkpoints").rename(moved)
    for attempt in range(50):  # the run may make a new folder before the file lands: move that one away too
        try:
            (out / "checkpoints").write_text("not a folder")
            break
        except IsADirectoryError:
            (out / "checkpoints").rename(tmp_path / f"remade{attempt}")
    else:
        pytest.fail("the run kept remaking its checkpoints folder")
    stdout, stderr = proc.communicate(timeout=60)
    lines = stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("ganforge: error: could not write a checkpoint") and "previous checkpoint is intact" in lines[0]
    tensors, meta = checkpoint.load(str(moved))
    assert meta["step"] >= 1 and api.load(moved).sample(2).shape == (2, 1, 28, 28)


def test_prune_clears_what_a_killed_write_left(tmp_path):
    for step in (1, 2):
        checkpoint.save(tmp_path, step, {"w": torch.zeros(1)}, {"model": "x"})
    partial = tmp_path / ".step_000003.safetensors.k1l2.tmp"
    partial.write_bytes(b"cut short")
    checkpoint.prune(tmp_path, keep=3)
    assert not partial.exists() and [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [1, 2]
