"""The one training loop: phase scheduling, frozen networks, weight clipping, EMA, fake reuse, learning-rate
schedules, a real short run."""
import copy
import functools
import json

import pytest
import torch

import ganforge
from ganforge import api
from ganforge import config as config_mod
from ganforge.models import StepContext
from ganforge.training import checkpoint
from ganforge.training.optim import Schedule, lr_factor
from ganforge.training.trainer import Trainer

from conftest import digits, make_trainer, train_fast


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def grads(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def same(a, b):
    return len(a) == len(b) and all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b))


def record_steps(trainer):
    """Each optimiser step as {opt, before, after, grads_before, grads_after} of both networks, via torch's step hooks."""
    nets = {"G": trainer.model.G, "D": trainer.model.D}
    events = []

    def pre(name):
        def hook(opt, args, kwargs):
            events.append({"opt": name, "before": {n: snapshot(m) for n, m in nets.items()},
                           "grads": {n: grads(m) for n, m in nets.items()}})
        return hook

    def post(opt, args, kwargs):
        events[-1]["after"] = {n: snapshot(m) for n, m in nets.items()}
        events[-1]["grads_after"] = {n: grads(m) for n, m in nets.items()}

    for name, opt in trainer.optimizers.items():
        opt.register_step_pre_hook(pre(name))
        opt.register_step_post_hook(post)
    return events


def optimizer_steps(opt):
    """How many times an optimiser stepped, from its own per-parameter state."""
    counts = {int(state["step"]) for state in opt.state.values()}
    assert len(counts) == 1
    return counts.pop()


@pytest.mark.parametrize("name,sets,k", [("gan", [], 1), ("gan", ["n_critic=3"], 3), ("wgan", [], 5), ("wgan-gp", ["n_critic=5"], 5)])
def test_n_critic_discriminator_steps_per_generator_step(tmp_path, name, sets, k):
    trainer = make_trainer(name, tmp_path, sets=sets, steps=2, batch_size=4)
    events = record_steps(trainer)
    trainer.fit()
    assert [e["opt"] for e in events] == (["D"] * k + ["G"]) * 2
    assert optimizer_steps(trainer.optimizers["D"]) == 2 * k and optimizer_steps(trainer.optimizers["G"]) == 2
    # every critic step draws a fresh real batch; the generator step reuses the last one
    assert trainer.sampler.epoch == 0 and trainer.sampler.position == 2 * k * 4


@pytest.mark.parametrize("name", ["gan", "dcgan", "wgan-gp", "acgan"])
def test_each_phase_updates_only_its_own_network(tmp_path, name):
    trainer = make_trainer(name, tmp_path, steps=2, batch_size=4)
    events = record_steps(trainer)
    trainer.fit()
    previous = None
    for e in events:
        own, other = e["opt"], "G" if e["opt"] == "D" else "D"
        assert not same(e["before"][own], e["after"][own]), f"{own} step left {own} unchanged"
        assert same(e["before"][other], e["after"][other]), f"{own} step changed {other}"
        # no backpropagation into the other network: its gradients are still what the previous step left
        left = previous["grads_after"][other] if previous else [None] * len(e["grads"][other])
        assert same(e["grads"][other], left), f"the {own} step backpropagated into {other}"
        previous = e
    first_g = next(e for e in events if e["opt"] == "G")
    assert all(g is None for g in events[0]["grads"]["G"]), "a critic step backpropagated into G"
    assert all(g is not None for g in first_g["grads"]["G"])
    # the frozen networks are unfrozen again afterwards
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_wgan_weights_clipped_after_each_critic_step(tmp_path):
    for clip in (0.01, 0.05):
        trainer = make_trainer("wgan", tmp_path / str(clip), sets=[f"clip={clip}"], steps=1, batch_size=4)
        events = record_steps(trainer)
        trainer.fit()
        bound = torch.tensor(clip)  # the clip value in float32, as the weights hold it
        # every step after the first meets a critic clipped by the step before it
        assert all(max(p.abs().max() for p in e["before"]["D"]) <= bound for e in events[1:])
        d = torch.cat([p.detach().flatten() for p in trainer.model.D.parameters()])
        assert d.abs().max() <= bound
        assert (d.abs() == bound).sum() > 10  # N(0, 0.02) init and BN scales near 1 were clipped
        g = torch.cat([p.detach().flatten() for p in trainer.model.G.parameters()])
        assert g.abs().max().item() > 0.5  # the generator is not clipped


