"""Two-domain image folders for the image-to-image models, in the layouts users already have.

A folder given as --data to pix2pix, cyclegan, ... is read in the first layout that fits:

- CycleGAN: ``trainA/`` and ``trainB/`` (``testA/``, ``testB/`` hold the held-out split). Unpaired: the two
  sides may differ in number; a model that needs pairs pairs the files by name.
- parallel folders: ``A/`` and ``B/`` holding the same file names (``A/x.png`` pairs with ``B/x.jpg``).
- aligned: each image holds A and B side by side, A on the left (the pix2pix release format), in
  ``train/`` (``test/`` or ``val/`` held out) or directly in the folder.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ganforge.data.base import PairedImageData
from ganforge.data.folder import common_size, decode_all, folder_entries, stack_images
from ganforge.errors import UserError

log = logging.getLogger("ganforge")


def detect_layout(root: Path) -> str:
    """'cyclegan', 'parallel' or 'aligned' for a folder of two-domain data."""
    if (root / "trainA").is_dir() or (root / "trainB").is_dir() or (root / "testA").is_dir():
        return "cyclegan"
    if (root / "A").is_dir() or (root / "B").is_dir():
        return "parallel"
    return "aligned"


def load_two_domains(path: Union[str, os.PathLike], needs: str, *, size: Optional[int] = None, split: str = "train",
                     name: Optional[str] = None) -> PairedImageData:
    """Read a two-domain folder for a model that `needs` "paired" or "unpaired" data."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: two-domain data must be a folder (trainA/ + trainB/, A/ + B/, or aligned A|B images)")
    layout = detect_layout(root)
    name = name or root.name
    if layout == "aligned":
        folder, held_out_folders = _aligned_folder(root, split)
        return _load_aligned(folder, size, name, paired=needs == "paired", exclude=held_out_folders)
    side_a, side_b = (f"{split}A", f"{split}B") if layout == "cyclegan" else ("A", "B")
    if layout == "parallel" and split != "train":
        raise UserError(f"{root}: the parallel A/ + B/ layout has no '{split}' split")
    folders = [root / side_a, root / side_b]
    for folder in folders:
        if not folder.is_dir():
            found = ", ".join(f"{d}/" for d in ("trainA", "trainB", "testA", "testB", "A", "B") if (root / d).is_dir())
            raise UserError(f"{root} has {found} but no {folder.name}/: the {layout} layout needs both {side_a}/ and {side_b}/")
    sides = [_decode_folder(folder, layout) for folder in folders]
    if needs == "paired":
        sides = _pair_by_name(*sides, *folders)
    (arrays_a, skipped_a), (arrays_b, skipped_b) = [(list(s[0].values()), s[1]) for s in sides]
    size = size or common_size(arrays_a)
    return PairedImageData(name=name, images=stack_images(arrays_a, size), images_b=stack_images(arrays_b, size),
                           paired=needs == "paired", skipped=skipped_a + skipped_b)


_HELD_OUT = ("test", "val")


def _aligned_folder(root: Path, split: str) -> Tuple[Path, Tuple[str, ...]]:
    """The folder of a split of the aligned layout, and the sub-folders of it that belong to another split."""
    if split == "train":
        if (root / "train").is_dir():
            return root / "train", ()
        return root, tuple(d for d in _HELD_OUT if (root / d).is_dir())  # images directly in root; test/ stays out
    for candidate in (split, *_HELD_OUT):
        if (root / candidate).is_dir():
            return root / candidate, ()
    raise UserError(f"{root}: no held-out split (test/ or val/) in this aligned layout")


def _decode_folder(folder: Path, layout: str, exclude: Tuple[str, ...] = ()) -> Tuple[Dict[str, np.ndarray], int]:
    """{relative path: uint8 (H, W, C)} of every readable image below `folder` (but not in its first-level
    sub-folders `exclude`), sorted, and the count skipped."""
    entries = [entry for entry in folder_entries(folder) if entry[1].parts[0] not in exclude]
    if not entries:
        if exclude:
            raise UserError(f"{folder} holds no training images outside {', '.join(f'{d}/' for d in exclude)}: "
                            "put the training pairs in train/")
        need = "A|B images side by side" if layout == "aligned" else "images on both sides"
        raise UserError(f"{folder} holds no images: the {layout} layout needs {need}")
    decoded, failures = decode_all(entries)
    if not decoded:  # one line: the error alone, without the warning about the same files
        raise UserError(f"no readable images in {folder}: all {len(failures)} failed (first: {failures[0][0]}: {failures[0][1]})")
    if failures:
        log.warning("skipped %d unreadable file%s in %s (first: %s: %s)", len(failures), "" if len(failures) == 1 else "s",
                    folder, *failures[0])
    return {str(relative): array for relative, array in decoded}, len(failures)


def _pair_by_name(side_a, side_b, folder_a: Path, folder_b: Path):
    """Both sides restricted to the same names, in the same order; x.png pairs with x.jpg."""
    def by_stem(side):
        return {str(PurePosixPath(name).with_suffix("")): array for name, array in side.items()}

    (a, skipped_a), (b, skipped_b) = (by_stem(side_a[0]), side_a[1]), (by_stem(side_b[0]), side_b[1])
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        stray, here, there = (only_a[0], folder_a, folder_b) if only_a else (only_b[0], folder_b, folder_a)
        count = len(only_a) + len(only_b)
        raise UserError(f"paired folders must hold the same file names: {here.name}/{stray} has no match in {there.name}/"
                        f" ({count} unmatched name{'s' if count > 1 else ''} in all)")
    keys = sorted(a)
    return ({k: a[k] for k in keys}, skipped_a), ({k: b[k] for k in keys}, skipped_b)


def _load_aligned(folder: Path, size: Optional[int], name: str, paired: bool, exclude: Tuple[str, ...] = ()) -> PairedImageData:
    decoded, skipped = _decode_folder(folder, "aligned", exclude)
    halves_a, halves_b = [], []
    for relative, array in decoded.items():
        height, width = array.shape[:2]
        if width <= height:
            raise UserError(f"{folder / relative} is {width} x {height} px, no wider than tall, so not A and B side by side: "
                            "for two folders of images use trainA/ + trainB/ or A/ + B/")
        if width % 2:
            raise UserError(f"{folder / relative}: {width} px wide, but an aligned image holds A and B side by side "
                            "and must have an even width")
        halves_a.append(array[:, : width // 2])
        halves_b.append(array[:, width // 2 :])
    size = size or common_size(halves_a)
    return PairedImageData(name=name, images=stack_images(halves_a, size), images_b=stack_images(halves_b, size),
                           paired=paired, skipped=skipped)


def held_out_split(root: Path, size: Optional[int] = None) -> Optional[PairedImageData]:
    """The held-out split of a two-domain folder (testA/ + testB/, or test/ or val/ beside aligned pairs), or None."""
    layout = detect_layout(root)
    if (layout == "cyclegan" and (root / "testA").is_dir() and (root / "testB").is_dir()) or (
            layout == "aligned" and any((root / d).is_dir() for d in _HELD_OUT)):
        return load_two_domains(root, "paired" if layout == "aligned" else "unpaired", size=size, split="test")
    return None
