"""The feature (perceptual) and Gram-matrix style losses of the image-to-image models compare images in a
network that describes the data: the digit classifier for grey digits, Inception's first blocks for colour
images. Checked against the TorchScript archive's own layers, on real RGB images and on mnist5k-colored."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge import api
from ganforge.data.derived import load as load_derived
from ganforge.errors import UserError
from ganforge.imaging.gram import style_loss
from ganforge.features import inception, maps
from ganforge.features.inception_weights import resolve_weights
from ganforge.features.maps import feature_maps, feature_network_for
from ganforge.models import StepContext
from ganforge.training.trainer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is the reference format

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]


@pytest.fixture(scope="module")
def torchscript_layers():
    """The shipped archive's own layers (conv, conv_1, ... mixed), run by TorchScript."""
    return torch.jit.load(str(resolve_weights(download=False)), map_location="cpu").eval().net.layers


def _reference_maps(layers, images: torch.Tensor, size) -> list:
    """The archive's maps after conv_2, conv_4 and mixed, of images in [-1, 1] resized to ``size``."""
    x = F.interpolate(images, size=size, mode="bilinear", align_corners=False) if tuple(images.shape[-2:]) != tuple(size) else images
    stem = layers.conv_2(layers.conv_1(layers.conv(x)))
    stem_2 = layers.conv_4(layers.conv_3(layers.pool0(stem)))
    return [stem, stem_2, layers.mixed(layers.pool1(stem_2))]


def _close(ours, reference) -> None:
    assert [m.shape for m in ours] == [m.shape for m in reference]
    for a, b in zip(ours, reference):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_early_blocks_equal_the_torchscript_layers(torchscript_layers):
    colour = torch.rand(2, 3, 80, 96) * 2 - 1  # not square, above the 75-px minimum: taken as they are
    with torch.no_grad():
        reference = _reference_maps(torchscript_layers, colour, (80, 96))
    x = colour.clone().requires_grad_()
    ours = feature_maps(x, "inception")
    _close([m.detach() for m in ours], reference)
    assert [m.shape[1] for m in ours] == [64, 192, 256]
    sum(m.square().mean() for m in ours).backward()  # differentiable in the images
    assert x.grad.abs().sum() > 0
    # Small images are upsampled to 75 px on their short side; grey ones are repeated into RGB.
    grey = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        _close(feature_maps(grey, "inception"), _reference_maps(torchscript_layers, grey.expand(-1, 3, -1, -1), (75, 75)))


def test_the_network_follows_the_data():
    digits = {"name": "mnist5k", "channels": 1, "native_size": 28, "classes": [str(d) for d in range(10)]}
    assert feature_network_for(digits, 1) == "digits"
    sr4 = load_derived("mnist5k-sr4").info()  # 7 -> 28 px digits
    assert feature_network_for(sr4, sr4["channels_b"]) == "digits"
    colored = load_derived("mnist5k-colored").info()  # grey digits | colour digits on textures
    assert feature_network_for(colored, colored["channels"]) == "digits"
    assert feature_network_for(colored, colored["channels_b"]) == "inception"
    photos = {"name": "photos", "channels": 3, "native_size": 32, "classes": []}
    assert feature_network_for(photos, 3) == "inception"
    clothes = {"name": "fashion-mnist", "channels": 1, "native_size": 28, "classes": ["T-shirt/top", "Trouser"]}
    assert feature_network_for(clothes, 1) == "inception"
    with pytest.raises(UserError, match="unknown feature network"):
        feature_maps(torch.zeros(1, 1, 28, 28), "vgg")


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """Eight 32-px RGB images of coloured blocks: colour data that is not digits."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        blocks = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8))).save(folder / f"{i}.png")
    return folder


def test_srgan_on_colour_images_compares_inception_features(photo_folder, tmp_path, torchscript_layers):
    cfg = api.resolve_config("srgan", sets=[*FAST, "width=4", "n_blocks=1", "feature_weight=1.0", "style_weight=1.0"],
                             out=str(tmp_path / "run"), steps=2, batch_size=4, data=str(photo_folder))
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    model = trainer.model
    assert model.feature_network == "inception" and model.channels_b == 3
    batch = trainer.sampler.next()
    out = model.step("G", batch, StepContext(step=0))
    out["loss"].backward()
    assert model.G.head[0].weight.grad.abs().sum() > 0
    # The same losses from the archive's own layers, on G's output for the same batch (batch norm in training
    # mode: its output depends on the batch alone).
    low, high = model.low_high(batch)
    with torch.no_grad():
        fake = model.G(low)
        fake_maps, real_maps = (_reference_maps(torchscript_layers, x, (75, 75)) for x in (fake, high))
    feature = sum((a - b).square().mean() for a, b in zip(fake_maps, real_maps))
    assert float(out["feature"]) == pytest.approx(float(feature), rel=1e-4)
    assert float(out["style"]) == pytest.approx(float(style_loss(fake_maps, real_maps)), rel=1e-4)
    assert trainer.fit()["step"] == 2  # two real steps end to end


def test_cyclegan_on_colored_digits_uses_each_domains_network(tmp_path, torchscript_layers):
    cfg = api.resolve_config("cyclegan", sets=[*FAST, "width=4", "n_blocks=1", "style_weight=1.0"],
                             out=str(tmp_path / "run"), steps=1, batch_size=4)
    data = load_derived("mnist5k-colored")
    data.images, data.images_b = data.images[::500].clone(), data.images_b[::500].clone()
    trainer = Trainer(cfg, tmp_path / "run", progress=False, data=data)
    batch = trainer.sampler.next()
    x, y = batch["image"], batch["image_b"]  # grey digits, colour digits on textures
    other_y, other_x = y.flip(0), x.flip(0)
    with torch.no_grad():
        colour = style_loss(*(_reference_maps(torchscript_layers, v, (75, 75)) for v in (other_y, y)))
        assert float(trainer.model.style_term(other_y, y)) == pytest.approx(float(colour), rel=1e-4)
        grey = style_loss(feature_maps(other_x, "digits"), feature_maps(x, "digits"))
        assert float(trainer.model.style_term(other_x, x)) == pytest.approx(float(grey), rel=1e-6)


def test_building_the_networks_leaves_the_random_stream_alone(monkeypatch):
    monkeypatch.setattr(maps, "_feature_nets", {})
    inception._load_early.cache_clear()
    state = torch.get_rng_state()
    feature_maps(torch.zeros(1, 3, 32, 32), "inception")
    feature_maps(torch.zeros(1, 1, 28, 28), "digits")
    assert torch.equal(torch.get_rng_state(), state)


def test_without_the_inception_weights_colour_losses_are_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(maps, "_feature_nets", {})
    monkeypatch.setenv("GANFORGE_INCEPTION", str(tmp_path / "missing.pt"))
    with pytest.raises(UserError) as error:
        feature_maps(torch.zeros(1, 3, 32, 32), "inception")
    message = str(error.value)
    assert "\n" not in message and "style_weight" in message and "missing.pt" in message
    feature_maps(torch.zeros(1, 1, 28, 28), "digits")  # grey digits need no Inception weights
