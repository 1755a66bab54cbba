"""Every loss against a value computed by hand from its paper's formula; penalties against known gradients."""
import math

import pytest
import torch

from ganforge import losses

REAL = torch.tensor([0.0, 2.0])  # discriminator scores (logits / critic values)
FAKE = torch.tensor([-1.0, 1.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("kind", ["minimax", "nonsaturating"])
def test_d_loss_is_binary_cross_entropy(kind):
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(score)
    expected = (-math.log(sigmoid(0)) - math.log(sigmoid(2))) / 2 + (-math.log(1 - sigmoid(-1)) - math.log(1 - sigmoid(1))) / 2
    assert losses.d_loss(kind, REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_g_loss_minimax_and_nonsaturating():
    # minimax: minimise log(1 - D(G(z))); non-saturating: minimise -log D(G(z))
    minimax = (math.log(1 - sigmoid(-1)) + math.log(1 - sigmoid(1))) / 2
    nonsat = (-math.log(sigmoid(-1)) - math.log(sigmoid(1))) / 2
    assert losses.g_loss("minimax", FAKE).item() == pytest.approx(minimax, rel=1e-6)
    assert losses.g_loss("nonsaturating", FAKE).item() == pytest.approx(nonsat, rel=1e-6)


def test_nonsaturating_keeps_gradient_where_minimax_saturates():
    # Goodfellow 2014 section 3: when D confidently rejects a sample, log(1 - D) has a vanishing gradient.
    score = torch.tensor([-10.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(losses.g_loss("minimax", score), score)
    (g_nonsat,) = torch.autograd.grad(losses.g_loss("nonsaturating", score), score)
    assert abs(g_minimax.item()) < 1e-4 and abs(g_nonsat.item()) > 0.99
    assert g_minimax.item() < 0 and g_nonsat.item() < 0  # both push the score up


def test_lsgan_losses():
    # 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2]
    d = 0.5 * (((0 - 1) ** 2 + (2 - 1) ** 2) / 2 + ((-1) ** 2 + 1**2) / 2)
    g = 0.5 * (((-1 - 1) ** 2 + (1 - 1) ** 2) / 2)
    assert losses.d_loss("lsgan", REAL, FAKE).item() == pytest.approx(d)
    assert losses.g_loss("lsgan", FAKE).item() == pytest.approx(g)


def test_image_to_image_criterion_is_the_cyclegan_and_pix2pix_papers():
    # CycleGAN (Zhu 2017, section 4): G minimises E[(D(G(x)) - 1)^2] in full; D half of E[(D(y) - 1)^2] + E[D(G(x))^2]
    assert losses.criterion("lsgan", FAKE, real=True).item() == pytest.approx(((-1 - 1) ** 2 + 0) / 2)
    assert losses.halved_d_criterion("lsgan", REAL, FAKE).item() == pytest.approx(0.5 * ((1 + 1) / 2 + (1 + 1) / 2))
    # so beside the cycle loss, G's adversarial term is twice LSGAN's own 1/2 E[(D(G(z)) - 1)^2]
    assert losses.criterion("lsgan", FAKE, real=True).item() == pytest.approx(2 * losses.g_loss("lsgan", FAKE).item())
    # pix2pix (Isola 2017, section 3.3): binary cross-entropy, D's objective divided by 2
    assert losses.criterion("nonsaturating", FAKE, real=True).item() == pytest.approx(losses.g_loss("nonsaturating", FAKE).item())
    assert losses.halved_d_criterion("nonsaturating", REAL, FAKE).item() == pytest.approx(0.5 * losses.d_loss("nonsaturating", REAL, FAKE).item())
    with pytest.raises(ValueError):
        losses.criterion("wasserstein", FAKE, real=True)


def test_wasserstein_losses():
    assert losses.d_loss("wasserstein", REAL, FAKE).item() == pytest.approx(0.0 - 1.0)  # E[D(G(z))] - E[D(x)]
    assert losses.g_loss("wasserstein", FAKE).item() == pytest.approx(0.0)
    assert losses.g_loss("wasserstein", torch.tensor([3.0, 5.0])).item() == pytest.approx(-4.0)


def test_hinge_losses():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    # mean(relu(1 - r)) + mean(relu(1 + f)) = (0.5 + 0)/2 + (0 + 1.5)/2
    assert losses.d_loss("hinge", real, fake).item() == pytest.approx(1.0)
    assert losses.g_loss("hinge", fake).item() == pytest.approx(0.75)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="wasserstien"):
        losses.d_loss("wasserstien", REAL, FAKE)
    with pytest.raises(ValueError, match="wasserstien"):
        losses.g_loss("wasserstien", FAKE)


def test_gradient_penalty_of_linear_critic_is_known_exactly():
    # D(x) = <w, x> has gradient w everywhere: the penalty is (||w|| - 1)^2 for every interpolate.
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    w = torch.randn(1, 3, 3)
    w = torch.nn.Parameter(w * (3.0 / w.norm()))  # ||w|| = 3

    def critic(x):
        return (x * w).flatten(1).sum(1)

    penalty = losses.gradient_penalty(critic, real, fake)
    # per-sample norms: a norm over the whole batch would give (sqrt(4) * 3 - 1)^2 = 25
    assert penalty.item() == pytest.approx(4.0, rel=1e-5)
    # it is differentiable in the critic's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    penalty.backward()
    assert torch.allclose(w.grad, 2 * (3.0 - 1) * w.detach() / 3.0, atol=1e-5)


def test_gradient_penalty_is_taken_at_random_interpolates():
    # D(x) = 1/2 ||x||^2 has gradient x: the penalty depends on where between real and fake it is taken.
    real, fake = torch.full((3, 2, 2, 2), 1.0), torch.full((3, 2, 2, 2), -0.5)

    def critic(x):
        return 0.5 * x.flatten(1).square().sum(1)

    penalty = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    x_hat = eps * real + (1 - eps) * fake
    expected = (x_hat.flatten(1).norm(dim=1) - 1).square().mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)
    assert len(set(eps.flatten().tolist())) == 3  # one interpolation weight per sample


def test_r1_penalty_of_known_critics():
    real = torch.tensor([[1.0, 2.0], [0.0, -3.0]], requires_grad=True)
    w = torch.tensor([3.0, 4.0])
    assert losses.r1_penalty((real * w).sum(1), real).item() == pytest.approx(25.0)  # ||w||^2
    # D(x) = 1/2 ||x||^2: E ||x||^2 = (5 + 9) / 2
    assert losses.r1_penalty(0.5 * real.square().sum(1), real).item() == pytest.approx(7.0)


def test_classification_and_split_scores():
    out = torch.tensor([[0.3, 0.0, 0.0, math.log(2.0)], [-1.0, 1.0, 1.0, 1.0]])  # (B, 1 + K), K = 3
    adv, logits = losses.split_scores(out, 3)
    assert adv.tolist() == pytest.approx([0.3, -1.0])
    assert logits.shape == (2, 3)
    # sample 0, class 2: -log(2 / (1 + 1 + 2)); sample 1, class 0: -log(1/3)
    ce = losses.classification(logits, torch.tensor([2, 0]))
    assert ce.item() == pytest.approx((math.log(2.0) + math.log(3.0)) / 2, rel=1e-6)


def test_l1():
    assert losses.l1(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.5)
