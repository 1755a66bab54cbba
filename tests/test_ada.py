"""Adaptive discriminator augmentation (Karras et al. 2020): each transform of the bgc pipeline, its gradients
(twice over, for R1), and the heuristic that moves p, through real training, checkpoints and resume."""
import json
import math

import pytest
import torch

import ganforge
from ganforge import api, config
from ganforge.errors import UserError
from ganforge.models import MODELS
from ganforge.nn import ada
from ganforge.nn.augment import DiffAugment, build_augment
from ganforge.training import checkpoint

from conftest import digits, make_trainer, train_fast

GEOMETRIC = ["xflip", "rotate90", "xint", "scale", "rotate_before", "aniso", "rotate_after", "xfrac"]
COLOUR = ["brightness", "contrast", "lumaflip", "hue", "saturation"]


def images(n=6, channels=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def draws_for(name, n=6, seed=0):
    """Draws (u, z) for the whole pipeline under which only transform `name` is applied (at p = 1)."""
    g = torch.Generator().manual_seed(seed)
    u, z = torch.rand(n, 21, generator=g), torch.randn(n, 7, generator=g)
    u[:, :8] = 1.0  # a gate's draw of 1 is never under p
    u[:, 14:19] = 1.0
    if name in GEOMETRIC:
        u[:, GEOMETRIC.index(name)] = 0.0
    else:
        u[:, 14 + COLOUR.index(name)] = 0.0
    return u, z


def pipeline(x, u, z, p=1.0):
    m, moved = ada.geometric_matrices(u[:, :14], z[:, :4], p, *x.shape[-2:])
    return ada.apply_colour(ada.apply_geometric(x, m, moved), ada.colour_matrices(u[:, 14:], z[:, 4:], p))


def test_p_zero_passes_the_input_itself_without_drawing():
    x = images()
    state = torch.get_rng_state()
    assert ada.augment(x, 0.0) is x
    assert ada.AdaptiveAugment(p=0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", GEOMETRIC + COLOUR)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_each_transform_keeps_shape_and_range_and_changes_the_images(name, channels):
    x = images(channels=channels)
    u, z = draws_for(name)
    y = pipeline(x, u, z)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if name in GEOMETRIC:  # a resampling: each output pixel is a convex mix of input pixels
        assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    else:  # the paper's colour spreads stay within a few times the input's range
        assert y.abs().max() < 12
    changed = (y - x).flatten(1).abs().amax(dim=1) > 1e-4
    if name in ("xflip", "rotate90", "xint", "lumaflip"):  # discrete draws, the identity among them
        assert changed.any()
    elif not (channels == 1 and name in ("hue", "saturation")):  # grey lies on the axis these turn about
        assert changed.sum() >= len(x) - 1
    if channels == 4 and name in COLOUR:
        assert torch.equal(y[:, 3], x[:, 3])  # alpha is not a colour


@pytest.mark.parametrize("name", GEOMETRIC + COLOUR)
def test_a_transform_whose_gate_stays_shut_is_the_identity(name):
    x = images()
    u, z = draws_for(name)
    u[:, :8], u[:, 14:19] = 1.0, 1.0
    assert torch.equal(pipeline(x, u, z), x)


def test_blits_land_on_pixels_exactly():
    x = images(n=4, size=8)
    u, z = draws_for("xflip", n=4)
    u[:, 8] = 0.0  # flip every image
    assert torch.equal(pipeline(x, u, z), x.flip(-1))
    u, z = draws_for("rotate90", n=4)
    u[:, 9] = 0.3  # a quarter turn
    y = pipeline(x, u, z)
    assert any(torch.equal(y, torch.rot90(x, k, (-2, -1))) for k in (1, 3))
    u, z = draws_for("xint", n=4)
    u[:, 10], u[:, 11] = 1.0, 0.5  # one pixel (1/8 of 8) along x, none along y
    y = pipeline(x, u, z)
    assert torch.equal(y[..., :-1], x[..., 1:])
    assert torch.equal(y[..., -1], x[..., -1])  # the border reflects


def test_colour_transforms_on_grey_follow_the_luma_axis():
    grey = images(channels=1)
    u, z = draws_for("lumaflip")
    u[:, 19] = 0.0  # every image flipped
    assert torch.allclose(pipeline(grey, u, z), -grey, atol=1e-6)
    rgb = grey.expand(-1, 3, -1, -1)  # a grey pixel is on the axis that hue turns about
    u, z = draws_for("hue")
    assert torch.allclose(pipeline(rgb, u, z), rgb, atol=1e-5)
    u, z = draws_for("brightness")
    shift = pipeline(rgb, u, z) - rgb
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)  # the same offset everywhere


def test_rotations_share_p_so_that_one_happens_with_probability_p():
    torch.manual_seed(0)
    n, p = 20000, 0.5
    u, z = torch.rand(n, 14), torch.randn(n, 4)
    p_rot = 1 - math.sqrt(1 - p)
    rotated = (u[:, 4] < p_rot) | (u[:, 6] < p_rot)
    assert abs(rotated.float().mean().item() - p) < 0.02


def test_full_pipeline_at_p_one_changes_every_image_and_keeps_the_batch():
    torch.manual_seed(1)
    x = images(n=16)
    y = ada.augment(x, 1.0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert ((y - x).flatten(1).abs().amax(dim=1) > 1e-3).all()


def test_gradients_flow_to_the_images_twice_over():
    x = images(n=2, size=6).double().requires_grad_(True)

    def augmented(images):
        torch.manual_seed(3)  # the same draws at every call
        return ada.augment(images, 0.8)

    assert torch.autograd.gradcheck(augmented, (x,), eps=1e-6, atol=1e-4)
    assert torch.autograd.gradgradcheck(augmented, (x,), eps=1e-6, atol=1e-4)


def build(name, sets=(), channels=3, size=16):
    cfg = api.resolve_config(name, sets=list(sets))
    info = {"name": "test", "channels": channels, "size": size, "native_size": size, "classes": []}
    torch.manual_seed(0)
    return MODELS[name](cfg, info)


def test_r1_through_the_pipeline_gives_finite_gradients_to_d():
    model = build("stylegan", ["width=4", "max_width=8", "z_dim=8", "w_dim=8", "augment.policy=ada", "augment.p=0.7"])
    real = images(n=4).requires_grad_(True)
    scores = model.score(real, real=True)
    penalty = ganforge.losses.r1_penalty(scores, real)
    penalty.backward()
    grads = [p.grad for p in model.D.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_penalties_take_autograd_while_ada_augments():
    x = images(n=3, channels=1, size=28)
    fixed = ["augment.policy=ada", "augment.interval=0"]  # a Wasserstein critic holds p fixed
    assert build("wgan-gp", fixed, channels=1, size=28).score_gradient(x) is not None  # p = 0: the input itself
    model = build("wgan-gp", [*fixed, "augment.p=0.3"], channels=1, size=28)
    assert model.score_gradient(x) is None
    penalty = ganforge.losses.gradient_penalty(model.score, x, images(n=3, channels=1, size=28, seed=1),
                                               input_gradient=model.score_gradient)
    penalty.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.D.parameters() if p.grad is not None)


def test_p_moves_by_images_seen_over_speed_towards_the_target():
    pipe = ada.AdaptiveAugment(p=0.0, target=0.6, interval=2, speed=1000)
    for _ in range(2):
        pipe.observe(torch.ones(10, 1))  # D sure of every real
    assert pipe.due()
    pipe.adjust(*pipe.totals().tolist())
    assert pipe.rt == 1.0 and pipe.p == pytest.approx(20 / 1000) and not pipe.due()
    for _ in range(2):
        pipe.observe(-torch.ones(10, 1))
    pipe.adjust(*pipe.totals().tolist())
    assert pipe.rt == -1.0 and pipe.p == 0.0  # floored at 0
    lsgan = ada.AdaptiveAugment(threshold=0.5)  # LSGAN's targets are 0 and 1
    lsgan.observe(torch.full((4, 1), 0.7))
    assert float(lsgan.signs) == 4


RUN = ["width=4", "augment.policy=ada", "augment.interval=2", "augment.speed=2000"]


def train_records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in line]


def test_p_rises_on_a_d_that_overfits_and_is_logged(tmp_path):
    # 64 digits and a fast D: D soon tells the reals apart, r_t goes over 0.6 and p climbs
    trainer = make_trainer("dcgan", tmp_path, sets=[*RUN, "optim.D.lr=0.01"], data=digits(64), steps=40, batch_size=16)
    trainer.fit()
    rows = train_records(tmp_path)
    assert rows[0]["augment_p"] == 0.0 and "augment_rt" not in rows[0]
    assert rows[-1]["augment_p"] > 0.1 and rows[-1]["augment_p"] == trainer.model.augment.p
    assert all(b["augment_p"] >= a["augment_p"] - 16 * 2 / 2000 - 1e-12 for a, b in zip(rows, rows[1:]))
    assert (tmp_path / "losses.png").is_file()


@pytest.mark.parametrize("offset,expected", [(-100.0, 0.0), (100.0, 20 * 16 * 2 / 2000)])
def test_p_follows_the_sign_of_d_on_reals(tmp_path, offset, expected):
    trainer = make_trainer("dcgan", tmp_path, sets=RUN, data=digits(64), steps=40, batch_size=16)
    trainer.model.D.register_forward_hook(lambda module, inputs, out: out + offset)  # D sure either way
    trainer.fit()
    assert trainer.model.augment.p == pytest.approx(expected)
    assert trainer.model.augment.rt == (1.0 if offset > 0 else -1.0)


def test_p_and_its_statistics_survive_save_and_resume_bit_exactly(tmp_path, digits_npz):
    # checkpoint at step 3 lies inside an interval of 2 D steps: the statistics gathered so far must come back too
    sets = [*RUN, "augment.p=0.2", "augment.speed=200", "ema.beta=0.9"]
    common = dict(data=str(digits_npz), batch_size=8, seed=3)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_fast("dcgan", straight, sets=sets, steps=6, **common)
    train_fast("dcgan", resumed, sets=sets, steps=3, **common)
    ganforge.train("dcgan", out=str(resumed), steps=6, resume=True, progress=False)
    (a, meta_a), (b, meta_b) = [checkpoint.load(str(run / "checkpoints" / "step_000006.json")) for run in (straight, resumed)]
    assert sorted(a) == sorted(b) and [k for k in a if not torch.equal(a[k], b[k])] == []
    assert meta_a["augment"] == meta_b["augment"] and meta_a["augment"]["p"] != 0.2
    _, meta_half = checkpoint.load(str(resumed / "checkpoints" / "step_000003.json"))
    assert meta_half["augment"]["batches"] == 1 and meta_half["augment"]["seen"] == 8
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "img_per_s")} for r in rows]
    assert strip(train_records(straight)) == strip(train_records(resumed))


