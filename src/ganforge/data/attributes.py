"""Attribute-labelled data (StarGAN): every image carries K binary attributes, some of them mutually exclusive.

Three sources, all giving an ImageData with ``attributes`` float (N, K) in {0, 1}, ``attribute_names`` and
``attribute_groups`` (lists of names of which at most one is set in an example):

- ``mnist5k-attrs`` (embedded): the digits drawn with five attributes, derived deterministically (below);
  ``mnist5k-attrs-test`` is the 1,000 held-out digits drawn the same way, with their digit labels.
- A CelebA-style attribute file (the format of CelebA's ``list_attr_celeba.txt``): a line with the number of
  images, a line of attribute names, then one line per image, ``file_name v1 v2 ... vK`` with each value 1
  (has it) or -1 (has not; 0 is read as -1 too). ``--data`` names the file itself or a folder holding
  ``list_attr_celeba.txt``; image names are paths relative to the file's folder, or to its
  ``img_align_celeba/`` sub-folder (CelebA's own layout). CelebA's hair colours form one exclusive group, as in
  the paper (section 4.2: black, blond, brown; grey too when it is present).
- A folder (or .zip) with one sub-folder per domain: each domain is an attribute and together they form one
  exclusive group, so every image has exactly one set (the paper's RaFD expressions).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import ImageData
from ganforge.data.folder import decode_all, load_images, stack_images
from ganforge.data.mnist5k import DIGITS, mnist5k
from ganforge.errors import UserError
from ganforge.imaging.io import read_image

log = logging.getLogger("ganforge")

ATTRIBUTE_FILE = "list_attr_celeba.txt"
CELEBA_IMAGES = "img_align_celeba"
# CelebA's hair colours: the exclusive group of the paper (section 4.2), restricted to those a file has
HAIR_COLOURS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]

# --- mnist5k-attrs -------------------------------------------------------------------------------------

MNIST_ATTRIBUTES = ["red", "green", "blue", "thick", "grey_bg"]
MNIST_GROUPS = [["red", "green", "blue"]]  # the stroke colour: exactly one of three
# Stroke colours, lighter than pure primaries so that blue strokes stay visible on black
INKS = {"red": (1.0, 0.2, 0.2), "green": (0.2, 0.9, 0.2), "blue": (0.3, 0.4, 1.0)}
# The grey background: darker than every ink in its strongest channel, so the ink stays the light part (with
# an inverted, white background StarGAN's generator kept the digits through colour changes or inversions, not both).
GREY = 0.4
_SEED = 20180108  # fixed: the set is the same on every machine and every run


def thicken(alpha: torch.Tensor) -> torch.Tensor:
    """Ink coverage (N, 1, H, W) in [0, 1] -> the strokes grown by one pixel on every side (a 3 x 3 dilation).
    A cross-shaped dilation changes the digits less but is too close to MNIST's own bold strokes: a
    classifier trained on the real images then tells thick from not less reliably than with the square.
    """
    return F.max_pool2d(alpha, 3, 1, 1)


def render(digits: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """uint8 grey digits (N, 1, H, W) and their attributes (N, 5) in MNIST_ATTRIBUTES order -> uint8 colour
    images (N, 3, H, W): the ink's colour over a black background, or a grey one with ``grey_bg``; the grey
    value of each pixel of the digit says how much ink covers it."""
    alpha = digits.float() / 255
    thick = attributes[:, 3].bool().view(-1, 1, 1, 1)
    alpha = torch.where(thick, thicken(alpha), alpha)
    palette = torch.tensor([INKS[name] for name in MNIST_ATTRIBUTES[:3]])  # (3 colours, RGB)
    ink = (attributes[:, :3] @ palette).view(-1, 3, 1, 1)
    background = GREY * attributes[:, 4].view(-1, 1, 1, 1)
    image = background * (1 - alpha) + ink * alpha
    return (image * 255).round_().clamp_(0, 255).to(torch.uint8)


def draw_attributes(n: int, rng: np.random.Generator) -> torch.Tensor:
    """n attribute vectors (n, 5): a stroke colour uniformly from three, thick and grey_bg each with
    probability 1/2, all independent, so each of the 12 domains holds about a twelfth of the digits."""
    colour = rng.integers(0, 3, n)
    out = np.zeros((n, 5), dtype=np.float32)
    out[np.arange(n), colour] = 1
    out[:, 3] = rng.random(n) < 0.5
    out[:, 4] = rng.random(n) < 0.5
    return torch.from_numpy(out)


@lru_cache(maxsize=2)
def _mnist5k_attrs(split: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    digits = mnist5k(split)
    attributes = draw_attributes(len(digits), np.random.default_rng(_SEED + (1 if split == "test" else 0)))
    return render(digits.images, attributes), attributes, digits.labels


def mnist5k_attrs(split: str = "train") -> ImageData:
    """The 4,000 training digits ("train") or the 1,000 held-out ones ("test", with digit labels) drawn with
    the attributes red | green | blue (one of them), thick, grey_bg."""
    images, attributes, labels = _mnist5k_attrs(split)
    test = split == "test"
    return ImageData(
        name="mnist5k-attrs-test" if test else "mnist5k-attrs",
        images=images.clone(),
        labels=labels.clone() if test else None,  # the digit each image shows: the identity figure's truth
        classes=list(DIGITS) if test else [],
        attributes=attributes.clone(),
        attribute_names=list(MNIST_ATTRIBUTES),
        attribute_groups=[list(g) for g in MNIST_GROUPS],
        native_size=28,
    )


# --- attribute files and domain folders ------------------------------------------------------------------

def load_attribute_data(path: Path, *, size: Optional[int] = None, channels: Optional[int] = None) -> ImageData:
    """--data for an attribute-conditional model: an attribute file, a folder holding one, or a folder (or
    .zip) with one sub-folder per domain."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    if path.is_file() and path.suffix.lower() == ".txt":
        return load_attribute_file(path, size=size, channels=channels)
    if path.is_dir() and (path / ATTRIBUTE_FILE).is_file():
        return load_attribute_file(path / ATTRIBUTE_FILE, size=size, channels=channels)
    return load_domain_folders(path, size=size, channels=channels)


