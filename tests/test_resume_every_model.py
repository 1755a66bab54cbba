"""Resume is exact for every registered model, the way users resume: separate `ganforge train` processes.

A run of 2N steps straight must end with the same tensors bit for bit (weights, EMA, optimisers, history
buffers, RNG) and the same data order as:
- `--steps N`, then `--resume --steps 2N` in a new process (the first ends as every run ends: figures,
  samples, a final checkpoint), for the families with a constant learning rate; and
- a run of `--steps 2N` stopped right after its step-N checkpoint (a preempted job), then `--resume` in a new
  process, for every family, decaying schedules included (their decay spans the run's configured steps).

A new family gets this test by being registered; it only has to say here how to make its networks tiny.
"""
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from ganforge import api
from ganforge.models import MODELS
from ganforge.training import checkpoint

# Settings that make each family's networks tiny. A family missing here fails below, on purpose.
TINY = {
    "gan": ["hidden_g=[16,32]", "hidden_d=[32,16]"],
    "cgan": ["width=4"],
    "dcgan": ["width=4"], "lsgan": ["width=4"], "wgan": ["width=4"], "wgan-gp": ["width=4"], "acgan": ["width=4"],
    "infogan": ["width=4"],
    "pix2pix": ["width=4"], "inpaint": ["width=4"],
    "cyclegan": ["width=4", "n_blocks=1", "pool_size=4"],
    "srgan": ["width=4", "n_blocks=1"],
    "stargan": ["width=4", "n_blocks=1", "n_critic=2"],
    "stylegan": ["width=4", "max_width=8", "z_dim=8", "w_dim=8", "r1_every=2"],  # R1 runs within the steps
}
HALF = 3
# figures and samples at the end of every run (as users get them), on few samples to keep the test short
COMMON = ["eval.n=64", "sample.n=16", "log.every=1", "threads=1", f"checkpoint.every={HALF}"]


def ganforge(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "ganforge", "train", *args, "--quiet", "--batch-size", "4", "--seed", "5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def last_checkpoint(run: Path):
    return checkpoint.load(str(checkpoint.list_checkpoints(run / "checkpoints")[-1][1]))


def assert_same_state(a_run: Path, b_run: Path) -> None:
    a, meta_a = last_checkpoint(a_run)
    b, meta_b = last_checkpoint(b_run)
    assert meta_a["step"] == meta_b["step"] == 2 * HALF
    assert sorted(a) == sorted(b)
    assert any(k.startswith("ema.") for k in a) and any(k.startswith("optim.") for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert meta_a["optimizers"] == meta_b["optimizers"] and meta_a["sampler"] == meta_b["sampler"]
    losses = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (a_run, b_run)]
    train = [[{k: v for k, v in r.items() if k not in ("time", "img_per_s")} for r in records if r["kind"] == "train"]
             for records in losses]
    assert train[0] == train[1]  # the resumed run's loss records continue the first half's


@pytest.mark.parametrize("name", sorted(MODELS))
def test_resume_in_new_processes_is_bit_exact_for_every_model(tmp_path, name):
    assert name in TINY, f"add {name}'s tiny settings to TINY in this file"
    sets = ["--set", *COMMON, *TINY[name], "ema.beta=0.9"]
    straight, halves, preempted = tmp_path / "straight", tmp_path / "halves", tmp_path / "preempted"
    decays = api.resolve_config(name, sets=TINY[name]).schedule.kind != "constant"
    with ThreadPoolExecutor(2) as pool:  # the straight run and the first half are independent
        jobs = [pool.submit(ganforge, name, "--steps", str(2 * HALF), "--out", str(straight), *sets)]
        if not decays:
            jobs.append(pool.submit(ganforge, name, "--steps", str(HALF), "--out", str(halves), *sets))
        for job in jobs:
            job.result()

    # a job preempted right after its step-N checkpoint: the straight run's folder as it was then
    shutil.copytree(straight, preempted)
    for _, path in checkpoint.list_checkpoints(preempted / "checkpoints"):
        if int(path.stem.split("_")[1]) > HALF:
            path.unlink()
            path.with_suffix(".safetensors").unlink()
    resumed = [(preempted, [])] + ([] if decays else [(halves, ["--steps", str(2 * HALF)])])
    with ThreadPoolExecutor(2) as pool:
        for job in [pool.submit(ganforge, name, "--out", str(run), "--resume", *steps) for run, steps in resumed]:
            job.result()
    for run, _ in resumed:
        assert_same_state(straight, run)


def test_resume_auto_starts_a_new_run_and_continues_an_old_one(tmp_path):
    out = tmp_path / "run"
    sets = ["--set", *COMMON, *TINY["gan"], "ema.beta=0.9"]
    ganforge("gan", "--steps", str(HALF), "--out", str(out), "--resume", "auto", *sets)  # nothing to resume: starts
    assert last_checkpoint(out)[1]["step"] == HALF
    ganforge("gan", "--steps", str(2 * HALF), "--out", str(out), "--resume", "auto", *sets)  # continues
    assert last_checkpoint(out)[1]["step"] == 2 * HALF
    straight = tmp_path / "straight"
    ganforge("gan", "--steps", str(2 * HALF), "--out", str(straight), *sets)
    assert_same_state(straight, out)
