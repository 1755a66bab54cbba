"""Two-domain image data for the image-to-image models: the layouts users already have, and the public
pix2pix / CycleGAN datasets by name.

A folder given as --data to pix2pix, cyclegan, ... is read in the first layout that fits:

- CycleGAN: ``trainA/`` and ``trainB/`` (``testA/``, ``testB/`` hold the held-out split). Unpaired: the two
  sides may differ in number; a model that needs pairs pairs the files by name.
- parallel folders: ``A/`` and ``B/`` holding the same file names (``A/x.png`` pairs with ``B/x.jpg``).
- aligned: each image holds A and B side by side, A on the left (the pix2pix release format), in
  ``train/`` (``test/`` or ``val/`` held out) or directly in the folder.

Public sets (``horse2zebra``, ``facades``, ...; ``NAME:test`` for the held-out split) are downloaded once
from their authors' servers into the cache, unpacked, and read as above.
"""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ganforge.data.base import ImageData
from ganforge.data.download import cache_dir, download, download_recorded
from ganforge.data.folder import common_size
from ganforge.errors import UserError

log = logging.getLogger("ganforge")


class PairedImageData(ImageData):
    """ImageData whose second domain may differ from the first in channels and size (grey <-> colour, 7 -> 28 px)."""

    def info(self) -> Dict:
        info = super().info()
        if self.images_b is not None:
            info.update(channels_b=int(self.images_b.shape[1]), size_b=int(self.images_b.shape[-1]))
        return info


def conform_pair(data: ImageData, size: Optional[int]) -> ImageData:
    """Resize both domains for a model working at `size` (A's side); B keeps its size ratio to A (x4 for SR)."""
    from ganforge.imaging.transforms import resize_center_crop

    if size is None or size == data.size:
        return data
    ratio = data.images_b.shape[-1] / data.size
    data.images = resize_center_crop(data.images, size)
    data.images_b = resize_center_crop(data.images_b, max(1, round(size * ratio)))
    return data


