"""Every network at every supported size, conditional and not; initialisation and normalisation as the papers say."""
import pytest
import torch
from torch import nn

from ganforge import config
from ganforge.data.mnist5k import DIGITS
from ganforge.errors import UserError
from ganforge.models import MODELS
from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.nn.layers import dcgan_init, pyramid
from ganforge.nn.mlp import MLPDiscriminator, MLPGenerator

from conftest import small

SIZES = [28, 32, 48, 64]
CLASSIC = ["gan", "cgan", "dcgan", "lsgan", "wgan", "wgan-gp", "acgan"]  # noise-to-image families; the others test their own


def build(name: str, size: int, channels: int = 1, classes=DIGITS, sets=()):
    cls = MODELS[name]
    narrow = [] if "networks=mlp" in sets else small(name)  # cgan's MLPs take no conv width
    cfg = config.resolve(name, cls.defaults, sets=[*narrow, *sets])
    info = {"name": "test", "channels": channels, "size": size, "native_size": size, "classes": list(classes)}
    torch.manual_seed(0)
    return cls(cfg, info)


@pytest.mark.parametrize("size,expected", [(28, (7, 2)), (32, (4, 3)), (48, (6, 3)), (64, (4, 4)), (8, (4, 1)), (112, (7, 4))])
def test_pyramid_splits_sizes_into_base_and_doublings(size, expected):
    assert pyramid(size) == expected


@pytest.mark.parametrize("size", [30, 4, 100])
def test_unsupported_sizes_are_user_errors(size):
    with pytest.raises(UserError, match=str(size)):
        DCGANGenerator(16, 1, size, width=8)
    with pytest.raises(UserError, match=str(size)):
        DCGANDiscriminator(1, size, width=8)


@pytest.mark.parametrize("name", ["dcgan", "lsgan", "wgan", "wgan-gp", "acgan"])
def test_convolutional_models_reject_size_30(name):
    with pytest.raises(UserError, match="30"):
        build(name, 30)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", CLASSIC)
def test_every_model_generates_and_scores_at_every_size(name, size, channels):
    model = build(name, size, channels)
    labels = torch.tensor([0, 3, 9, 9, 1])
    x = model.sample(5, labels=labels)
    assert x.shape == (5, channels, size, size)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1  # tanh output
    scores = model.D(x, labels)
    if name == "acgan":
        assert scores.shape == (5, 1 + len(DIGITS))  # adversarial score + class logits
    else:
        assert scores.shape == (5,)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp"])
def test_unconditional_models_work_on_unlabelled_data(name):
    model = build(name, 32, 3, classes=())
    assert model.n_classes == 0
    assert model.sample(4).shape == (4, 3, 32, 32)


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_models_need_labels(name):
    with pytest.raises(UserError, match="label"):
        build(name, 28, classes=())


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_generators_follow_their_label(name):
    model = build(name, 28).eval()
    z = torch.randn(4, model.z_dim)
    a = model.G(z, torch.tensor([1, 1, 1, 1]))
    b = model.G(z, torch.tensor([7, 7, 7, 7]))
    assert not torch.allclose(a, b, atol=1e-4)


def test_cgan_networks_are_convolutional_by_default_and_the_papers_mlps_on_request():
    conv, mlp = build("cgan", 28), build("cgan", 28, sets=["networks=mlp", "hidden_g=[32]", "hidden_d=[32]"])
    assert isinstance(conv.G, DCGANGenerator) and isinstance(conv.D, DCGANDiscriminator)
    assert conv.D.n_classes == 10  # the label planes joined to the image
    assert isinstance(mlp.G, MLPGenerator) and isinstance(mlp.D, MLPDiscriminator)
    with pytest.raises(UserError, match="networks must be conv or mlp, got 'resnet'"):
        build("cgan", 28, sets=["networks=resnet"])


