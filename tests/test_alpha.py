"""Transparent images: composited on white by default; with `alpha=true` kept end to end, from RGBA files and
.npz arrays through 4-channel networks to transparent PNGs (`ganforge sample`, `explore`, the web page)."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import api, cli
from ganforge.data import load_dataset
from ganforge.data.folder import load_images
from ganforge.errors import UserError
from ganforge.imaging.grid import make_grid
from ganforge.imaging.io import read_image

from conftest import FAST, digits

STYLEGAN_TINY = ["width=8", "max_width=16", "z_dim=16", "w_dim=16"]
IMAGE_TO_IMAGE = ("pix2pix", "cyclegan", "srgan", "inpaint", "stargan")


def _glyph(digit: np.ndarray, colour) -> np.ndarray:
    """A digit as an RGBA sticker: one colour, the digit's ink as its alpha, transparent around it."""
    rgba = np.zeros((*digit.shape, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = digit
    return rgba


@pytest.fixture(scope="module")
def stickers(tmp_path_factory):
    """24 RGBA PNGs of real digits in two class folders (red odd, blue even digits)."""
    root = tmp_path_factory.mktemp("stickers") / "stickers"
    data = digits(24, 150)
    for i, (image, label) in enumerate(zip(data.images[:, 0].numpy(), data.labels.tolist())):
        folder = root / ("odd" if label % 2 else "even")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_glyph(image, (220, 30, 30) if label % 2 else (30, 30, 220)), "RGBA").save(folder / f"{i}.png")
    return root


def _png(path) -> Image.Image:
    picture = Image.open(path)
    picture.load()
    return picture


# --- reading --------------------------------------------------------------------------------------------

def test_read_image_keeps_straight_alpha_or_composites_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[0, :, 3] = (255, 128, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_image(tmp_path / "rgba.png", alpha=True), rgba)  # straight alpha, colour untouched
    on_white = read_image(tmp_path / "rgba.png")
    assert on_white.shape == (2, 3, 3)
    assert on_white[0].tolist() == [[200, 100, 50], [227, 177, 152], [255, 255, 255]]

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "grey.png")
    as_rgba = read_image(tmp_path / "grey.png", alpha=True)
    assert as_rgba.shape == (3, 4, 4)
    assert all(np.array_equal(as_rgba[..., c], grey) for c in range(3)) and (as_rgba[..., 3] == 255).all()

    la = np.stack([np.full((2, 2), 240, np.uint8), np.full((2, 2), 64, np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png", alpha=True)[0, 0].tolist() == [240, 240, 240, 64]

    colour = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "c.jpg", quality=100)
    jpeg = read_image((tmp_path / "c.jpg").read_bytes(), name="c.jpg", alpha=True)
    assert jpeg.shape == (5, 6, 4) and (jpeg[..., 3] == 255).all()

    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 40, 50, 60])
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png", alpha=True)[0].tolist() == [[10, 20, 30, 0], [40, 50, 60, 255]]


def test_a_folder_of_rgba_pngs_is_composited_on_white_unless_alpha_is_kept(stickers):
    flat = load_dataset(str(stickers))
    assert flat.images.shape == (24, 3, 28, 28)
    assert (flat.images[:, :, 0, 0] == 255).all()  # the transparent corner is white
    kept = load_dataset(str(stickers), alpha=True)
    assert kept.images.shape == (24, 4, 28, 28) and kept.classes == ["even", "odd"]
    assert (kept.images[:, 3, 0, 0] == 0).all() and (kept.images[:, 3] == 255).any()
    inked = kept.images[:, 3] > 0
    odd = kept.labels == 1
    assert (kept.images[odd, 0][inked[odd]] == 220).all()  # the colour under the ink is the sticker's own


def test_rgba_is_resized_premultiplied_so_transparent_pixels_lend_no_colour(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (255, 0, 0, 255)  # opaque red on the left
    rgba[:, 8:] = (0, 255, 0, 0)  # fully transparent green on the right: invisible, it must not bleed
    (tmp_path / "set").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "set" / "half.png")
    small = load_images(tmp_path / "set", size=5, alpha=True).images[0]  # (4, 5, 5)
    edge = small[3] > 0
    assert ((small[3] > 0) & (small[3] < 255)).any()  # the boundary column is partly transparent
    assert (small[0][edge] == 255).all() and (small[1][edge] == 0).all()


