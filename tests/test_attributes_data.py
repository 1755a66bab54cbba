"""Attribute-labelled data: the embedded mnist5k-attrs task, CelebA-style attribute files with their images,
folders with one sub-folder per domain, and every mismatch between a file and its images refused in one line."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import cli
from ganforge.data import load_dataset
from ganforge.data.attributes import MNIST_ATTRIBUTES, render, thicken
from ganforge.data.mnist5k import mnist5k
from ganforge.errors import UserError

NAMES = ["Black_Hair", "Blond_Hair", "Smiling", "Young"]


# --- mnist5k-attrs ------------------------------------------------------------------------------------------

def test_mnist5k_attrs_is_deterministic_balanced_and_holds_one_colour_each():
    a, b = load_dataset("mnist5k-attrs", needs="attributes"), load_dataset("mnist5k-attrs", needs="attributes")
    assert torch.equal(a.images, b.images) and torch.equal(a.attributes, b.attributes)
    assert a.images.shape == (4000, 3, 28, 28) and a.attributes.shape == (4000, 5)
    assert a.attribute_names == MNIST_ATTRIBUTES and a.attribute_groups == [["red", "green", "blue"]]
    assert torch.all(a.attributes[:, :3].sum(dim=1) == 1)  # exactly one stroke colour
    share = a.attributes.mean(dim=0)
    assert torch.all((share[:3] - 1 / 3).abs() < 0.03) and torch.all((share[3:] - 0.5).abs() < 0.03)
    info = a.info()
    assert info["attribute_groups"] == [["red", "green", "blue"]] and info["channels"] == 3


def test_mnist5k_attrs_draws_what_its_attributes_say():
    data = load_dataset("mnist5k-attrs", needs="attributes")
    x, c = data.images.float() / 255, data.attributes
    grey = c[:, 4].bool()
    corners = x[:, :, 0, 0]  # the background
    assert torch.all((corners[grey] - 0.4).abs() < 0.01) and torch.all(corners[~grey] < 0.01)
    # the ink's strongest channel is its colour's
    ink_pixels = x.amax(dim=1, keepdim=True) > 0.7  # (N, 1, H, W)
    mean_colour = (x * ink_pixels).sum(dim=(2, 3)) / ink_pixels.sum(dim=(2, 3))  # (N, 3)
    assert torch.equal(mean_colour.argmax(dim=1), c[:, :3].argmax(dim=1))
    # thick is the same digit with more ink
    digits = mnist5k("train").images[:50]
    thin = render(digits, torch.tensor([[1.0, 0, 0, 0, 0]]).expand(50, -1))
    thick = render(digits, torch.tensor([[1.0, 0, 0, 1, 0]]).expand(50, -1))
    assert torch.all(thick.float().sum(dim=(1, 2, 3)) > 1.2 * thin.float().sum(dim=(1, 2, 3)))
    assert torch.equal(thicken(torch.eye(3)[None, None]), torch.ones(1, 1, 3, 3))


def test_mnist5k_attrs_test_split_is_the_held_out_digits_with_their_labels():
    test = load_dataset("mnist5k-attrs-test")
    held_out = mnist5k("test")
    assert len(test) == 1000 and torch.equal(test.labels, held_out.labels) and test.classes == [str(d) for d in range(10)]
    # drawn from the held-out digits: each image's ink is exactly that digit where it was not thickened
    plain = (test.attributes[:, 3] == 0) & (test.attributes[:, 4] == 0)
    red = plain & (test.attributes[:, 0] == 1)
    assert torch.equal(test.images[red][:, :1], held_out.images[red])  # red ink is 255 in the red channel
    assert load_dataset("mnist5k-attrs", needs="attributes").labels is None  # training data carry no digit labels


# --- attribute files ----------------------------------------------------------------------------------------

def write_celeba(folder: Path, rows, names=NAMES, count=None, images_in: str = "") -> Path:
    """Real digit images (colour PNGs) and an attribute file in CelebA's format describing them."""
    digits = mnist5k("train").images
    (folder / images_in).mkdir(parents=True, exist_ok=True)
    for i, (name, _) in enumerate(rows):
        Image.fromarray(np.repeat(digits[i * 40, 0].numpy()[:, :, None], 3, axis=2)).save(folder / images_in / name)
    lines = [str(len(rows) if count is None else count), " ".join(names)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in values) for name, values in rows]
    path = folder / "list_attr_celeba.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [("000001.png", [1, -1, 1, -1]), ("000002.png", [-1, 1, -1, 1]), ("000003.png", [-1, -1, 1, 1])]


