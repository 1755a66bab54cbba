"""Image folders and zip files as datasets, with class labels taken from first-level sub-folders.

The steps are public for the other readers of image files (two-domain folders, attribute files): list a
folder's images, decode them in threads, stack them at one size.
"""
from __future__ import annotations

import logging
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from ganforge.data.base import ImageData, resize, to_channels
from ganforge.errors import UserError
from ganforge.imaging.io import IMAGE_SUFFIXES, ImageError, max_pixels, read_image

log = logging.getLogger("ganforge")

# (name shown in messages, relative path inside the set, a function returning the decoded image)
Entry = Tuple[str, PurePosixPath, Callable[[], np.ndarray]]


def load_images(path: Union[str, os.PathLike], *, size: Optional[int] = None, channels: Optional[int] = None,
                alpha: bool = False) -> ImageData:
    """Load every image under a folder (recursively) or inside a .zip file.

    - Labels: when every image lies inside a first-level sub-folder and there are at least two of them,
      each sub-folder is a class (sorted names -> labels 0..K-1); otherwise the set is unlabelled.
    - ``size``: images are scaled (short side) and centre-cropped to size x size; by default ``size`` is
      the most common short side (ties: the first in sorted path order), so one stray thumbnail or strip
      does not set the size of the whole set.
    - ``channels``: 3 if any image is in colour, else 1, unless given; transparency is composited on white.
    - ``alpha``: every image is read as straight-alpha RGBA (opaque where the file has no alpha): 4 channels.
    - Files that cannot be decoded are skipped and counted in ``skipped``, with one warning for all.
      Hidden files and folders (names starting with ".") and non-image files are ignored.
    """
    root = Path(path)
    if not root.exists():
        raise UserError(f"no such file or folder: {root}")
    if alpha and channels not in (None, 4):
        raise UserError(f"alpha=true keeps 4 channels (RGBA), not {channels}")
    if root.is_dir():
        entries = folder_entries(root, alpha=alpha)
    elif zipfile.is_zipfile(root):
        entries = _zip_entries(root, alpha=alpha)
    elif root.suffix.lower() == ".zip" or _starts_with(root, b"PK\x03\x04"):
        raise UserError(f"{root} is not a readable zip file (damaged or cut short): make the archive again")
    elif root.suffix.lower() in IMAGE_SUFFIXES:
        raise UserError(f"{root} is a single image: a dataset is the folder that holds the images, a .zip of them or an .npz")
    else:
        raise UserError(f"{root} is a file, not a folder of images or a .zip of them")
    if not entries:
        raise UserError(
            f"no image files in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, hidden files ignored)"
        )

    decoded, failures = decode_all(entries)
    if not decoded:
        first_name, first_reason = failures[0]
        raise UserError(f"no readable images in {root}: all {len(failures)} failed (first: {first_name}: {first_reason})")
    if failures:
        first_name, first_reason = failures[0]
        log.warning(
            "skipped %d unreadable file%s in %s (first: %s: %s)",
            len(failures), "" if len(failures) == 1 else "s", root, first_name, first_reason,
        )

    labels, classes = _labels([relative for relative, _ in decoded])
    arrays = [array for _, array in decoded]
    if size is None:
        size = common_size(arrays)
    if size < 1:
        raise UserError(f"size must be a positive number of pixels, got {size}")
    if channels is None:
        channels = default_channels(arrays)
    if channels not in (1, 3, 4):
        raise UserError(f"channels must be 1, 3 or 4, got {channels}")
    images = stack_images(arrays, size, channels)
    name = root.stem if root.is_file() else root.name
    return ImageData(
        name=name or str(root),
        images=images,
        labels=labels,
        classes=classes,
        skipped=len(failures),
    )


def common_size(arrays: List[np.ndarray]) -> int:
    """The most common short side of uint8 (H, W, C) arrays; a tie goes to the one seen first."""
    counts: Dict[int, int] = {}
    for array in arrays:
        side = min(array.shape[:2])
        counts[side] = counts.get(side, 0) + 1
    return max(counts, key=counts.get)  # max keeps the first of equal counts, and dicts keep insertion order


def _starts_with(path: Path, signature: bytes) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(signature)) == signature
    except OSError:
        return False