def test_npz_with_rgba_images(tmp_path):
    rgba = np.stack([_glyph(d, (0, 128, 255)) for d in digits(6, 100).images[:, 0].numpy()])  # (6, 28, 28, 4)
    np.savez(tmp_path / "rgba.npz", images=rgba)
    kept = load_dataset(str(tmp_path / "rgba.npz"), alpha=True)
    assert kept.images.shape == (6, 4, 28, 28) and np.array_equal(kept.images.permute(0, 2, 3, 1).numpy(), rgba)
    flat = load_dataset(str(tmp_path / "rgba.npz"))
    assert flat.images.shape == (6, 3, 28, 28) and (flat.images[:, :, 0, 0] == 255).all()
    np.savez(tmp_path / "grey.npz", images=rgba[..., 0])
    opaque = load_dataset(str(tmp_path / "grey.npz"), alpha=True)
    assert opaque.images.shape == (6, 4, 28, 28) and (opaque.images[:, 3] == 255).all()


# --- training and pictures ----------------------------------------------------------------------------

def test_dcgan_with_alpha_trains_on_rgba_and_samples_transparent_pngs(stickers, tmp_path, capsys):
    out = tmp_path / "dcgan"
    ganforge.train("dcgan", data=str(stickers), out=str(out), steps=2, batch_size=8,
                   set=[*FAST, "width=8", "alpha=true"], progress=False)
    assert api.load(str(out)).model.channels == 4
    grid = tmp_path / "grid.png"
    assert cli.main(["sample", str(out), "--n", "4", "--seed", "3", "--grid", str(grid)]) == 0
    picture = _png(grid)
    assert picture.mode == "RGBA"
    alpha = np.asarray(picture)[..., 3]
    assert alpha[0, 0] == 0  # the padding between samples is transparent

    # the web page's image encoding keeps the alpha too
    from ganforge.web.operations import data_uri

    images = torch.rand(4, 4, 8, 8) * 2 - 1
    encoded = Image.open(io.BytesIO(base64.b64decode(data_uri(make_grid(images, nrow=2)).split(",", 1)[1])))
    assert encoded.mode == "RGBA"


def test_without_alpha_the_same_folder_trains_three_channel_networks(stickers, tmp_path):
    out = tmp_path / "flat"
    ganforge.train("dcgan", data=str(stickers), out=str(out), steps=1, batch_size=8, set=[*FAST, "width=8"],
                   progress=False)
    assert api.load(str(out)).model.channels == 3


def test_stylegan_with_alpha_trains_and_explore_writes_rgba_png_and_a_gif_on_white(stickers, tmp_path):
    out = tmp_path / "stylegan"
    ganforge.train("stylegan", data=str(stickers), out=str(out), steps=2, batch_size=8,
                   set=[*FAST, *STYLEGAN_TINY, "alpha=true"], progress=False)
    assert api.load(str(out)).model.channels == 4
    mix = tmp_path / "mix.png"
    assert cli.main(["explore", str(out), "mix", "--out", str(mix), "--rows", "1", "--cols", "2"]) == 0
    assert _png(mix).mode == "RGBA" and np.asarray(_png(mix))[..., 3].min() == 0  # the blank corner
    walk = tmp_path / "walk.gif"
    assert cli.main(["explore", str(out), "gif", "--out", str(walk), "--seeds", "0,1", "--steps", "2"]) == 0
    gif = _png(walk)
    assert "transparency" not in gif.info  # composited on white: GIF has no alpha channel


@pytest.mark.parametrize("family", IMAGE_TO_IMAGE)
def test_image_to_image_families_refuse_alpha_in_one_line(family, tmp_path, capsys):
    with pytest.raises(UserError, match=f"{family} does not use 'alpha'"):
        api.resolve_config(family, sets=["alpha=true"], out=str(tmp_path / family))
    assert cli.main(["train", family, "--steps", "1", "--set", "alpha=true", "--out", str(tmp_path / family)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not use 'alpha'" in err
