"""Resume is exact for every registered model: N steps, a checkpoint, then a new process's trainer resumed
to 2N gives the same tensors bit for bit as 2N steps straight (weights, EMA, optimisers, history buffers,
RNG) and the same loss records. A new family gets this test by being registered; it only has to say here
how to make its networks tiny."""
import copy
from pathlib import Path

import pytest
import torch

from ganforge import api
from ganforge.data import load_dataset
from ganforge.models import MODELS
from ganforge.training import checkpoint
from ganforge.training.trainer import Trainer

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0", "ema.beta=0.9"]
# Settings that make each family's networks tiny. A family missing here fails below, on purpose.
TINY = {
    "gan": ["hidden_g=[16,32]", "hidden_d=[32,16]"],
    "cgan": ["width=4"],
    "dcgan": ["width=4"], "lsgan": ["width=4"], "wgan": ["width=4"], "wgan-gp": ["width=4"], "acgan": ["width=4"],
    "pix2pix": ["width=4"], "inpaint": ["width=4"],
    "cyclegan": ["width=4", "n_blocks=1", "pool_size=4"],
    "srgan": ["width=4", "n_blocks=1"],
    "stargan": ["width=4", "n_blocks=1", "n_critic=2"],
    "stylegan": ["width=4", "max_width=8", "z_dim=8", "w_dim=8", "r1_every=2"],  # R1 runs within the steps
}
STEPS = 6


def shrink(data, n: int = 32):
    """n examples spread over the dataset (the embedded sets are sorted by class), the second domain too."""
    data = copy.copy(data)
    keep = torch.arange(0, len(data.images), max(1, len(data.images) // n))[:n]
    data.images = data.images[keep].clone()
    for name in ("labels", "attributes"):
        if getattr(data, name) is not None:
            setattr(data, name, getattr(data, name)[keep].clone())
    if data.images_b is not None:
        other = keep if data.paired else torch.arange(0, len(data.images_b), max(1, len(data.images_b) // n))[:n]
        data.images_b = data.images_b[other].clone()
    return data


def trainer(name: str, out: Path, resume: bool = False) -> Trainer:
    cfg = api.resolve_config(name, sets=[*FAST, *TINY[name]], out=str(out), steps=STEPS, batch_size=4, seed=5, resume=resume)
    data = shrink(load_dataset(cfg.data, size=cfg.size, needs=MODELS[name].needs))
    return Trainer(cfg, out, resume=resume, progress=False, data=data)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_resume_is_bit_exact_for_every_model(tmp_path, name):
    assert name in TINY, f"add {name}'s tiny settings to TINY in this file"
    straight = trainer(name, tmp_path / "straight")
    straight.fit()

    first = trainer(name, tmp_path / "resumed")
    while first.step < STEPS // 2:  # Trainer.fit's loop, cut short half-way
        first._iteration({})
        first.step += 1
    first.save_checkpoint()
    del first
    resumed = trainer(name, tmp_path / "resumed", resume=True)
    assert resumed.step == STEPS // 2
    resumed.fit()

    a, meta_a = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1]))
    b, meta_b = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1]))
    assert meta_a["step"] == meta_b["step"] == STEPS
    assert sorted(a) == sorted(b)
    assert any(k.startswith("ema.") for k in a) and any(k.startswith("optim.") for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert meta_a["optimizers"] == meta_b["optimizers"] and meta_a["sampler"] == meta_b["sampler"]
