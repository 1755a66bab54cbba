"""Checkpoints written by an earlier version (tests/data/checkpoints_v1: 2-step runs of tiny networks, made
before the model contract declared its checkpointed modules) still load, sample or translate, and resume."""
import shutil
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.training import checkpoint

OLD = Path(__file__).parent / "data" / "checkpoints_v1"


@pytest.mark.parametrize("name", ["dcgan", "stylegan", "cyclegan"])
def test_an_old_checkpoint_loads_and_resumes(tmp_path, name):
    g = ganforge.load(OLD / name)
    tensors, _ = checkpoint.load(str(OLD / name))
    for net in g.model.ema_nets:  # the EMA generators sample, every tensor as written
        for key, value in getattr(g.model, net).state_dict().items():
            assert torch.equal(value, tensors[f"ema.{net}.{key}"]), f"{net}.{key}"
    if g.model.translates:
        out = g.model.translate(torch.zeros(2, g.model.channels, g.model.size, g.model.size))
    else:
        out = g.sample(4, seed=1)
    assert torch.isfinite(out).all()
    run = tmp_path / name
    shutil.copytree(OLD / name, run)
    summary = ganforge.train(name, out=str(run), resume=True, steps=3, progress=False)
    assert summary["step"] == 3