# --- folders ---------------------------------------------------------------------------------------

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
    return PairedImageData(name=name, images=_stack_images(arrays_a, size), images_b=_stack_images(arrays_b, size),
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
    from ganforge.data.folder import _decode_all, _folder_entries

    entries = [entry for entry in _folder_entries(folder) if entry[1].parts[0] not in exclude]
    if not entries:
        if exclude:
            raise UserError(f"{folder} holds no training images outside {', '.join(f'{d}/' for d in exclude)}: "
                            "put the training pairs in train/")
        need = "A|B images side by side" if layout == "aligned" else "images on both sides"
        raise UserError(f"{folder} holds no images: the {layout} layout needs {need}")
    decoded, failures = _decode_all(entries)
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
    return PairedImageData(name=name, images=_stack_images(halves_a, size), images_b=_stack_images(halves_b, size),
                           paired=paired, skipped=skipped)


def _stack_images(arrays: List[np.ndarray], size: int) -> torch.Tensor:
    """uint8 (H, W, C) arrays -> uint8 (N, C, size, size): colour if any image is in colour."""
    from ganforge.data.folder import _stack

    channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    return _stack(arrays, size, channels)


# --- public datasets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicSet:
    name: str
    archive: str  # the file name on every mirror
    mirrors: Tuple[str, ...]  # folder URLs ending in "/"
    sha256: Optional[str]  # None: no published checksum; the first download's is recorded and enforced after
    layout: str  # "cyclegan" or "aligned"
    description: str


_CYCLEGAN = ("https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
             "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/")
_PIX2PIX = ("https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/",
            "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/")


def _cyclegan(name: str, sha256: str, description: str) -> PublicSet:
    # checksums: the values TensorFlow Datasets records for these archives (url_checksums/cycle_gan.txt)
    return PublicSet(name, f"{name}.zip", _CYCLEGAN, sha256, "cyclegan", f"unpaired, {description} (Zhu et al. 2017)")


def _pix2pix(name: str, description: str) -> PublicSet:
    return PublicSet(name, f"{name}.tar.gz", _PIX2PIX, None, "aligned", f"paired, {description} (Isola et al. 2017)")


PUBLIC: Dict[str, PublicSet] = {s.name: s for s in (
    _cyclegan("horse2zebra", "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1", "horses <-> zebras, 256 px, 112 MB"),
    _cyclegan("apple2orange", "845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8", "apples <-> oranges, 256 px, 75 MB"),
    _cyclegan("summer2winter_yosemite", "167fe1726807a9d22bd106b4a6c0bd7953b688af924ac1bf967439c4961e49f9", "Yosemite in summer <-> winter, 256 px, 127 MB"),
    _cyclegan("monet2photo", "88f91b00fc228f97c9411fbf1880ec1d119c98f1722e4cfcfaa2fb35fac05b04", "Monet paintings <-> photos, 256 px, 291 MB"),
    _cyclegan("cezanne2photo", "3a6c10ca21f9485862f1cbd707744b9dc258954a04631271d23a3605eeb63cff", "Cezanne paintings <-> photos, 256 px, 267 MB"),
    _cyclegan("ukiyoe2photo", "02a2a2fb5ecf425ca1bf86aca7304377da64a2a1d3b86df54eb65e4068bf3b08", "ukiyo-e prints <-> photos, 256 px, 279 MB"),
    _cyclegan("vangogh2photo", "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff", "Van Gogh paintings <-> photos, 256 px, 292 MB"),
    _cyclegan("iphone2dslr_flower", "8fcb5e374d631b107e1d961b8c4cd0a186aa2a4ff3e279923f4c426128de7113", "phone <-> DSLR flower photos, 256 px, 324 MB"),
    _pix2pix("facades", "facade photos | CMP label maps, 256 px, 400 pairs (labels -> photos: direction=b2a)"),
    _pix2pix("cityscapes", "street photos | label maps, 256 px, 2,975 pairs"),
    _pix2pix("maps", "aerial photos | Google maps, 600 px, 1,096 pairs"),
    _pix2pix("edges2shoes", "shoe edges | photos, 256 px, 50k pairs"),
    _pix2pix("edges2handbags", "handbag edges | photos, 256 px, 137k pairs"),
    _pix2pix("night2day", "night | day webcam photos, 256 px, 17k pairs"),
)}


def public_name(spec: str) -> Tuple[Optional[str], str]:
    """(name, split) when `spec` names a public set ("horse2zebra", "facades:test"), else (None, "")."""
    name, _, split = spec.partition(":")
    return (name, split or "train") if name in PUBLIC else (None, "")


def load_public(name: str, *, split: str = "train", needs: Optional[str] = None, size: Optional[int] = None,
                cache: Optional[Union[str, os.PathLike]] = None, base_url: Optional[str] = None) -> PairedImageData:
    """Download (once), unpack (once) and read a public pix2pix / CycleGAN set.

    ``base_url`` (or $GANFORGE_DATASET_MIRROR) replaces the mirrors: the archive is fetched from BASE_URL/ARCHIVE.
    """
    spec = PUBLIC[name]
    if split not in ("train", "test"):
        raise UserError(f"dataset {name} has the splits train and test, not {split!r}")
    folder = Path(cache) if cache is not None else cache_dir() / name
    base_url = base_url or os.environ.get("GANFORGE_DATASET_MIRROR")
    urls = [base_url.rstrip("/") + "/" + spec.archive] if base_url else [m + spec.archive for m in spec.mirrors]
    archive = _fetch(urls, spec.sha256, folder / spec.archive)
    unpacked = _unpack(archive, folder / "files")
    root = unpacked / name if (unpacked / name).is_dir() else unpacked
    if spec.layout == "cyclegan" and not (root / f"{split}A").is_dir():
        raise UserError(f"{archive} does not hold the {name} folders {split}A/ and {split}B/; delete {folder} to fetch it again")
    return load_two_domains(root, needs or ("paired" if spec.layout == "aligned" else "unpaired"), size=size, split=split,
                            name=name if split == "train" else f"{name}:{split}")


def _fetch(urls: Sequence[str], sha256: Optional[str], dest: Path) -> Path:
    """The archive at `dest`: checked against its pinned checksum, or, for one its authors publish none for,
    against the checksum recorded at its first download."""
    return download(list(urls), sha256, dest) if sha256 else download_recorded(list(urls), dest)


def _unpack(archive: Path, target: Path) -> Path:
    """Unpack a .zip or .tar.gz into `target` once (atomically: into a temporary folder renamed at the end).

    Only regular files and folders are written, and only below `target`: entries with absolute paths,
    '..', links or devices are refused, so an archive cannot write elsewhere.
    """
    if target.is_dir():
        return target
    temp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        if archive.name.endswith(".zip"):
            _unzip(archive, temp)
        else:
            _untar(archive, temp)
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def _safe_relative(name: str, archive: Path) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UserError(f"{archive}: refusing the entry '{name}' (it points outside the archive's folder)")
    return relative


def _unzip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                relative = _safe_relative(info.filename, archive)
                dest = into.joinpath(*relative.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"{archive} is not a readable zip file ({e}); delete it to download it again") from None


def _untar(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                relative = _safe_relative(member.name, archive)
                dest = into.joinpath(*relative.parts)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                else:
                    raise UserError(f"{archive}: refusing the entry '{member.name}' (links and devices are not unpacked)")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{archive} is not a readable tar archive ({e}); delete it to download it again") from None


# --- held-out data for the quality figures ---------------------------------------------------------

def held_out(spec: str, size: Optional[int] = None) -> Optional[ImageData]:
    """The held-out split that goes with a --data SPEC, or None when it has none."""
    from ganforge.data import derived

    spec = str(spec)
    if spec in derived.DERIVED:
        return conform_pair(derived.load(spec, "test"), size)
    if spec in ("mnist5k", "mnist5k-attrs"):  # their held-out digits are embedded datasets of their own
        from ganforge.data import conform
        from ganforge.data.embedded import EMBEDDED

        return conform(EMBEDDED[f"{spec}-test"][0](), size, None)
    name, split = public_name(spec)
    if name is not None:
        folder = cache_dir() / name / "files"
        root = folder / name if (folder / name).is_dir() else folder
        return load_two_domains(root, "unpaired", size=size, split="test") if root.is_dir() and split == "train" else None
    root = Path(spec).expanduser()
    if not root.is_dir():
        return None
    layout = detect_layout(root)
    if (layout == "cyclegan" and (root / "testA").is_dir() and (root / "testB").is_dir()) or (
            layout == "aligned" and ((root / "test").is_dir() or (root / "val").is_dir())):
        return load_two_domains(root, "paired" if layout == "aligned" else "unpaired", size=size, split="test")
    return None
