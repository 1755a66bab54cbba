"""The public pix2pix / CycleGAN datasets: downloaded once from their authors' servers into the cache,
unpacked, and read as two-domain folders (``NAME:test`` for the held-out split).
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Optional, Sequence, Tuple, Union

from ganforge.data.base import PairedImageData
from ganforge.data.download import cache_dir, download, download_recorded
from ganforge.data.two_domains import load_two_domains
from ganforge.errors import UserError


@dataclass(frozen=True)
class PublicSet:
    """Where a public set's archive is and how it is laid out; the catalogue describes and credits it."""
    name: str
    archive: str  # the file name on every mirror
    mirrors: Tuple[str, ...]  # folder URLs ending in "/"
    sha256: Optional[str]  # None: no published checksum; the first download's is recorded and enforced after
    layout: str  # "cyclegan" or "aligned"


_CYCLEGAN = ("https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
             "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/")
_PIX2PIX = ("https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/",
            "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/")


def _cyclegan(name: str, sha256: str) -> PublicSet:
    # checksums: the values TensorFlow Datasets records for these archives (url_checksums/cycle_gan.txt)
    return PublicSet(name, f"{name}.zip", _CYCLEGAN, sha256, "cyclegan")


def _pix2pix(name: str) -> PublicSet:
    return PublicSet(name, f"{name}.tar.gz", _PIX2PIX, None, "aligned")


PUBLIC: Dict[str, PublicSet] = {s.name: s for s in (
    _cyclegan("horse2zebra", "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1"),
    _cyclegan("apple2orange", "845a191e9af8926408ea597001cd03a452e3300a1f44a79fe329b3d59f6e3eb8"),
    _cyclegan("summer2winter_yosemite", "167fe1726807a9d22bd106b4a6c0bd7953b688af924ac1bf967439c4961e49f9"),
    _cyclegan("monet2photo", "88f91b00fc228f97c9411fbf1880ec1d119c98f1722e4cfcfaa2fb35fac05b04"),
    _cyclegan("cezanne2photo", "3a6c10ca21f9485862f1cbd707744b9dc258954a04631271d23a3605eeb63cff"),
    _cyclegan("ukiyoe2photo", "02a2a2fb5ecf425ca1bf86aca7304377da64a2a1d3b86df54eb65e4068bf3b08"),
    _cyclegan("vangogh2photo", "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff"),
    _cyclegan("iphone2dslr_flower", "8fcb5e374d631b107e1d961b8c4cd0a186aa2a4ff3e279923f4c426128de7113"),
    *(_pix2pix(name) for name in ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")),
)}


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



def cached_test_split(name: str, size: Optional[int] = None) -> Optional[PairedImageData]:
    """The held-out split of a public set when it is already unpacked in the cache, else None: the quality
    figures never download."""
    folder = cache_dir() / name / "files"
    root = folder / name if (folder / name).is_dir() else folder
    return load_two_domains(root, "unpaired", size=size, split="test") if root.is_dir() else None