def test_conditional_discriminators_see_the_label():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    mlp = MLPDiscriminator((1, 28, 28), (32,), n_classes=10)
    conv = DCGANDiscriminator(1, 28, width=8, norm="none", n_classes=10)
    for D in (mlp, conv):
        assert not torch.allclose(D(x, torch.tensor([0, 0, 0])), D(x, torch.tensor([5, 5, 5])))


@pytest.mark.parametrize("size", SIZES)
def test_mlp_networks_at_every_size(size):
    G = MLPGenerator(16, (3, size, size), (32,), n_classes=4)
    D = MLPDiscriminator((3, size, size), (32,), n_classes=4)
    labels = torch.tensor([0, 1, 2, 3])
    x = G(torch.randn(4, 16), labels)
    assert x.shape == (4, 3, size, size)
    assert D(x, labels).shape == (4,)


def test_dcgan_generator_has_the_papers_channel_widths():
    # Radford 2015, figure 1: a 64-px G projects z to 4x4x1024 at their width; width 64 here gives 512-256-128-64.
    G = DCGANGenerator(100, 3, 64, width=64)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs] == [512, 256, 128, 64]
    assert convs[-1].out_channels == 3


def test_dcgan_init_draws_from_the_papers_distributions():
    torch.manual_seed(0)
    D = DCGANDiscriminator(1, 64, width=64, norm="batch")
    dcgan_init(D)
    weights = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))])
    assert weights.mean().abs() < 2e-3 and abs(weights.std().item() - 0.02) < 1e-3  # N(0, 0.02)
    bn = [m for m in D.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([m.weight for m in bn])
    assert abs(gammas.mean().item() - 1.0) < 5e-3 and gammas.std().item() < 0.03  # N(1, 0.02)
    assert all(m.bias.abs().max() == 0 for m in bn)


def stored_weights(module: nn.Module) -> torch.Tensor:
    """Every conv and linear layer's stored weight: spectral norm's original, which training updates."""
    out = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            parametrized = nn.utils.parametrize.is_parametrized(m, "weight")
            out.append((m.parametrizations.weight.original if parametrized else m.weight).flatten())
    return torch.cat(out)


@pytest.mark.parametrize("norm", ["none", "batch", "spectral"])
def test_discriminator_weights_start_from_the_papers_init_under_every_norm(norm):
    torch.manual_seed(0)
    D = DCGANDiscriminator(1, 64, width=64, norm=norm)  # the constructor applies dcgan_init
    weights = stored_weights(D)
    assert weights.mean().abs() < 2e-3 and abs(weights.std().item() - 0.02) < 1e-3  # N(0, 0.02), not torch's default
    if norm == "spectral":
        for m in D.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # the power iteration was refitted to the new weight: W / sigma has spectral norm ~1
                w = m.parametrizations.weight.original.detach().flatten(1)
                sigma = torch.linalg.matrix_norm(w, ord=2)
                estimate = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
                assert sigma.item() == pytest.approx(0.02 * (w.shape[0] ** 0.5 + w.shape[1] ** 0.5), rel=0.5)
                assert estimate.item() == pytest.approx(1.0, rel=0.05)


def test_discriminator_normalisations():
    batch = DCGANDiscriminator(1, 32, width=8, norm="batch")
    convs = [m for m in batch.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in batch.features if isinstance(m, nn.BatchNorm2d)]
    assert batch.uses_batch_norm and len(norms) == len(convs) - 1  # none after the first layer (Radford 2015)
    assert isinstance(batch.features[1], nn.LeakyReLU) and batch.features[1].negative_slope == 0.2
    plain = DCGANDiscriminator(1, 32, width=8, norm="none")
    assert not plain.uses_batch_norm and not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_wgan_gp_critic_has_no_batch_norm():
    # the penalty is per sample, which batch norm would break (Gulrajani 2017, section 4)
    model = build("wgan-gp", 28)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.D.modules())


def test_spectral_norm_bounds_each_layer_by_one():
    torch.manual_seed(0)
    D = DCGANDiscriminator(1, 28, width=8, norm="spectral")
    x = torch.randn(8, 1, 28, 28)
    for _ in range(5):  # power iterations run in training mode
        D(x)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05)


