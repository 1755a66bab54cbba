"""Mixed precision: the policy (a CPU run is fp32), the autocast and gradient-scaling mechanics (run here on
the CPU, which torch's autocast and GradScaler also support), the trainer's step under autocast, and a
checkpoint as a GPU run writes it sampling on the CPU."""
import json
import logging
from pathlib import Path

import pytest
import torch

from ganforge import api
from ganforge.errors import UserError
from ganforge.training import checkpoint
from ganforge.training.precision import Precision, effective

from conftest import make_trainer, train_fast

CPU = torch.device("cpu")


def test_a_cpu_run_is_fp32_whatever_the_config_says():
    assert [effective(p, CPU) for p in ("fp32", "bf16", "fp16")] == ["fp32"] * 3
    with pytest.raises(UserError, match="precision must be one of fp32, bf16, fp16, got 'fp8'"):
        effective("fp8", CPU)


def test_trainer_on_cpu_records_the_asked_precision_and_trains_in_fp32(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="ganforge"):
        trainer = make_trainer("dcgan", tmp_path, sets=["precision=bf16"])
    assert "precision bf16 applies to GPU runs; this cpu run trains in fp32" in caplog.text
    assert trainer.precision.name == "fp32" and trainer.precision.dtype is None
    assert "precision: bf16" in (tmp_path / "config.yaml").read_text()
    with pytest.raises(UserError, match="precision must be one of"):
        make_trainer("dcgan", tmp_path / "bad", sets=["precision=half"])


def test_bf16_autocast_runs_the_forward_pass_in_bfloat16():
    layer = torch.nn.Linear(8, 4)
    with Precision("bf16", CPU, ["G"]).autocast():
        out = layer(torch.randn(2, 8))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    with Precision("fp32", CPU, ["G"]).autocast():
        assert layer(torch.randn(2, 8)).dtype == torch.float32


def test_fp16_scaling_skips_an_overflowing_step_and_keeps_a_good_one():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    precision = Precision("fp16", CPU, ["D"])
    scale = precision.scalers["D"].get_scale()

    precision.backward("D", (w * float("inf")).sum())  # overflowing gradients: the step must not happen
    precision.step("D", opt)
    assert torch.equal(w.detach(), torch.ones(3)) and precision.scalers["D"].get_scale() < scale

    opt.zero_grad()
    precision.backward("D", (w * 2).sum())  # d/dw = 2, unscaled before the step
    precision.step("D", opt)
    assert torch.allclose(w.detach(), torch.full((3,), 1 - 0.1 * 2))

    restored = Precision("fp16", CPU, ["D"])
    restored.load_state_dict(json.loads(json.dumps(precision.state_dict())))  # checkpoints hold it as JSON
    assert restored.scalers["D"].get_scale() == precision.scalers["D"].get_scale()


def test_trainer_steps_under_autocast_keep_fp32_weights_and_finite_losses(tmp_path):
    trainer = make_trainer("dcgan", tmp_path, steps=3)
    trainer.precision = Precision("bf16", CPU, trainer.optimizers)  # the GPU path, on the CPU's autocast
    before = [p.detach().clone() for p in trainer.model.G.parameters()]
    summary = trainer.fit()
    assert summary["step"] == 3
    after = list(trainer.model.G.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [v for r in records if r["kind"] == "train" for k, v in r.items() if k.endswith("/loss")]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_a_checkpoint_written_by_a_gpu_run_samples_on_the_cpu(tmp_path):
    """What a GPU run writes differs from a CPU run's in its config (device, precision) and a CUDA RNG
    state; the weights are float32 on the CPU either way, since checkpoint.save moves them there."""
    train_fast("dcgan", tmp_path / "run", steps=2)
    path = checkpoint.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1]
    tensors, meta = checkpoint.load(str(path))
    meta["config"].update(device="cuda", precision="bf16")
    tensors["rng.cuda"] = torch.zeros(16, dtype=torch.uint8)
    gpu_dir = tmp_path / "gpu" / "checkpoints"
    gpu_dir.mkdir(parents=True)
    checkpoint.save(gpu_dir, meta["step"], tensors, {k: v for k, v in meta.items() if k != "step"})

    g = api.load(tmp_path / "gpu", device="cpu")
    images = g.sample(4, seed=1)
    assert images.shape == (4, 1, 28, 28) and images.dtype == torch.float32 and torch.isfinite(images).all()
    reference = api.load(tmp_path / "run").sample(4, seed=1)
    assert torch.equal(images, reference)
