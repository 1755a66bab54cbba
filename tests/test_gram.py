"""Gram matrices and the style loss against hand-computed values."""
import pytest
import torch

from ganforge.errors import UserError
from ganforge.imaging.gram import gram_matrix, style_loss


def test_gram_matrix_of_a_hand_computed_case():
    # Two channels over a 1 x 2 image: F = [[1, 2], [3, 4]], F F^T = [[5, 11], [11, 25]], / (C H W = 4).
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(gram_matrix(features), expected)


def test_gram_matrix_ignores_where_features_are():
    # Style without layout: permuting pixels leaves the Gram matrix unchanged.
    features = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    shuffled = features.flatten(2)[:, :, torch.randperm(42, generator=torch.Generator().manual_seed(1))].view(2, 5, 6, 7)
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(features))
    assert gram_matrix(features).shape == (2, 5, 5)
    torch.testing.assert_close(gram_matrix(features), gram_matrix(features).transpose(1, 2))


def test_style_loss_is_zero_for_identical_features_and_sums_layers():
    generator = torch.Generator().manual_seed(2)
    a = [torch.randn(3, 4, 8, 8, generator=generator), torch.randn(3, 6, 4, 4, generator=generator)]
    b = [torch.randn(3, 4, 8, 8, generator=generator), torch.randn(3, 6, 4, 4, generator=generator)]
    assert float(style_loss(a, [t.clone() for t in a])) == 0.0
    assert float(style_loss(a, b)) > 0
    expected = sum(((gram_matrix(x) - gram_matrix(y)) ** 2).mean() for x, y in zip(a, b))
    torch.testing.assert_close(style_loss(a, b), expected)
    torch.testing.assert_close(style_loss(a[0], b[0]), ((gram_matrix(a[0]) - gram_matrix(b[0])) ** 2).mean())


def test_one_style_image_applies_to_the_whole_batch_and_gradients_flow():
    generator = torch.Generator().manual_seed(3)
    style = torch.randn(1, 4, 10, 10, generator=generator)  # a style image may have another size
    images = torch.randn(3, 4, 6, 6, generator=generator, requires_grad=True)
    loss = style_loss(images, style)
    each = sum(style_loss(images[i:i + 1], style) for i in range(3)) / 3
    torch.testing.assert_close(loss, each)
    loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_mismatched_layers_raise_one_clear_error():
    with pytest.raises(UserError, match="number of layers"):
        style_loss([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)] * 2)
    with pytest.raises(UserError, match="layer 0"):
        style_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))
    with pytest.raises(UserError, match=r"\(N, C, H, W\)"):
        gram_matrix(torch.zeros(2, 3, 4))