@pytest.mark.parametrize("start", [0, 1])
def test_ema_is_the_exponential_average_of_generator_weights(tmp_path, start):
    beta = 0.8
    trainer = make_trainer("gan", tmp_path, sets=[f"ema.beta={beta}", f"ema.start={start}"], steps=2, batch_size=8)
    g0 = snapshot(trainer.model.G)
    events = record_steps(trainer)
    trainer.fit()
    g1, g2 = [e["after"]["G"] for e in events if e["opt"] == "G"]
    # e_t = b_t e_{t-1} + (1 - b_t) g_t from a copy of G, with the warm-up b_t = min(beta, (1 + t) / (10 + t)),
    # t counted from `start`; before `start` it follows G exactly
    b = [min(beta, (1 + t - start) / (10 + t - start)) if t >= start else 0.0 for t in (0, 1)]
    assert b == ([0.1, 2 / 11] if start == 0 else [0.0, 0.1])
    e1 = [b[0] * a + (1 - b[0]) * x for a, x in zip(g0, g1)]
    e2 = [b[1] * a + (1 - b[1]) * x for a, x in zip(e1, g2)]
    ema = snapshot(trainer.ema.nets["G"])
    assert all(torch.allclose(x, y, atol=1e-7, rtol=1e-6) for x, y in zip(ema, e2))
    assert not same(ema, g2)
    # batch-norm statistics are copied from the live network, not averaged
    assert all(torch.equal(a, b) for a, b in zip(trainer.ema.nets["G"].buffers(), trainer.model.G.buffers()))
    assert not any(p.requires_grad for p in trainer.ema.parameters())


def _one_iteration(trainer, batch, state, rng, reuse: bool):
    """The last critic step, then the G step, run by hand from a saved state; returns G's gradients and weights."""
    model, opt_d, opt_g = trainer.model, trainer.optimizers["D"], trainer.optimizers["G"]
    model.load_state_dict(state[0])
    opt_d.load_state_dict(state[1])
    opt_g.load_state_dict(state[2])
    torch.set_rng_state(rng)
    ctx = StepContext(step=0)
    opt_d.zero_grad(set_to_none=True)
    model.step("D", batch, ctx)["loss"].backward()
    opt_d.step()
    if not reuse:  # throw the D step's fake batch away and make it again from the same z and labels
        ctx.cache.clear()
        torch.set_rng_state(rng)
    model.D.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    model.step("G", batch, ctx)["loss"].backward()
    g_grads = grads(model.G)
    opt_g.step()
    model.D.requires_grad_(True)
    return g_grads, snapshot(model.G)


@pytest.mark.parametrize("name", ["gan", "dcgan", "acgan"])
def test_reused_fake_batch_gives_the_same_generator_update_as_a_recomputed_one(tmp_path, name):
    trainer = make_trainer(name, tmp_path, batch_size=8)
    trainer.model.train()
    batch = trainer.sampler.next()
    state = (copy.deepcopy(trainer.model.state_dict()), copy.deepcopy(trainer.optimizers["D"].state_dict()),
             copy.deepcopy(trainer.optimizers["G"].state_dict()))
    rng = torch.get_rng_state()
    reused_grads, reused_g = _one_iteration(trainer, batch, state, rng, reuse=True)
    fresh_grads, fresh_g = _one_iteration(trainer, batch, state, rng, reuse=False)
    assert all(g is not None and g.abs().sum() > 0 for g in reused_grads)
    for a, b in zip(reused_grads, fresh_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(reused_g, fresh_g):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_losses_logged_every_step_and_run_folder_complete(dcgan_run):
    records = [json.loads(line) for line in (dcgan_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 201))
    assert all(r["D/loss"] == r["D/loss"] and r["G/loss"] == r["G/loss"] for r in train)  # no NaN
    assert all(r["img_per_s"] > 0 for r in train)
    for path in ("config.yaml", "losses.png", "samples/step_000200.png", "checkpoints/step_000200.json",
                 "checkpoints/step_000200.safetensors"):
        assert (dcgan_run / path).is_file(), path
    cfg = config_mod.load_yaml(str(dcgan_run / "config.yaml"))
    assert cfg["model"] == "dcgan" and cfg["steps"] == 200 and cfg["batch_size"] == 32


def test_short_real_run_improves_cfd_and_digit_statistics(dcgan_run, tmp_path):
    g = ganforge.load(dcgan_run)
    trained = g.sample(500, seed=3)
    # the same network before training: same config and seed give the same initial weights
    fresh = Trainer(config_mod.Config(g.cfg.to_dict()), tmp_path, progress=False, data=digits())
    fresh.model.eval()
    initial = fresh.model.sample(500, generator=torch.Generator().manual_seed(3))
    assert trained.shape == initial.shape == (500, 1, 28, 28)
    assert (trained - initial).abs().mean() > 0.1
    # MNIST is mostly black background (mean -0.74 in [-1, 1]); the untrained G draws flat grey near 0
    assert initial.mean().abs() < 0.05 and trained.mean() < -0.2
    assert trained.std() > 5 * initial.std()
    from ganforge.metrics.digits import digit_metrics

    before, after = digit_metrics(initial)["cfd"], digit_metrics(trained)["cfd"]
    assert after < 0.8 * before, (before, after)


def test_loaded_generator_samples(dcgan_run):
    g = ganforge.load(dcgan_run)
    x = g.sample(8)
    assert x.shape == (8, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, g.sample(8)) and not torch.equal(x, g.sample(8, seed=1))
    assert g.last_labels is None  # dcgan is not conditional
    same_file = ganforge.load(dcgan_run / "checkpoints" / "step_000200.safetensors")
    assert torch.equal(x, same_file.sample(8))


def test_conditional_samples_follow_labels(cgan_run):
    g = ganforge.load(cgan_run)
    assert g.classes == [str(d) for d in range(10)]
    x = g.sample(7, labels=[3])
    assert x.shape == (7, 1, 28, 28) and g.last_labels.tolist() == [3] * 7
    g.sample(5, labels=[1, "8"])  # indices and class names, cycled
    assert g.last_labels.tolist() == [1, 8, 1, 8, 1]
    g.sample(12)
    assert g.last_labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]  # every class in turn by default
    assert not torch.allclose(g.sample(4, labels=[0], seed=2), g.sample(4, labels=[9], seed=2))
    with pytest.raises(ganforge.UserError, match="12"):
        g.sample(4, labels=[12])
    with pytest.raises(ganforge.UserError, match="seven"):
        g.sample(4, labels=["seven"])