def d_batch_sizes(model, *inputs):
    """model.score_pair(*inputs) and the batch size of each call it made to D."""
    sizes = []
    hook = model.D.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    try:
        return model.score_pair(*inputs), sizes
    finally:
        hook.remove()


def test_score_pair_keeps_batch_norm_statistics_apart():
    # With batch norm in D, scoring real and fake in one batch would let D tell them apart by batch statistics.
    torch.manual_seed(0)
    model = build("dcgan", 28, sets=["d_norm=batch"]).train()
    real, fake = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(6, 1, 28, 28) * 0.2
    (r, f), sizes = d_batch_sizes(model, real, fake)
    assert sizes == [6, 6]
    assert torch.allclose(r, model.D(real), atol=1e-6) and torch.allclose(f, model.D(fake), atol=1e-6)
    assert not torch.allclose(r, model.D(torch.cat([real, fake]))[:6], atol=1e-4)


def test_score_pair_batches_real_and_fake_without_batch_norm():
    torch.manual_seed(0)
    model = build("wgan-gp", 28).train()
    real, fake = torch.rand(6, 1, 28, 28), torch.rand(5, 1, 28, 28)
    (r, f), sizes = d_batch_sizes(model, real, fake)
    assert sizes == [11]  # one call to D for both
    assert torch.allclose(r, model.D(real), atol=1e-5) and torch.allclose(f, model.D(fake), atol=1e-5)
    # a conditional D: one call still, each half scored with its own labels
    model = build("cgan", 28, sets=["d_norm=none"]).train()
    real_labels, fake_labels = torch.arange(6), torch.arange(5) + 5
    (r, f), sizes = d_batch_sizes(model, real, fake, real_labels, fake_labels)
    assert sizes == [11]
    assert torch.allclose(r, model.D(real, real_labels), atol=1e-5)
    assert torch.allclose(f, model.D(fake, fake_labels), atol=1e-5)


# The critic's closed-form input gradient (penalties) and its frozen backward (G steps) against autograd.
# float64 so that the two orders of summation agree to 1e-9.
CRITICS = {
    "plain": dict(channels=1, size=28, norm="none"),
    "rgb spectral": dict(channels=3, size=32, norm="spectral"),
    "conditional": dict(channels=1, size=28, norm="none", n_classes=10),
    "auxiliary head": dict(channels=1, size=28, norm="none", aux_classes=10),
}


def critic(kind: str) -> DCGANDiscriminator:
    torch.manual_seed(0)
    spec = CRITICS[kind]
    D = DCGANDiscriminator(spec["channels"], spec["size"], width=8, norm=spec["norm"],
                           n_classes=spec.get("n_classes", 0), aux_classes=spec.get("aux_classes", 0))
    for p in D.parameters():  # weights big enough that the gradients are far from zero
        p.data.normal_(0.0, 0.3)
    return D.double().eval()  # eval: spectral norm's power iteration would move between the two calls


def critic_input(D: DCGANDiscriminator, n: int = 5):
    channels = D.features[0].in_channels - D.n_classes
    x = torch.randn(n, channels, D.size, D.size, dtype=torch.float64)
    labels = torch.arange(n) % 10 if D.n_classes else None
    return x, labels


def adversarial(out: torch.Tensor) -> torch.Tensor:
    return out[:, 0] if out.dim() == 2 else out


@pytest.mark.parametrize("kind", CRITICS)
def test_closed_form_input_gradient_is_autograds(kind):
    D = critic(kind)
    x, labels = critic_input(D)
    expected = torch.autograd.grad(adversarial(D(x.requires_grad_(True), labels)).sum(), x)[0]
    got = D.input_gradient(x.detach(), labels)
    assert got.shape == x.shape
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12) and expected.abs().max() > 1e-3


