"""pix2pix, CycleGAN, SRGAN and inpainting: their networks at every size, the history buffer, the phases
and losses of each family, exact resume, and short real runs on the derived digit tasks."""
import copy
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge import api, losses
from ganforge.data.derived import load as load_derived
from ganforge.errors import UserError
from ganforge.models import StepContext
from ganforge.models.inpaint import masked_input, random_masks
from ganforge.nn.patchgan import PatchDiscriminator, patch_layers, receptive_field
from ganforge.nn.resnet import ResnetGenerator, resnet_blocks
from ganforge.nn.srresnet import SRDiscriminator, SRResNet
from ganforge.nn.unet import UNetGenerator, unet_depth
from ganforge.training import checkpoint
from ganforge.nn.image_pool import ImagePool
from ganforge.training.trainer import Trainer

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]
TINY = {"pix2pix": ["width=4"], "inpaint": ["width=4"], "cyclegan": ["width=4", "n_blocks=1"], "srgan": ["width=4", "n_blocks=1"]}


def subset(name: str, n: int = 48):
    """The first n examples of a derived task spread over the classes (small enough for many epochs)."""
    data = load_derived(name)
    step_a = len(data.images) // n
    data.images = data.images[::step_a][:n].clone()
    data.images_b = data.images_b[:: len(data.images_b) // n][:n].clone()
    return data


def trainer_for(model: str, out, data_name: str, sets=(), steps: int = 2, batch_size: int = 4) -> Trainer:
    cfg = api.resolve_config(model, sets=[*FAST, *TINY[model], *sets], out=str(out), steps=steps, batch_size=batch_size)
    return Trainer(cfg, Path(out), progress=False, data=subset(data_name))


# --- networks ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("train_size,shape", [(28, (28, 28)), (32, (32, 32)), (64, (64, 64)), (28, (37, 53)), (256, (40, 30))])
def test_unet_keeps_any_input_size(train_size, shape):
    G = UNetGenerator(2, 3, train_size, width=4).eval()
    x = torch.rand(2, 2, *shape) * 2 - 1
    y = G(x)
    assert y.shape == (2, 3, *shape) and y.abs().max() <= 1
    assert G.multiple == 2 ** unet_depth(train_size)


def test_unet_depth_follows_the_image_size():
    assert [unet_depth(s) for s in (256, 512, 128, 64, 32, 28, 7)] == [8, 8, 7, 6, 5, 5, 3]
    G = UNetGenerator(1, 1, 256, width=2)
    assert len(G.down) == 8 and G.down[-1][-1].out_channels == 16  # C64-...-C512 at width 64: capped at 8x


def test_unet_skips_carry_fine_detail():
    """A pixel's output depends on that pixel through the outermost skip, not only through the bottleneck."""
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 32, width=4).eval()
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    G(x)[0, 0, 16, 16].backward()
    assert x.grad[0, 0, 16, 16] != 0


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_is_the_papers(n_layers):
    D = PatchDiscriminator(2, width=4, n_layers=n_layers, norm="none")
    x = torch.randn(1, 2, 160, 160, requires_grad=True)
    out = D(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)))
    assert int(rows.max() - rows.min() + 1) == int(cols.max() - cols.min() + 1) == receptive_field(n_layers)
    assert receptive_field(n_layers) == {1: 16, 2: 34, 3: 70}[n_layers]


def test_patchgan_depth_by_size_and_shapes():
    assert [patch_layers(s) for s in (256, 128, 64, 32, 28, 16)] == [3, 3, 2, 1, 1, 1]
    for size in (28, 64, 256):
        D = PatchDiscriminator(4, width=4, n_layers=patch_layers(size))
        assert D(torch.randn(2, 4, size, size)).shape[:2] == (2, 1)


@pytest.mark.parametrize("shape", [(28, 28), (30, 41), (5, 5), (64, 64)])
def test_resnet_generator_any_size(shape):
    G = ResnetGenerator(1, 3, width=4, n_blocks=2).eval()
    y = G(torch.randn(1, 1, *shape))
    assert y.shape == (1, 3, *shape) and y.abs().max() <= 1
    assert resnet_blocks(128) == 6 and resnet_blocks(256) == 9