def test_sampling_uses_the_ema_generator(tmp_path):
    summary = train_fast("dcgan", tmp_path, sets=["ema.beta=0.5"], steps=2, batch_size=8)
    tensors, _ = checkpoint.load(summary["checkpoint"])
    g = ganforge.load(tmp_path)
    for k, v in g.model.G.state_dict().items():
        assert torch.equal(v, tensors[f"ema.G.{k}"])
    assert not all(torch.equal(tensors[f"ema.G.{k}"], tensors[f"net.G.{k}"]) for k in g.model.G.state_dict())


@pytest.mark.parametrize("figures,panels", [
    ({"cfd": 40.0, "acc": 0.5}, 2),  # a distance: plotted on a log axis
    ({"attr_acc": 0.9, "digit_acc": 0.8}, 2),  # shares only (StarGAN): plotted as they are
    (None, 1),  # no evaluation: the losses alone
])
def test_loss_plot_has_a_quality_panel_when_there_are_figures(tmp_path, figures, panels):
    import warnings

    from PIL import Image

    from ganforge.training.report import plot_losses

    records = [{"kind": "train", "step": s, "G/loss": 1.0 / s, "D/loss": 0.5} for s in (1, 2, 3)]
    if figures:
        records.append({"kind": "eval", "step": 3, "n": 40, **figures})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty legend warns
        plot_losses(records, tmp_path / "losses.png")
    assert Image.open(tmp_path / "losses.png").size[0] == 600 * panels


def test_progress_line_counts_time_under_a_budget_and_steps_otherwise(capsys):
    from ganforge.training.report import UNBOUNDED_STEPS, Progress

    for steps, minutes in ((UNBOUNDED_STEPS, 3), (500, 3), (500, None)):
        progress = Progress(steps, 0, minutes)
        progress.update(7, {"D": 1.25, "G": 0.5}, 1234.0)
        progress.close()
    budget, both, by_steps = [out.split("\r")[-1] for out in capsys.readouterr().err.strip().split("\n")]
    assert "of 3 min, step 7 D=1.250 G=0.500 1234 img/s" in budget and str(UNBOUNDED_STEPS) not in budget
    assert "of 3 min, step 7/500 D=1.250" in both
    assert "7/500 [" in by_steps and "D=1.250 G=0.500 1234 img/s" in by_steps


def test_schedule_gives_torchs_lambda_lr_rates_and_follows_the_base_rates_it_is_given():
    """The schedule is LambdaLR's rule on the param groups' own initial_lr: the same rates, to the bit, at
    every step of a decaying run, and a lowered (or restored) initial_lr is all a roll-back (or resume) sets."""
    cfg = api.resolve_config("dcgan", sets=["schedule.kind=linear_decay", "schedule.decay_start=0.3"], steps=10)
    ours, theirs = (torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=3e-4) for _ in range(2))
    schedule = Schedule(ours, cfg)
    reference = torch.optim.lr_scheduler.LambdaLR(theirs, functools.partial(lr_factor, cfg))
    for _ in range(cfg.steps):
        assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
        for opt in (ours, theirs):
            opt.step()
        schedule.step()
        reference.step()
    assert ours.param_groups[0]["lr"] == 0.0 and schedule.last_step == cfg.steps
    schedule.last_step = 4
    schedule.scale(0.5)
    schedule.step()
    assert ours.param_groups[0]["initial_lr"] == 1.5e-4 and ours.param_groups[0]["lr"] == 1.5e-4 * lr_factor(cfg, 5)