def load_domain_folders(path: Path, *, size: Optional[int] = None, channels: Optional[int] = None) -> ImageData:
    """Each first-level sub-folder is a domain: one attribute per domain, all in one exclusive group."""
    data = load_images(path, size=size, channels=channels)
    if data.labels is None:
        raise UserError(f"{path} has no attribute file ({ATTRIBUTE_FILE}) and no sub-folders to use as domains: "
                        "give a CelebA-style attribute file, or put each domain's images in its own sub-folder (at least two)")
    data.attributes = F.one_hot(data.labels, len(data.classes)).float()
    data.attribute_names = list(data.classes)
    data.attribute_groups = [list(data.classes)]
    return data


def read_attribute_file(path: Path) -> Tuple[List[str], List[str], torch.Tensor]:
    """A CelebA-style attribute file -> (attribute names, file names, attributes float (N, K) in {0, 1})."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; an attribute file is a count line, a names line, then 'file v1 v2 ...'") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    lines = [(number, line.split()) for number, line in enumerate(lines, 1) if line.strip()]
    if len(lines) < 3:
        raise UserError(f"{path}: an attribute file needs a count line, a line of attribute names and at least one image line")
    (count_line, count), (_, names) = lines[0], lines[1]
    if len(count) != 1 or not count[0].isdigit():
        raise UserError(f"{path} line {count_line}: expected the number of images, got '{' '.join(count)}'")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise UserError(f"{path}: the attribute '{duplicated[0]}' is named twice in the names line")
    rows = lines[2:]
    if int(count[0]) != len(rows):
        raise UserError(f"{path}: the first line says {count[0]} images but {len(rows)} image lines follow")
    k = len(names)
    files, values = [], np.empty((len(rows), k), dtype=np.float32)
    seen: Dict[str, int] = {}
    for i, (number, parts) in enumerate(rows):
        if len(parts) != k + 1:
            raise UserError(f"{path} line {number}: expected a file name and {k} values (one per attribute in the "
                            f"names line), got {len(parts) - 1} values")
        if parts[0] in seen:
            raise UserError(f"{path} line {number}: {parts[0]} already has a line ({seen[parts[0]]})")
        seen[parts[0]] = number
        bad = [v for v in parts[1:] if v not in ("1", "+1", "-1", "0")]
        if bad:
            raise UserError(f"{path} line {number}: attribute values must be 1 or -1, got '{bad[0]}'")
        files.append(parts[0])
        values[i] = [v in ("1", "+1") for v in parts[1:]]
    return names, files, torch.from_numpy(values)


def load_attribute_file(path: Path, *, size: Optional[int] = None, channels: Optional[int] = None) -> ImageData:
    """The images an attribute file names, with their attributes; every named image must exist."""
    names, files, attributes = read_attribute_file(path)
    root = path.parent
    if not (root / files[0]).is_file() and (root / CELEBA_IMAGES / files[0]).is_file():
        root = root / CELEBA_IMAGES
    missing = [name for name in files if not (root / name).is_file()]
    if missing:
        raise UserError(f"{path} names {len(missing)} image{'s' if len(missing) > 1 else ''} that {root} does not "
                        f"hold (first: {missing[0]}): the file's lines must match the image files")

    entries = [(name, PurePosixPath(name), lambda full=root / name: read_image(full)) for name in files]
    decoded, failures = decode_all(entries)
    if not decoded:
        raise UserError(f"no readable images among the {len(files)} that {path} names (first: {failures[0][0]}: {failures[0][1]})")
    if failures:
        log.warning("skipped %d unreadable image%s named in %s (first: %s: %s)", len(failures),
                    "" if len(failures) == 1 else "s", path, *failures[0])
    failed = {name for name, _ in failures}
    keep = [i for i, name in enumerate(files) if name not in failed]  # decode_all keeps the order of the lines
    arrays = [array for _, array in decoded]
    size = size or min(arrays[0].shape[:2])
    return ImageData(
        name=root.name if root.name == CELEBA_IMAGES else path.parent.name or path.stem,
        images=stack_images(arrays, size, channels),
        attributes=attributes[keep].contiguous(),
        attribute_names=names,
        attribute_groups=[hair for hair in [[n for n in HAIR_COLOURS if n in names]] if len(hair) > 1],
        skipped=len(failures),
    )

