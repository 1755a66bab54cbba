"""StyleGAN: the networks' pieces against their papers' definitions, the model's sampling tools, where the
truncation average lives, and the command line's truncation flag."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge import api, cli, config
from ganforge.errors import UserError
from ganforge.models import MODELS
from ganforge.nn import stylegan as sg
from ganforge.nn.unet import pad_to_multiple
from ganforge.training import checkpoint

from conftest import digits

TINY = ["width=8", "max_width=16", "z_dim=16", "w_dim=16"]


def build(size=28, channels=1, sets=()):
    cfg = config.resolve("stylegan", MODELS["stylegan"].defaults, sets=[*TINY, *sets])
    info = {"name": "test", "channels": channels, "size": size, "native_size": size, "classes": []}
    torch.manual_seed(0)
    return MODELS["stylegan"](cfg, info)


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
    """A short real run on 100 digits: 12 steps of batch 8, R1 on every fourth step."""
    from conftest import make_trainer

    out = tmp_path_factory.mktemp("runs") / "stylegan"
    trainer = make_trainer("stylegan", out, sets=[*TINY, "r1_every=4", "ema.beta=0.9"], steps=12)
    trainer.fit()
    return out


# --- the building blocks ------------------------------------------------------------------------------

@pytest.mark.parametrize("up", [False, True])
def test_modulated_convolution_is_per_sample_weight_modulation_and_demodulation(up):
    """StyleGAN2 eq. 1-3 written out per sample with a grouped view of the weights equals the batched form."""
    torch.manual_seed(0)
    n, i, o, k = 3, 5, 4, 4 if up else 3
    x, styles, weight = torch.randn(n, i, 6, 6), torch.rand(n, i) + 0.5, torch.randn(o, i, k, k)
    out = sg.modulated_conv2d(x, weight, styles, up=up)
    expected = []
    for b in range(n):
        w = weight / math.sqrt(i * k * k) * styles[b][None, :, None, None]  # w'_ijk = s_i w_ijk
        w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()  # w''_ijk
        if up:
            expected.append(2 * F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), stride=2, padding=1))
        else:
            expected.append(F.conv2d(x[b : b + 1], w, padding=1))
    assert out.shape == (n, o, 12 if up else 6, 12 if up else 6)
    assert torch.allclose(out, torch.cat(expected), atol=1e-5)


def test_demodulation_restores_unit_variance_whatever_the_style():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 16, 16)
    styles = torch.tensor([0.1, 1.0, 10.0, 100.0])[:, None].expand(4, 64)
    out = sg.modulated_conv2d(x, torch.randn(32, 64, 3, 3), styles)
    std = out[..., 1:-1, 1:-1].std(dim=(1, 2, 3))  # away from the zero padding
    assert torch.allclose(std, torch.ones(4), atol=0.1), std


@torch.no_grad()
def test_equalized_learning_rate_stores_unit_weights_and_scales_at_run_time():
    torch.manual_seed(0)
    layer = sg.EqualLinear(256, 256)
    assert abs(float(layer.weight.std()) - 1) < 0.02  # stored N(0, 1)
    x = torch.randn(2048, 256)
    assert abs(float(layer(x).std()) - 1) < 0.05  # He's constant: variance kept
    mapping = sg.MappingNetwork(16, 16, n_layers=2, lr_mul=0.01)
    assert abs(float(mapping.layers[0].weight.std()) - 100) < 10  # weights / lr_mul, scaled back by lr_mul
    assert 0.5 < float(mapping(torch.randn(512, 16)).std()) < 2


@pytest.mark.parametrize("setting", ["mapping_layers=0", "mixing_prob=1.5", "w_avg_beta=1.0", "r1_every=0",
                                     "r1_gamma=-1.0", "width=0", "mapping_lr_mul=0.0"])
def test_bad_settings_are_one_line_each(setting):
    with pytest.raises(UserError, match=setting.split("=")[0]):
        build(sets=[setting])


@pytest.mark.parametrize("size,net,expected_ws", [(8, 8, 3), (16, 16, 6), (28, 32, 9), (32, 32, 9), (64, 64, 12)])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_size(size, net, expected_ws, channels):
    model = build(size, channels)
    assert sg.network_size(size) == net and model.G.num_ws == expected_ws
    x = model.sample(5)
    assert x.shape == (5, channels, size, size) and x.min() >= -1 and x.max() <= 1
    assert model.D(x).shape == (5,)
    assert model.train().fake_batch(5, "cpu")[0].shape == x.shape  # D judges fakes cropped as it gets reals


def test_style_levels_follow_the_paper():
    """Coarse drives 4-8 px, middle 16-32 px, fine the rest, and the top resolution is always fine."""
    synthesis = build(64).G.synthesis
    by_level = {lv: sorted({r for r, m in zip(synthesis.slot_resolution, synthesis.level_mask([lv])) if m}) for lv in sg.LEVELS}
    assert by_level == {"coarse": [4, 8], "middle": [16, 32], "fine": [64]}
    synthesis = build(28).G.synthesis
    assert sorted({r for r, m in zip(synthesis.slot_resolution, synthesis.level_mask(["fine"])) if m}) == [32]
    with pytest.raises(UserError, match="tiny"):
        synthesis.level_mask(["tiny"])


def test_minibatch_stddev_appends_the_spread_within_each_group():
    x = torch.zeros(8, 2, 4, 4)
    x[4:] = 1.0  # groups of 4 take samples b, b+2, b+4, b+6: half zeros, half ones -> std 0.5
    out = sg.MinibatchStd(4)(x)
    assert out.shape == (8, 3, 4, 4) and torch.allclose(out[:, 2], torch.full((8, 4, 4), 0.5), atol=1e-3)
    assert torch.allclose(sg.MinibatchStd(4)(torch.ones(8, 2, 4, 4))[:, 2], torch.zeros(8, 4, 4), atol=1e-3)


def test_crossover_mask_mixes_the_given_share_from_a_random_layer_on():
    torch.manual_seed(0)
    mask = sg.crossover_mask(4000, 9, 0.9, "cpu")
    mixed = mask.any(dim=1)
    assert abs(float(mixed.float().mean()) - 0.9) < 0.02
    assert not mask[:, 0].any()  # the first layer always keeps the first latent
    assert (mask[:, 1:].int() >= mask[:, :-1].int()).all()  # once crossed over, the rest follows
    assert mask[:, -1].sum() == mixed.sum()  # every mixed image takes at least the last slot
    cutoffs = 9 - mask[mixed].sum(dim=1)
    assert set(cutoffs.tolist()) == set(range(1, 9))  # every crossover point occurs


# --- sampling, truncation and mixing -------------------------------------------------------------------

def test_noise_is_fixed_in_evaluation_and_fresh_in_training():
    model = build().eval()
    for layer in model.G.modules():
        if isinstance(layer, sg.SynthesisLayer):
            layer.noise_strength.data.fill_(0.5)  # audible noise
    z = torch.randn(4, model.z_dim)
    assert torch.equal(model.G(z), model.G(z))
    model.G.train()
    assert not torch.equal(model.G(z), model.G(z))


def test_average_w_is_tracked_in_training_only():
    model = build(sets=["w_avg_beta=0.9"])
    G = model.G
    assert torch.equal(G.mapping.w_avg, torch.zeros(16))
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(200):
            G.mapping(torch.randn(64, 16))
        mean_w = G.mapping(torch.randn(20000, 16)).mean(dim=0)
        assert torch.allclose(G.mapping.w_avg, mean_w, atol=0.05)
        G.eval()
        before = G.mapping.w_avg.clone()
        G.mapping(torch.randn(64, 16) + 5)
        assert torch.equal(G.mapping.w_avg, before)


@torch.no_grad()
def test_truncation_pulls_w_towards_the_average():
    model = build().eval()
    G = model.G
    G.mapping.w_avg.copy_(torch.randn(16))
    z = torch.randn(6, model.z_dim)
    assert torch.equal(model.truncate(z, 1.0), G(z))
    w = G.mapping(z)
    psi = 0.7
    expected = G.crop(G.synthesis(G.broadcast(G.mapping.w_avg + psi * (w - G.mapping.w_avg))))
    assert torch.allclose(model.truncate(z, psi), expected, atol=1e-5)
    # small psi: every image close to the average w's image
    average = G.crop(G.synthesis(G.broadcast(G.mapping.w_avg[None].expand(6, -1))))
    spread = lambda psi: float((model.truncate(z, psi) - average).abs().mean())  # noqa: E731
    assert spread(0.01) < spread(0.5) < spread(1.0)
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(UserError, match=r"\(0, 1\]"):
            model.truncate(z, bad)


def test_mixing_takes_the_chosen_levels_from_b():
    model = build(32).eval()
    z_a, z_b = torch.randn(3, model.z_dim), torch.randn(3, model.z_dim)
    a, b = model.G(z_a), model.G(z_b)
    assert torch.equal(model.mix(z_a, z_b, []), a)
    assert torch.equal(model.mix(z_a, z_b, list(sg.LEVELS)), b)
    coarse = model.mix(z_a, z_b, ["coarse"])
    assert not torch.allclose(coarse, a) and not torch.allclose(coarse, b)
    # the slots used are B's for coarse layers and A's for the rest
    mask = model.G.synthesis.level_mask(["coarse"])
    ws = torch.where(mask[None, :, None], model.styles(z_b), model.styles(z_a))
    assert torch.equal(coarse, model.synthesize(ws))


def test_training_step_mixes_styles_and_applies_lazy_r1(tmp_path):
    from conftest import make_trainer

    trainer = make_trainer("stylegan", tmp_path, sets=[*TINY, "r1_every=3"], steps=7)
    styles = []  # the ws (N, num_ws, w_dim) of every fake batch the steps draw
    trainer.model.G.synthesis.register_forward_pre_hook(lambda module, args: styles.append(args[0].detach()))
    records = []
    for _ in range(7):
        running = {}
        trainer._iteration(running)
        trainer.step += 1
        records.append(running)
    assert [("D/r1" in r) for r in records] == [True, False, False, True, False, False, True]
    assert all(float(r["D/r1"]) > 0 for r in records if "D/r1" in r)
    # style mixing (StyleGAN section 3.1): about 90% of the fakes switch to a second w once, at some layer
    ws = torch.cat(styles)
    switches = (ws[:, 1:] != ws[:, :-1]).any(dim=2)  # (N, num_ws - 1): where the next slot takes another w
    changes = switches.sum(dim=1)
    assert len(ws) == 7 * 8 and set(changes.tolist()) <= {0, 1}
    assert 0.7 <= float(changes.float().mean()) < 1.0
    assert len(set(switches[changes == 1].int().argmax(dim=1).tolist())) > 1  # the crossover layer varies


# --- where the truncation average lives ----------------------------------------------------------------

def test_average_w_travels_with_ema_checkpoint_and_load(stylegan_run):
    tensors, _ = checkpoint.load(str(checkpoint.list_checkpoints(stylegan_run / "checkpoints")[-1][1]))
    live, ema = tensors["net.G.mapping.w_avg"], tensors["ema.G.mapping.w_avg"]
    assert live.abs().sum() > 0 and torch.equal(live, ema)  # tracked in training, copied into the EMA G
    g = ganforge.load(stylegan_run)
    assert torch.equal(g.model.G.mapping.w_avg, ema)
    assert torch.equal(g.model.G.mapping.layers[0].weight, tensors["ema.G.mapping.layers.0.weight"])  # the EMA G samples


def test_loaded_generator_samples_with_truncation(stylegan_run):
    g = ganforge.load(stylegan_run)
    plain, same, truncated = g.sample(8, seed=3), g.sample(8, seed=3, truncation=1.0), g.sample(8, seed=3, truncation=0.5)
    assert plain.shape == (8, 1, 28, 28) and torch.equal(plain, same)
    z = g.model.latent(8, torch.Generator().manual_seed(3))
    assert torch.equal(truncated, g.model.truncate(z, 0.5))
    assert float(truncated.std(dim=0).mean()) < float(plain.std(dim=0).mean())  # less variety
    with pytest.raises(UserError, match="truncation"):
        g.sample(4, truncation=0)


def test_sample_command_truncation(stylegan_run, dcgan_run, tmp_path, capfd):
    path = tmp_path / "t.npz"
    assert cli.main(["sample", str(stylegan_run), "--n", "6", "--truncation", "0.7", "--npz", str(path)]) == 0
    images = np.load(path)["images"]
    expected = ganforge.load(stylegan_run).sample(6, truncation=0.7)
    assert images.shape == (6, 28, 28, 1)
    assert np.array_equal(images, ganforge.load(stylegan_run).to_native_uint8(expected).numpy())
    capfd.readouterr()
    for argv, needle in [([str(stylegan_run), "--truncation", "1.5"], "(0, 1]"),
                         ([str(stylegan_run), "--truncation", "0"], "(0, 1]"),
                         ([str(dcgan_run), "--truncation", "0.7"], "no truncation trick")]:
        assert cli.main(["sample", *argv, "--n", "2", "--grid", str(tmp_path / "g.png")]) == 2
        out, err = capfd.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_works_at_the_native_size_without_resizing(stylegan_run):
    """28-px digits train as they are (resizing 28 -> 32 -> 28 alone costs real digits cFD 65): G's 32-px
    image is centre-cropped, and D pads its 28-px input to 32 itself."""
    assert api.load(stylegan_run).cfg.size is None
    model = build(28).eval()
    z = torch.randn(3, model.z_dim)
    full = model.G.synthesis(model.G.broadcast(model.G.mapping(z)))  # (3, 1, 32, 32)
    assert full.shape[-1] == 32 and torch.equal(model.G(z), full[..., 2:30, 2:30])
    real = digits(4).images.float() / 127.5 - 1
    padded, _ = pad_to_multiple(real, 32)
    assert torch.equal(model.D(real), model.D(padded))


@pytest.mark.slow
def test_ten_cpu_minutes_reach_cfd_20(tmp_path):
    """The issue's target: `ganforge train stylegan --minutes 10` on mnist5k ends at cFD <= 20."""
    summary = ganforge.train("stylegan", minutes=10, out=str(tmp_path / "run"), progress=False)
    assert summary["metrics"]["cfd"] <= 20, summary["metrics"]