@pytest.mark.parametrize("kind", CRITICS)
def test_gradient_penalty_from_the_closed_form_has_autograds_weight_gradients(kind):
    from ganforge import losses

    D = critic(kind)
    real, labels = critic_input(D)
    fake = torch.randn_like(real)
    by_autograd = losses.gradient_penalty(lambda t: adversarial(D(t, labels)), real, fake, torch.Generator().manual_seed(3))
    closed = losses.gradient_penalty(lambda t: adversarial(D(t, labels)), real, fake, torch.Generator().manual_seed(3),
                                     input_gradient=lambda t: D.input_gradient(t, labels))
    assert closed.item() == pytest.approx(by_autograd.item(), rel=1e-9)
    params = [p for p in D.parameters()]
    expected = torch.autograd.grad(by_autograd, params, allow_unused=True)
    got = torch.autograd.grad(closed, params, allow_unused=True)
    for (name, _), e, g in zip(D.named_parameters(), expected, got):
        e = torch.zeros_like(params[0]) if e is None else e  # biases: no gradient (the penalty ignores them)
        if g is None:
            assert e.abs().max() < 1e-12, name
        else:
            assert torch.allclose(g, e, rtol=1e-8, atol=1e-12), name
    assert any(g is not None and g.abs().max() > 1e-3 for g in got)


@pytest.mark.parametrize("kind", CRITICS)
def test_frozen_critic_backward_is_autograds(kind):
    # A G step: D's weights frozen, the gradient wanted only at its input, through every output column.
    D = critic(kind)
    x, labels = critic_input(D)
    weights = torch.randn(x.shape[0], 1 + D.aux_classes, dtype=torch.float64)

    def input_grad():
        xg = x.clone().requires_grad_(True)
        out = D(xg, labels)
        (out.reshape(x.shape[0], -1) * weights).sum().backward()
        return xg.grad

    expected = input_grad()  # weights trainable: autograd's path
    plain_scores = D(x, labels)
    D.requires_grad_(False)
    assert D._frozen_with_input_grad(x.clone().requires_grad_(True))
    got = input_grad()
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12) and expected.abs().max() > 1e-3
    # its forward gives the plain forward's scores (biases included)
    assert torch.allclose(D(x.clone().requires_grad_(True), labels), plain_scores, rtol=1e-9, atol=1e-12)
    with torch.no_grad():  # no gradient wanted: the plain forward
        assert not D._frozen_with_input_grad(x.clone().requires_grad_(True))


def test_closed_forms_read_each_spectral_weight_once():
    # in training mode every read of a spectral-norm weight runs a power iteration; a forward pass reads each once
    a, b = critic("rgb spectral").train(), critic("rgb spectral").train()
    x, _ = critic_input(a)
    a(x)
    b.input_gradient(x)
    for (name, u), v in zip(a.named_buffers(), b.buffers()):
        assert torch.equal(u, v), name
    b.requires_grad_(False)
    b(x.clone().requires_grad_(True)).sum().backward()  # the frozen path: its forward reads, its backward reuses
    a(x)
    for (name, u), v in zip(a.named_buffers(), b.buffers()):
        assert torch.equal(u, v), name


def test_no_closed_form_with_batch_norm_or_under_autocast():
    torch.manual_seed(0)
    bn = DCGANDiscriminator(1, 28, width=8, norm="batch")
    x = torch.randn(4, 1, 28, 28)
    assert bn.input_gradient(x) is None
    bn.requires_grad_(False)
    assert not bn._frozen_with_input_grad(x.requires_grad_(True))  # batch norm couples the samples
    plain = DCGANDiscriminator(1, 28, width=8, norm="none")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert plain.input_gradient(x) is None


def test_wgan_gp_takes_the_closed_form_unless_augmentation_sits_between():
    x = torch.rand(3, 1, 28, 28)
    assert build("wgan-gp", 28).score_gradient(x) is not None
    assert build("wgan-gp", 28, sets=["augment.policy=translation"]).score_gradient(x) is None
    assert build("wgan-gp", 28, sets=["augment.policy=translation", "augment.p=0"]).score_gradient(x) is not None
