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
    """Where a public set's archive is and how it is laid out: the loader of its catalogue entry, which
    describes and credits it."""
    name: str
    archive: str  # the file name on every mirror
    mirrors: Tuple[str, ...]  # folder URLs ending in "/"
    sha256: Optional[str]  # None: no published checksum; the first download's is recorded and enforced after
    layout: str  # "cyclegan" or "aligned"

    def __call__(self, request) -> PairedImageData:
        """The catalogue's loader: a Request's split at its size, read as the model needs (paired or unpaired)."""
        needs = request.needs if request.needs in ("paired", "unpaired") else None
        return load_public(self, split=request.split, size=request.size, needs=needs)


_CYCLEGAN = ("https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
             "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/")
_PIX2PIX = ("https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/",
            "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/")


def cyclegan_set(name: str, sha256: str) -> PublicSet:
    """A set of CycleGAN's release; its checksum as TensorFlow Datasets records it (url_checksums/cycle_gan.txt)."""
    return PublicSet(name, f"{name}.zip", _CYCLEGAN, sha256, "cyclegan")


def pix2pix_set(name: str) -> PublicSet:
    """A set of pix2pix's release, which publishes no checksums."""
    return PublicSet(name, f"{name}.tar.gz", _PIX2PIX, None, "aligned")


def load_public(spec: PublicSet, *, split: str = "train", needs: Optional[str] = None, size: Optional[int] = None,
                cache: Optional[Union[str, os.PathLike]] = None, base_url: Optional[str] = None) -> PairedImageData:
    """Download (once), unpack (once) and read a public pix2pix / CycleGAN set.

    ``base_url`` (or $GANFORGE_DATASET_MIRROR) replaces the mirrors: the archive is fetched from BASE_URL/ARCHIVE.
    """
    name = spec.name
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