def test_settings_are_checked_by_name():
    cfg = api.resolve_config("dcgan", sets=["augment.policy=ada"])
    assert (cfg.augment.p, cfg.augment.target, cfg.augment.interval, cfg.augment.speed) == (None, 0.6, 4, 500000.0)
    pipe = build_augment(cfg.augment)
    assert isinstance(pipe, ada.AdaptiveAugment) and pipe.p == 0.0 and pipe.adaptive
    assert isinstance(build_augment(api.resolve_config("dcgan", sets=["augment.policy=color"]).augment), DiffAugment)
    for setting, needle in [("augment.p=1.5", "augment.p"), ("augment.target=2", "augment.target"),
                            ("augment.interval=-1", "augment.interval"), ("augment.speed=0", "augment.speed"),
                            ("augment.p=often", "augment.p")]:
        with pytest.raises(UserError, match=needle):
            api.resolve_config("dcgan", sets=["augment.policy=ada", setting])
    with pytest.raises(UserError, match="does not combine"):
        build("dcgan", ["augment.policy=ada,color"])
    with pytest.raises(UserError, match="augment.interval=0"):
        api.resolve_config("wgan-gp", sets=["augment.policy=ada"])
    with pytest.raises(UserError, match="cyclegan does not use 'augment'"):
        api.resolve_config("cyclegan", sets=["augment.policy=ada"])
    assert config.TRAINER_DEFAULTS["augment"]["policy"] == ""  # off unless asked for


def test_stylegan_takes_ada_from_its_colour_rung_and_none_turns_it_off():
    colour = {"size": 64, "channels": 3, "count": 1674}
    assert api.resolve_config("stylegan", image={**colour, "size": 28}).augment.policy == ""  # digits: off
    assert build_augment(api.resolve_config("stylegan", image=colour).augment).adaptive
    off = api.resolve_config("stylegan", image=colour, sets=["augment.policy=none"])
    pipe = build_augment(off.augment)
    assert not pipe.adaptive and not pipe.active
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(pipe(x), x)
    with pytest.raises(UserError, match="or none"):
        build_augment(api.resolve_config("dcgan", sets=["augment.policy=colour"]).augment)
