"""Gram matrices of feature maps and the style loss built on them (Gatys, Ecker & Bethge 2016).

The Gram matrix G_ij = sum_p F_i(p) F_j(p) keeps which features fire together and drops where they
fire: the style of an image, without its layout.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

from ganforge.errors import UserError

Features = Union[torch.Tensor, Sequence[torch.Tensor]]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), normalised by C * H * W so layers of any size weigh alike
    (the normalisation of Johnson et al. 2016; Gatys folds it into the layer weights)."""
    if not torch.is_tensor(features) or features.dim() != 4:
        shape = tuple(features.shape) if torch.is_tensor(features) else type(features).__name__
        raise UserError(f"features must be a tensor (N, C, H, W), got {shape}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(features_a: Features, features_b: Features) -> torch.Tensor:
    """Sum over layers of the mean squared difference between the Gram matrices of a and b.

    Each argument is one feature map (N, C, H, W) or a list of them, one per layer, in the same
    order. A target ``features_b`` with batch 1 (one style image) applies to every image of a.
    """
    layers_a = [features_a] if torch.is_tensor(features_a) else list(features_a)
    layers_b = [features_b] if torch.is_tensor(features_b) else list(features_b)
    if len(layers_a) != len(layers_b) or not layers_a:
        raise UserError(f"style_loss needs the same number of layers on both sides, got {len(layers_a)} and {len(layers_b)}")
    total = 0
    for index, (a, b) in enumerate(zip(layers_a, layers_b)):
        gram_a, gram_b = gram_matrix(a), gram_matrix(b)
        if gram_a.shape[1:] != gram_b.shape[1:] or gram_b.shape[0] not in (1, gram_a.shape[0]):
            raise UserError(f"layer {index}: features {tuple(a.shape)} and {tuple(b.shape)} differ in channels or batch")
        total = total + F.mse_loss(gram_a, gram_b.expand_as(gram_a))
    return total
