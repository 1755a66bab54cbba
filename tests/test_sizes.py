"""Every family trains at 32, 64, 128 and 256 px: the noise families on grey digits, colour emoji and transparent
emoji, the image-to-image families in colour (pix2pix and cyclegan on the emoji edge tasks, srgan and inpaint on
emoji made small or holed, stargan on the colour attribute digits). One step each, narrow networks; what it
checks is that the networks build for the size and channels, a step runs, and samples come out in that shape."""
import copy

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.data.attributes import mnist5k_attrs
from ganforge.data.base import ImageData, PairedImageData, resize
from ganforge.data.derived import downsample, hole_input, rectangle_masks
from ganforge.data.mnist5k import mnist5k

from conftest import make_trainer

SIZES = (32, 64, 128, 256)
NOISE = ("gan", "dcgan", "lsgan", "wgan", "wgan-gp", "cgan", "acgan", "infogan", "stylegan")
NARROW = {"gan": ["hidden_g=[16,32]", "hidden_d=[32,16]"], "stylegan": ["width=4", "max_width=8", "z_dim=8", "w_dim=8"],
          "cyclegan": ["width=4", "n_blocks=1", "pool_size=2"]}


def at_size(data: ImageData, size: int, n: int = 8) -> ImageData:
    """n images of `data` spread over it (and its classes), resized to size x size."""
    out = copy.copy(data)
    pick = torch.arange(n) * len(data) // n
    out.images = resize(data.images[pick], size)
    out.labels = None if data.labels is None else data.labels[pick]
    out.native_size = size
    return out


def sources():
    digits = mnist5k("train")
    emoji = load_dataset("openmoji:test")
    transparent = load_dataset("openmoji:test", alpha=True)
    # emoji have no classes: the conditional families take the digits' labels on them
    for data in (emoji, transparent):
        data.labels, data.classes = digits.labels[torch.arange(len(data)) * len(digits) // len(data)], list(digits.classes)
    return {"grey": digits, "colour": emoji, "alpha": transparent}


@pytest.fixture(scope="module")
def images():
    return sources()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("model", NOISE)
def test_every_noise_family_trains_a_step_at_every_size_grey_colour_and_transparent(model, size, images, tmp_path):
    for kind, data in images.items():
        sets = [*NARROW.get(model, ["width=4"]), *(["alpha=true"] if kind == "alpha" else [])]
        trainer = make_trainer(model, tmp_path / kind, sets=sets, data=at_size(data, size), steps=1, batch_size=2)
        summary = trainer.fit()
        assert summary["step"] == 1, (model, size, kind)
        channels = {"grey": 1, "colour": 3, "alpha": 4}[kind]
        labels = torch.arange(2) % 10 if trainer.model.n_classes else None
        samples = trainer.sample(2, seed=0, labels=labels)
        assert samples.shape == (2, channels, size, size), (model, size, kind)
        assert torch.isfinite(samples).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("model, data", [("pix2pix", "openmoji-edges"), ("cyclegan", "openmoji-edges-unpaired")])
def test_the_image_to_image_families_train_a_step_on_colour_at_every_size(model, data, size, tmp_path):
    pairs = load_dataset(data, needs="paired" if model == "pix2pix" else "unpaired")
    pairs.images, pairs.images_b = resize(pairs.images[:8], size), resize(pairs.images_b[:8], size)
    pairs.native_size = size
    trainer = make_trainer(model, tmp_path, sets=NARROW.get(model, ["width=4"]), data=pairs, steps=1, batch_size=2)
    assert trainer.fit()["step"] == 1
    out = trainer.model.translations(pairs)
    assert all(torch.isfinite(t.outputs).all() for t in out.values())


def colour_pairs(task: str, size: int) -> PairedImageData:
    """8 colour emoji at `size` as an srgan (4x smaller inputs) or inpaint (a rectangular hole plus its mask) task."""
    glyphs = resize(load_dataset("openmoji:test").images[:8], size)
    if task == "sr4":
        inputs = downsample(glyphs, 4)
    else:
        inputs = hole_input(glyphs, rectangle_masks(len(glyphs), size, np.random.default_rng(0)))
    return PairedImageData(name=f"openmoji-{task}", images=inputs, images_b=glyphs, paired=True, native_size=inputs.shape[-1])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("model, task", [("srgan", "sr4"), ("inpaint", "hole")])
def test_super_resolution_and_inpainting_train_a_step_on_colour_at_every_size(model, task, size, tmp_path):
    pairs = colour_pairs(task, size)
    sets = [*(["width=4", "n_blocks=1"] if model == "srgan" else ["width=4"]), "sample.n=2"]
    trainer = make_trainer(model, tmp_path, sets=sets, data=pairs, steps=1, batch_size=2)
    assert trainer.fit()["step"] == 1
    out = trainer.model.translate(pairs.images[:2].float() / 127.5 - 1)
    assert out.shape == (2, 3, size, size) and torch.isfinite(out).all()


@pytest.mark.parametrize("size", SIZES)
def test_stargan_trains_a_step_on_colour_attributes_at_every_size(size, tmp_path):
    data = mnist5k_attrs("train")
    data.images = resize(data.images[:8], size)
    data.attributes, data.labels = data.attributes[:8], None if data.labels is None else data.labels[:8]
    data.native_size = size
    trainer = make_trainer("stargan", tmp_path, sets=["width=4", "d_width=4", "n_blocks=1", "n_critic=1", "sample.n=2"], data=data, steps=1, batch_size=2)
    assert trainer.fit()["step"] == 1
    out = trainer.model.translate(data.images[:2].float() / 127.5 - 1, target=1 - data.attributes[:2].float())
    assert out.shape == (2, 3, size, size) and torch.isfinite(out).all()