@pytest.mark.parametrize("scale,size", [(2, 7), (4, 7), (4, 16), (2, 13)])
def test_srresnet_upscales_by_pixel_shuffle(scale, size):
    G = SRResNet(1, 3, scale=scale, width=4, n_blocks=2).eval()
    assert G(torch.randn(2, 1, size, size)).shape == (2, 3, scale * size, scale * size)
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in G.modules()) == {2: 1, 4: 2}[scale]
    D = SRDiscriminator(3, scale * size, width=4)
    assert D(torch.randn(2, 3, scale * size, scale * size)).shape == (2,)
    with pytest.raises(UserError, match="scale must be 2 or 4"):
        SRResNet(1, 1, scale=3)


# --- the history buffer --------------------------------------------------------------------------------

def test_image_pool_fills_then_swaps_half_and_resumes_exactly():
    pool = ImagePool(6, (1, 2, 2))
    first = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    assert torch.equal(pool.query(first), first) and pool.filled == 4  # filling: returned unchanged
    torch.manual_seed(0)
    seen = set(range(4))
    returned_old = 0
    for step in range(1, 40):
        batch = torch.full((4, 1, 2, 2), 100.0 + 4 * step) + torch.arange(4.0).view(4, 1, 1, 1)
        out = pool.query(batch)
        values = {int(v) for v in out[:, 0, 0, 0]}
        new = {int(v) for v in batch[:, 0, 0, 0]}
        assert values <= seen | new  # only images it was ever given
        returned_old += len(values - new)
        seen |= new
    assert 0.35 < returned_old / (39 * 4) < 0.65  # p = 0.5 once full (the first two new images fill it)
    # a copy through the state dict continues identically under the same random state
    clone = ImagePool(6, (1, 2, 2))
    clone.load_state_dict(copy.deepcopy(pool.state_dict()))
    assert clone.filled == 6 and torch.equal(clone.images, pool.images)
    torch.manual_seed(5)
    a = pool.query(torch.ones(4, 1, 2, 2))
    torch.manual_seed(5)
    b = clone.query(torch.ones(4, 1, 2, 2))
    assert torch.equal(a, b)


def test_a_zero_pool_passes_images_through():
    pool = ImagePool(0, (1, 2, 2))
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x), x)


# --- CycleGAN --------------------------------------------------------------------------------------------

def _forward_counter(module):
    calls = []
    module.register_forward_hook(lambda m, i, o: calls.append(1))
    return calls


def test_cyclegan_runs_g_then_d_without_recomputing_fakes(tmp_path):
    trainer = trainer_for("cyclegan", tmp_path, "mnist5k-colored")
    model = trainer.model
    assert [p.name for p in trainer.phases] == ["G", "D"] and trainer.phases[0].frozen == ("D",)
    assert set(trainer.optimizers) == {"G", "D"} and model.paper.startswith("Zhu")
    calls_g, calls_f = _forward_counter(model.G), _forward_counter(model.F)
    grads = {}

    def record(name):
        def hook(opt, args, kwargs):
            grads[name] = {net: [None if p.grad is None else p.grad.clone() for p in getattr(model, net).parameters()]
                           for net in ("G", "F", "D_X", "D_Y")}
        return hook

    for name, opt in trainer.optimizers.items():
        opt.register_step_pre_hook(record(name))
    trainer._iteration({})
    # G phase: G(x), F(G(x)) and F(y), G(F(y)); no identity (grey X, colour Y); the D phase runs neither
    assert len(calls_g) == 2 and len(calls_f) == 2
    assert all(g is None for net in ("D_X", "D_Y") for g in grads["G"][net])  # D frozen in the G phase
    assert all(g is not None for net in ("G", "F") for g in grads["G"][net])
    for net in ("G", "F"):  # the D phase adds nothing to the generators' gradients
        assert all(torch.equal(a, b) for a, b in zip(grads["G"][net], grads["D"][net]))
    assert all(g is not None for net in ("D_X", "D_Y") for g in grads["D"][net])
    assert model.pool_X.filled == 4 and model.pool_Y.filled == 4