def _is_hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def folder_entries(root: Path, alpha: bool = False) -> List[Entry]:
    entries: List[Entry] = []
    seen = set()  # real folders already walked: a symlink loop is entered only once
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not _is_hidden(d))
        for file_name in files:
            if _is_hidden(file_name) or Path(file_name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = Path(folder) / file_name
            relative = PurePosixPath(full.relative_to(root).as_posix())
            entries.append((str(relative), relative, lambda full=full: read_image(full, alpha=alpha)))
    entries.sort(key=lambda entry: entry[1])
    return entries


def _zip_entries(archive: Path, alpha: bool = False) -> List[Entry]:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [info for info in zipped.infolist() if not info.is_dir()]
            # Read the compressed bytes here, decode in threads: one reader on the archive file.
            limit = 4 * max_pixels() + (1 << 20)  # an uncompressed RGBA bitmap at the pixel limit, plus headers
            entries: List[Entry] = []
            for info in sorted(members, key=lambda info: info.filename):
                relative = PurePosixPath(info.filename)
                if any(_is_hidden(part) for part in relative.parts) or relative.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                shown = info.filename
                if info.file_size > limit:
                    entries.append((shown, relative, _refuse(shown, f"{info.file_size:,} bytes uncompressed is too large")))
                    continue
                try:
                    data = zipped.read(info)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
                    entries.append((shown, relative, _refuse(shown, f"damaged zip entry ({e})")))
                    continue
                entries.append((shown, relative, lambda data=data, name=f"{archive}/{shown}":
                                read_image(data, name=name, alpha=alpha)))
            return entries
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"cannot read zip file {archive}: {e}") from None


def _refuse(name: str, reason: str) -> Callable[[], np.ndarray]:
    def fail() -> np.ndarray:
        raise ImageError(name, reason)

    return fail


def decode_all(entries: List[Entry]):
    """Decode in a few threads (Pillow releases the GIL while decoding); keeps the entries' order."""

    def attempt(entry: Entry):
        try:
            return entry[2](), None
        except ImageError as e:
            return None, e.reason

    workers = min(4, os.cpu_count() or 1, len(entries))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(attempt, entries))
    decoded, failures = [], []
    for (shown, relative, _), (array, reason) in zip(entries, results):
        if array is None:
            failures.append((shown, reason))
        else:
            decoded.append((relative, array))
    return decoded, failures


def _labels(relatives: List[PurePosixPath]):
    """Class labels from first-level sub-folders, or (None, []) when the layout does not say."""
    if not all(len(relative.parts) >= 2 for relative in relatives):
        return None, []
    classes = sorted({relative.parts[0] for relative in relatives})
    if len(classes) < 2:  # one wrapping folder (common in zips) is not a class
        return None, []
    index = {name: label for label, name in enumerate(classes)}
    labels = torch.tensor([index[relative.parts[0]] for relative in relatives], dtype=torch.int64)
    return labels, classes


def default_channels(arrays: List[np.ndarray]) -> int:
    """4 if any uint8 (H, W, C) array is RGBA, else 3 if any is in colour, else 1."""
    return max(array.shape[2] for array in arrays)


def stack_images(arrays: List[np.ndarray], size: int, channels: Optional[int] = None) -> torch.Tensor:
    """uint8 (H, W, C) arrays of any sizes, C in {1, 3, 4} -> uint8 (N, channels, size, size): the short side
    scaled (RGBA premultiplied: see data.base.resize) and centre-cropped (CelebA's 178 x 218 faces: the centre
    178 x 178 square, as StarGAN crops them), one shape group at a time. ``channels`` defaults to 4 if any
    image is RGBA, else 3 if any is in colour, else 1."""
    if size < 1:
        raise UserError(f"size must be a positive number of pixels, got {size}")
    if channels is None:
        channels = default_channels(arrays)
    images = torch.empty(len(arrays), channels, size, size, dtype=torch.uint8)
    groups: Dict[Tuple[int, int, int], List[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(array.shape, []).append(i)
    for indices in groups.values():
        batch = torch.from_numpy(np.stack([arrays[i] for i in indices])).permute(0, 3, 1, 2)  # (n, C, H, W)
        batch = resize(to_channels(batch, channels), size)
        images[torch.tensor(indices)] = batch
    return images