@pytest.mark.parametrize("images_in", ["", "img_align_celeba"])
def test_attribute_file_gives_each_image_its_row(tmp_path, images_in):
    write_celeba(tmp_path, ROWS, images_in=images_in)
    data = load_dataset(str(tmp_path), needs="attributes")
    assert data.attribute_names == NAMES
    assert torch.equal(data.attributes, torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]]))
    assert data.attribute_groups == [["Black_Hair", "Blond_Hair"]]  # the paper's hair colours, as far as present
    digits = mnist5k("train").images
    for i in range(3):  # the image of row i is the file that row names
        assert torch.equal(data.images[i, 0], digits[i * 40, 0])
    by_file = load_dataset(str(tmp_path / "list_attr_celeba.txt"), needs="attributes")  # --data naming the file
    assert torch.equal(by_file.attributes, data.attributes) and torch.equal(by_file.images, data.images)


@pytest.mark.parametrize("edit,message", [
    (lambda p: p.write_text(p.read_text().replace("3\n", "4\n", 1)), "says 4 images but 3 image lines follow"),
    (lambda p: p.write_text(p.read_text().replace("000002.png -1  1 -1  1", "000002.png -1  1 -1")),
     "line 4: expected a file name and 4 values"),
    (lambda p: p.write_text(p.read_text().replace("000003.png -1 -1  1  1", "000003.png -1 -1  2  1")),
     "line 5: attribute values must be 1 or -1, got '2'"),
    (lambda p: p.write_text(p.read_text().replace("Smiling", "Young")), "the attribute 'Young' is named twice"),
    (lambda p: p.write_text(p.read_text().replace("000002.png", "000001.png")), "line 4: 000001.png already has a line (3)"),
    (lambda p: (p.parent / "000002.png").unlink(), "names 1 image that"),
    (lambda p: p.write_text("three\n" + p.read_text().split("\n", 1)[1]), "line 1: expected the number of images"),
])
def test_attribute_file_that_does_not_match_its_images_is_refused(tmp_path, edit, message):
    path = write_celeba(tmp_path, ROWS)
    edit(path)
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        load_dataset(str(tmp_path), needs="attributes")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_image_is_named_and_the_cli_says_so_in_one_line(tmp_path, capsys):
    path = write_celeba(tmp_path, ROWS)
    (tmp_path / "000003.png").unlink()
    code = cli.main(["train", "stargan", "--data", str(tmp_path), "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "000003.png" in err and str(path) in err


# --- domain folders -------------------------------------------------------------------------------------------

def test_folder_per_domain_makes_one_exclusive_group(tmp_path):
    digits = mnist5k("train").images
    for d, domain in enumerate(["happy", "neutral", "sad"]):
        (tmp_path / domain).mkdir()
        for i in range(2 + d):
            Image.fromarray(digits[100 * d + i, 0].numpy()).save(tmp_path / domain / f"{i}.png")
    data = load_dataset(str(tmp_path), needs="attributes")
    assert data.attribute_names == ["happy", "neutral", "sad"] and data.attribute_groups == [["happy", "neutral", "sad"]]
    assert torch.equal(data.attributes.sum(dim=0), torch.tensor([2.0, 3, 4]))
    assert torch.all(data.attributes.sum(dim=1) == 1)


def test_folder_without_domains_or_attribute_file_is_refused(tmp_path):
    Image.fromarray(mnist5k("train").images[0, 0].numpy()).save(tmp_path / "a.png")
    with pytest.raises(UserError, match="no attribute file .* and no sub-folders to use as domains"):
        load_dataset(str(tmp_path), needs="attributes")