def test_cyclegan_generator_loss_is_the_papers_sum(tmp_path):
    """Identity applies when both domains have the same channels: X = grey digits, Y = their edge maps."""
    data = subset("mnist5k-edges")
    data.paired = False
    cfg = api.resolve_config("cyclegan", sets=[*FAST, *TINY["cyclegan"]], out=str(tmp_path), steps=1, batch_size=4)
    model = Trainer(cfg, tmp_path, progress=False, data=data).model
    assert model.identity
    from ganforge.data.base import to_float

    x, y = to_float(data.images_b[:4]), to_float(data.images[:4])
    torch.manual_seed(0)
    out = model.step("G", {"image": x, "image_b": y}, StepContext(step=0))
    with torch.no_grad():
        # Zhu 2017 eq. 2 with the least-squares loss of section 4: E[(D(G(x)) - 1)^2], not LSGAN's 1/2 of it
        adv = ((model.D_Y(model.G(x)) - 1) ** 2).mean() + ((model.D_X(model.F(y)) - 1) ** 2).mean()
        cyc = (model.F(model.G(x)) - x).abs().mean() + (model.G(model.F(y)) - y).abs().mean()
        idt = (model.G(y) - y).abs().mean() + (model.F(x) - x).abs().mean()
    assert torch.allclose(out["loss"], adv + 10 * cyc + 5 * idt, atol=1e-5)
    assert torch.allclose(out["identity"], idt, atol=1e-6)


