"""The built-in digit classifier and the digit metrics, on the embedded mnist5k digits."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ganforge.errors import UserError
from ganforge.features.digit_classifier import WEIGHTS, load_digit_classifier
from ganforge.metrics.digits import MNIST5K, digit_features, digit_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mnist():
    with np.load(MNIST5K) as data:
        held_out = data["held_out"]
        images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
    train = ~torch.from_numpy(held_out)
    pick = torch.randperm(int(train.sum()), generator=torch.Generator().manual_seed(0))[:1000]
    return {
        "held_out": (images[~train], labels[~train]),  # (1000, 28, 28) uint8, (1000,)
        "train": (images[train][pick], labels[train][pick]),  # 1,000 random training digits
        "train_all": (images[train], labels[train]),
    }


def test_shipped_weights_classify_held_out_digits(mnist):
    from safetensors import safe_open

    images, labels = mnist["held_out"]
    model = load_digit_classifier()
    assert not model.training
    assert load_digit_classifier("cpu") is model
    with torch.inference_mode():
        predicted = model(images.unsqueeze(1).float() / 127.5 - 1).argmax(1)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy >= 0.97
    with safe_open(str(WEIGHTS), "pt") as f:
        assert abs(float(f.metadata()["held_out_accuracy"]) - accuracy) < 1e-3


def test_features_do_not_depend_on_the_batch(mnist):
    images, _ = mnist["held_out"]
    alone = digit_features(images[:5])
    together = digit_features(images[:300])
    assert alone.shape == (5, 128) and alone.dtype == np.float32
    np.testing.assert_allclose(alone, together[:5], rtol=1e-4, atol=1e-5)


def test_cfd_small_for_real_digits_large_for_noise(mnist):
    assert abs(digit_metrics(mnist["held_out"][0])["cfd"]) < 1e-6  # the reference against itself
    real = digit_metrics(mnist["train"][0])["cfd"]
    noise = torch.randint(0, 256, (1000, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    noisy = digit_metrics(noise)["cfd"]
    assert 0 < real < 30
    assert noisy > 20 * real


def test_cfd_reference_splits(mnist):
    assert abs(digit_metrics(mnist["train_all"][0], reference="train")["cfd"]) < 1e-6
    assert digit_metrics(mnist["held_out"][0], reference="train")["cfd"] > 1
    with pytest.raises(UserError, match="reference"):
        digit_metrics(mnist["held_out"][0], reference="test")


def test_accuracy_follows_requested_labels(mnist):
    images, labels = mnist["held_out"]
    assert digit_metrics(images, labels)["accuracy"] >= 0.97
    assert digit_metrics(images, (labels + 1) % 10)["accuracy"] <= 0.03
    assert "accuracy" not in digit_metrics(images)
    with pytest.raises(UserError, match="label"):
        digit_metrics(images, labels[:-1])


def test_score_and_histogram_balanced_vs_one_class(mnist):
    balanced = digit_metrics(mnist["held_out"][0])
    assert balanced["n"] == 1000
    assert balanced["score"] > 9.0
    assert len(balanced["histogram"]) == 10 and abs(sum(balanced["histogram"]) - 1) < 1e-9
    assert 0.05 <= balanced["coverage_min"] <= balanced["coverage_max"] <= 0.15

    images, labels = mnist["held_out"]
    sevens = digit_metrics(images[labels == 7])
    assert sevens["score"] < 1.2
    assert sevens["histogram"][7] >= 0.95 and sevens["coverage_max"] == sevens["histogram"][7]
    assert sevens["coverage_min"] == 0.0


def test_uint8_and_float_inputs_agree(mnist):
    images, labels = mnist["held_out"]
    images, labels = images[:400], labels[:400]
    reference = digit_metrics(images, labels)
    as_float = images.unsqueeze(1).float() / 127.5 - 1  # (N, 1, 28, 28) in [-1, 1]
    for variant in (images.unsqueeze(1), as_float, images.numpy()):
        other = digit_metrics(variant, labels)
        assert other["accuracy"] == reference["accuracy"] and other["histogram"] == reference["histogram"]
        assert other["cfd"] == pytest.approx(reference["cfd"], rel=1e-5)
        assert other["score"] == pytest.approx(reference["score"], rel=1e-6)


def test_other_sizes_are_resized(mnist):
    images, labels = mnist["held_out"]
    x = images.unsqueeze(1).float() / 127.5 - 1
    big = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)  # what a 32x32 model writes
    m = digit_metrics(big, labels)
    assert m["accuracy"] >= 0.95
    assert m["cfd"] < 100  # the round trip blurs a little; uniform noise is above 1,000


def test_colour_and_malformed_inputs_are_refused(mnist):
    images, _ = mnist["held_out"]
    rgb = images[:10].unsqueeze(1).expand(-1, 3, -1, -1)
    with pytest.raises(UserError, match="grey"):
        digit_metrics(rgb)
    with pytest.raises(UserError, match="at least 2"):
        digit_metrics(images[:1])
    with pytest.raises(UserError, match="shape"):
        digit_metrics(images[0])


def _training_script():
    spec = importlib.util.spec_from_file_location("train_digit_classifier", ROOT / "tools/train_digit_classifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_is_deterministic():
    script = _training_script()
    images, labels = script.load_split(held_out=False)
    assert len(images) == 4000  # the held-out digits are never trained on
    rng_before = torch.random.get_rng_state()
    runs = [script.train(images, labels, steps=4, seed=seed, batch_size=16) for seed in (3, 3, 4)]
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    first, again, other = (model.state_dict() for model in runs)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        initial = script.DigitClassifier().state_dict()
    assert not torch.equal(first["conv1.weight"], initial["conv1.weight"])  # the steps did train
