"""Adversarial losses, penalties and reconstruction terms, written from their papers' definitions.

Discriminator outputs are raw scores (logits); the sigmoid of the original GAN lives inside softplus,
which is the numerically stable form of log(sigmoid(.)).
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

ADVERSARIAL_LOSSES = ("minimax", "nonsaturating", "lsgan", "wasserstein", "hinge")


def d_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """The discriminator's (critic's) loss on real and fake scores."""
    if kind in ("minimax", "nonsaturating"):
        # -log D(x) - log(1 - D(G(z))), Goodfellow 2014 eq. 1
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        # 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] with a = 0, b = 1 (Mao 2017, eq. 9)
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())
    if kind == "wasserstein":
        # the critic maximises E[D(x)] - E[D(G(z))] (Arjovsky 2017)
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown adversarial loss '{kind}'")


def g_loss(kind: str, fake: Tensor) -> Tensor:
    """The generator's loss on the scores of its samples."""
    if kind == "minimax":
        # minimise log(1 - D(G(z))) = -softplus(score): saturates when D rejects samples early on
        return -F.softplus(fake).mean()
    if kind == "nonsaturating":
        # maximise log D(G(z)) instead, Goodfellow 2014 section 3
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).square().mean()  # c = 1
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown adversarial loss '{kind}'")


# The losses of pix2pix and CycleGAN, which state theirs as a criterion against real/fake labels.
CRITERION_LOSSES = ("nonsaturating", "lsgan")


def criterion(kind: str, scores: Tensor, real: bool) -> Tensor:
    """The GAN criterion of pix2pix and CycleGAN: binary cross-entropy (nonsaturating) or squared error (lsgan)
    of the scores against the label 1 (real) or 0 (fake). Their G minimises criterion(D(G(x)), real) in full
    (Zhu 2017 eq. 2 with LSGAN's squared error, section 4), and their D half of its two terms."""
    if kind == "nonsaturating":
        return F.softplus(-scores if real else scores).mean()
    if kind == "lsgan":
        return (scores - 1).square().mean() if real else scores.square().mean()
    raise ValueError(f"'{kind}' is not a criterion loss; use one of {', '.join(CRITERION_LOSSES)}")


def halved_d_criterion(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """D's criterion loss divided by 2 "to slow down the rate at which D learns relative to G" (Isola 2017,
    section 3.3; Zhu 2017, section 4)."""
    return 0.5 * (criterion(kind, real, True) + criterion(kind, fake, False))


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator=None,
                     input_gradient: Optional[Callable[[Tensor], Optional[Tensor]]] = None) -> Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] on random points between real and fake (Gulrajani 2017).

    input_gradient(x), when given and not None, is d(sum critic(x))/dx with its graph in the weights (a
    critic's closed form); autograd's double backward through critic otherwise.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, generator=generator)
    x_hat = eps * real + (1 - eps) * fake
    grad = input_gradient(x_hat) if input_gradient is not None else None
    if grad is None:
        x_hat = x_hat.requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(scores: Tensor, real: Tensor) -> Tensor:
    """R1: E[||grad D(x)||^2] on real data (Mescheder 2018); `real` must require grad before D runs."""
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(dim=1).mean()


def l1(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().mean()


def classification(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of an auxiliary classifier head (ACGAN) on class indices."""
    return F.cross_entropy(logits, labels)


def split_scores(out: Tensor, n_classes: int) -> Tuple[Tensor, Tensor]:
    """A discriminator with an auxiliary head returns (B, 1 + K): the adversarial score, then class logits."""
    return out[:, 0], out[:, 1 : 1 + n_classes]