def test_cyclegan_resume_is_bit_exact(tmp_path):
    """Pools (filled and swapping), the unpaired sampler and the linear decay all continue exactly after a
    run of 8 steps is interrupted at step 4."""
    sets = ["pool_size=6", "schedule.decay_start=0.25"]
    straight = trainer_for("cyclegan", tmp_path / "straight", "mnist5k-colored", sets, steps=8)
    straight.fit()
    first = trainer_for("cyclegan", tmp_path / "resumed", "mnist5k-colored", sets, steps=8)
    while first.step < 4:  # the loop of Trainer.fit, cut short
        first._iteration({})
        first.step += 1
    first.save_checkpoint()
    cfg = api.resolve_config("cyclegan", sets=[*FAST, *TINY["cyclegan"], *sets], out=str(tmp_path / "resumed"), steps=8,
                             batch_size=4, resume=True)
    resumed = Trainer(cfg, tmp_path / "resumed", resume=True, progress=False, data=subset("mnist5k-colored"))
    resumed.fit()
    a, _ = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1]))
    b, _ = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1]))
    assert set(a) == set(b) and any(k.startswith("net.pool_Y.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert straight.model.pool_Y.filled == 6 and resumed.optimizers["G"].param_groups[0]["lr"] == 0.0


# --- pix2pix and inpainting ------------------------------------------------------------------------------

def test_pix2pix_runs_g_once_and_weighs_l1_by_100(tmp_path):
    trainer = trainer_for("pix2pix", tmp_path, "mnist5k-edges")
    model = trainer.model
    assert model.D.model[0].in_channels == 2  # D judges (input, output) pairs
    calls = _forward_counter(model.G)
    trainer._iteration({})
    assert len(calls) == 1  # the D step's fake is reused by the G step
    batch = trainer.sampler.next()
    ctx = StepContext(step=0)
    model.step("D", batch, ctx)
    x, y, fake = ctx.cache["fake"]
    out = model.step("G", batch, ctx)
    assert torch.allclose(out["loss"], out["adv"] + 100 * losses.l1(fake, y).detach(), atol=1e-4)


def test_pix2pix_refuses_unpaired_data_and_b2a_swaps_sides(tmp_path):
    with pytest.raises(UserError, match="learns from aligned pairs.*unpaired"):
        trainer_for("pix2pix", tmp_path / "a", "mnist5k-colored")
    trainer = trainer_for("pix2pix", tmp_path / "b", "mnist5k-edges", ["direction=b2a"])
    batch = trainer.sampler.next()
    x, y = trainer.model.source_target(batch)
    assert torch.equal(x, batch["image_b"]) and torch.equal(y, batch["image"])


def test_inpaint_fills_only_the_hole():
    from ganforge.data.mnist5k import mnist5k
    from ganforge.models.inpaint import Inpaint

    torch.manual_seed(0)
    masks = random_masks(64, 28, 0.25, 0.5)
    area = masks.sum(dim=(1, 2, 3))
    assert masks.shape == (64, 1, 28, 28) and (area >= 7 * 7).all() and (area <= 14 * 14).all()
    model = Inpaint(api.resolve_config("inpaint", sets=TINY["inpaint"]), mnist5k("test").info())
    assert model.G.down[0][0].in_channels == 2  # the grey image and its mask
    y = torch.rand(64, 1, 28, 28) * 2 - 1
    out = model.generate(masked_input(y, masks))
    assert torch.equal(out[~masks], y[~masks]) and not torch.equal(out[masks], y[masks])
    state = torch.get_rng_state()
    a, _ = model.fixed_pairs({"image": y})
    assert torch.equal(state, torch.get_rng_state()) and torch.equal(a, model.fixed_pairs({"image": y})[0])


# --- SRGAN ---------------------------------------------------------------------------------------------

def test_srgan_pairs_set_the_scale_and_single_images_are_downsampled(tmp_path):
    trainer = trainer_for("srgan", tmp_path / "a", "mnist5k-sr4", ["warmup=1"])
    assert trainer.model.scale == 4
    batch = trainer.sampler.next()
    ctx = StepContext(step=0)
    trainer.model.step("D", batch, ctx)
    early = trainer.model.step("G", batch, ctx)
    assert "adv" not in early and torch.allclose(early["loss"], early["mse"])  # warm-up: content only
    ctx = StepContext(step=1)
    trainer.model.step("D", batch, ctx)
    late = trainer.model.step("G", batch, ctx)
    assert torch.allclose(late["loss"], late["mse"] + 1e-3 * late["adv"], atol=1e-6)

    from ganforge.data.mnist5k import mnist5k

    cfg = api.resolve_config("srgan", sets=[*FAST, *TINY["srgan"], "scale=2"], out=str(tmp_path / "b"), steps=1, batch_size=4)
    single = Trainer(cfg, tmp_path / "b", progress=False, data=mnist5k("test"))
    low, high = single.model.low_high(single.sampler.next())
    assert low.shape[-1] == 14 and high.shape[-1] == 28 and single.model.G(low).shape == high.shape


# --- real runs -------------------------------------------------------------------------------------------

def test_a_short_pix2pix_run_learns_and_leaves_a_translation_grid(tmp_path):
    summary = ganforge.train("pix2pix", out=str(tmp_path), steps=200, batch_size=8, progress=False,
                             set=["width=16", "log.every=10", "sample.every=200", "eval.every=0", "eval.n=200", "checkpoint.every=0"])
    m = summary["metrics"]
    assert m["n"] == 200 and m["psnr"] > 12 and m["acc"] > 0.3  # an untrained G scores ~6 dB and 10%
    from PIL import Image

    grid = Image.open(summary["samples"])
    assert grid.size == (2 * (2 + 12 * 30), 2 * (2 + 4 * 30))  # 16 (input | output | target), 4 a row, doubled
    with pytest.raises(UserError, match="translates images.*ganforge translate"):
        ganforge.load(tmp_path).sample(4)


def test_style_and_feature_terms_train(tmp_path):
    trainer = trainer_for("srgan", tmp_path / "s", "mnist5k-sr4", ["feature_weight=1.0", "style_weight=10.0"])
    batch = trainer.sampler.next()
    ctx = StepContext(step=0)
    trainer.model.step("D", batch, ctx)
    out = trainer.model.step("G", batch, ctx)
    assert out["feature"] > 0 and out["style"] > 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert trainer.model.G.head[0].weight.grad.abs().sum() > 0
    # CycleGAN: the style term is logged and enters G's loss times its weight
    trainer = trainer_for("cyclegan", tmp_path / "c", "mnist5k-colored", ["style_weight=2.0"])
    running = {}
    trainer._iteration(running)
    assert {"G/adv", "G/cycle", "G/style"} <= set(running) and "G/identity" not in running  # grey -> colour: no identity
    assert torch.isfinite(running["G/style"]) and running["G/style"] > 0
    expected = running["G/adv"] + trainer.cfg.lambda_cyc * running["G/cycle"] + 2.0 * running["G/style"]
    assert torch.allclose(running["G/loss"], expected, rtol=1e-5)


def test_cyclegan_between_two_real_digit_styles_reports_the_digit_kept_beside_its_inputs(tmp_path):
    from ganforge.data import held_out
    from ganforge.metrics.digits import digit_metrics

    summary = ganforge.train("cyclegan", data="mnist5k-optdigits", out=str(tmp_path), steps=20, batch_size=4,
                             progress=False, set=[*TINY["cyclegan"], "log.every=10", "sample.every=0", "eval.every=0",
                                                  "eval.n=200", "checkpoint.every=0"])
    m = summary["metrics"]
    # 200 of the 300 held-out scans and 200 of the 1,000 held-out MNIST digits, each side spread over its classes
    test = held_out("mnist5k-optdigits")
    a, b = torch.arange(200) * 300 // 200, torch.arange(200) * 1000 // 200
    scans, mnist = digit_metrics(test.images[a], test.labels[a]), digit_metrics(test.images_b[b], test.labels_b[b])
    assert m["a2b_acc_input"] == pytest.approx(scans["accuracy"], abs=1e-4)
    assert m["a2b_cfd_input"] == pytest.approx(scans["cfd"], rel=1e-3)
    assert m["b2a_acc_input"] == pytest.approx(mnist["accuracy"], abs=1e-4) and mnist["accuracy"] > 0.95
    assert 0 <= m["a2b_acc"] <= 1 and 0 <= m["b2a_acc"] <= 1 and m["a2b_cfd"] > 0
    assert "b2a_cfd" not in m  # B->A makes scans: MNIST's classifier features say nothing of their look


def test_cyclegan_low_frequency_term_compares_shrunk_inputs_and_translations(tmp_path):
    data = subset("mnist5k-edges")
    data.paired = False
    cfg = api.resolve_config("cyclegan", sets=[*FAST, *TINY["cyclegan"], "lambda_low=3", "low_factor=4"],
                             out=str(tmp_path), steps=1, batch_size=4)
    model = Trainer(cfg, tmp_path, progress=False, data=data).model
    from ganforge.data.base import to_float

    x, y = to_float(data.images_b[:4]), to_float(data.images[:4])
    plain = model.step("G", {"image": x, "image_b": y}, StepContext(step=0))
    with torch.no_grad():
        shrink = lambda t: torch.nn.functional.avg_pool2d(t, 4)  # noqa: E731  (28 px -> 7 px)
        low = (shrink(model.G(x)) - shrink(x)).abs().mean() + (shrink(model.F(y)) - shrink(y)).abs().mean()
    assert torch.allclose(plain["low"], low, atol=1e-6) and low > 0
    cfg_off = api.resolve_config("cyclegan", sets=[*FAST, *TINY["cyclegan"]], out=str(tmp_path / "off"), steps=1, batch_size=4)
    off = Trainer(cfg_off, tmp_path / "off", progress=False, data=data).model
    off.load_state_dict(model.state_dict())
    without = off.step("G", {"image": x, "image_b": y}, StepContext(step=0))
    assert "low" not in without and torch.allclose(plain["loss"], without["loss"] + 3 * low, atol=1e-5)
    # grey digits <-> colour digits: no one channel count to compare in
    with pytest.raises(UserError, match="lambda_low compares each input"):
        ganforge.train("cyclegan", data="mnist5k-colored", out=str(tmp_path / "c"), steps=1, progress=False,
                       set=[*TINY["cyclegan"], "lambda_low=1"])
