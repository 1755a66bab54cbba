"""Datasets fetched from their canonical hosts: MNIST, Fashion-MNIST (IDX files) and CIFAR-10 (binary version).

Each file is pinned by SHA-256 (the values TensorFlow Datasets records in its url_checksums) and tried
on several mirrors in order. CIFAR-10 is read from the binary archive, never from the pickled Python
version, so loading a dataset never runs code from the internet.
"""
from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch

from ganforge.data.base import ImageData
from ganforge.data.download import cache_dir, download
from ganforge.errors import UserError
from ganforge.imaging.transforms import match_channels, resize_center_crop


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the file name on every mirror
    sha256: str


# Parses the downloaded files of one split to uint8 (N, C, H, W) images and int64 (N,) labels.
Parser = Callable[[Dict[str, Path], str], Tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RemoteDataset:
    """Where a dataset's files are and how to read them: the loader of its catalogue entry, which describes and
    credits it."""
    name: str
    mirrors: Tuple[str, ...]  # folder URLs ending in "/", tried in order
    files: Dict[str, Tuple[RemoteFile, ...]]  # split -> the files it needs
    classes: Tuple[str, ...]
    native_size: int
    parse: Parser

    def __call__(self, request) -> ImageData:
        """The catalogue's loader: a Request's split, at its size and channels."""
        return load_remote(self, split=request.split, size=request.size, channels=request.channels)


# --- IDX (MNIST, Fashion-MNIST): big-endian, magic 0x0000 08 dd where 08 = uint8 and dd = the rank.
_IDX_IMAGES_MAGIC = 0x00000803  # rank 3: (N, rows, cols)
_IDX_LABELS_MAGIC = 0x00000801  # rank 1: (N,)


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path} is not a readable gzip file ({e}); delete it to download it again") from None


def read_idx(path: Path, rank: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes -> uint8 array of the given rank, checking magic and length."""
    data = _gunzip(path)
    header = 4 + 4 * rank
    if len(data) < header:
        raise UserError(f"{path} is not an IDX file: {len(data)} bytes is shorter than its header")
    magic = int.from_bytes(data[0:4], "big")
    expected = 0x00000800 | rank
    if magic != expected:
        raise UserError(f"{path} is not an IDX file of rank {rank}: magic number {magic:#010x}, expected {expected:#010x}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header + count:
        raise UserError(f"{path} is malformed: its header says {shape} = {count} bytes of data, it holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def parse_idx(files: Dict[str, Path], split: str) -> Tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images_path, labels_path = files[f"{prefix}-images-idx3-ubyte.gz"], files[f"{prefix}-labels-idx1-ubyte.gz"]
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"{images_path} holds {images.shape[0]} images but {labels_path} {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise UserError(f"{labels_path} is malformed: label {labels.max()} is outside 0..9")
    return images[:, None], labels.astype(np.int64)


# --- CIFAR-10 binary: each record is 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32).
_CIFAR_RECORD = 1 + 3 * 32 * 32
_CIFAR_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def parse_cifar(files: Dict[str, Path], split: str) -> Tuple[np.ndarray, np.ndarray]:
    (archive,) = files.values()
    wanted = _CIFAR_BATCHES[split]
    found: Dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # read members in place: nothing is extracted to disk
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise UserError(f"{archive} is not a readable tar.gz archive ({e}); delete it to download it again") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise UserError(f"{archive} is not the CIFAR-10 binary archive: it lacks {', '.join(missing)}")
    chunks = []
    for name in wanted:
        data = found[name]
        if len(data) == 0 or len(data) % _CIFAR_RECORD:
            raise UserError(f"{archive}: {name} is malformed ({len(data)} bytes is not a whole number of {_CIFAR_RECORD}-byte records)")
        chunks.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD))
    records = np.concatenate(chunks)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise UserError(f"{archive} is malformed: label {labels.max()} is outside 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32)
    return images, labels


def idx_files(train: Tuple[Tuple[str, str], ...], test: Tuple[Tuple[str, str], ...]):
    return {
        "train": tuple(RemoteFile(*spec) for spec in train),
        "test": tuple(RemoteFile(*spec) for spec in test),
    }


CIFAR10_ARCHIVE = RemoteFile("cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")


def load_remote(
    spec: RemoteDataset,
    *,
    split: str = "train",
    size: Optional[int] = None,
    channels: Optional[int] = None,
    cache: Optional[Union[str, os.PathLike]] = None,
    base_url: Optional[str] = None,
) -> ImageData:
    """Download (once, into ``cache`` or ``cache_dir()``/NAME) and load the dataset `spec` describes.

    ``base_url`` (or $GANFORGE_DATASET_MIRROR) replaces every mirror: files are fetched from
    BASE_URL/FILE_NAME, still checked against the pinned SHA-256.
    """
    name = spec.name
    if split not in spec.files:
        raise UserError(f"dataset {name} has no split {split!r}; choose one of: {', '.join(spec.files)}")
    folder = Path(cache) if cache is not None else cache_dir() / name
    base_url = base_url or os.environ.get("GANFORGE_DATASET_MIRROR")
    mirrors = (base_url.rstrip("/") + "/",) if base_url else spec.mirrors
    files = {}
    for remote in spec.files[split]:
        urls = [mirror + remote.name for mirror in mirrors]
        files[remote.name] = download(urls, remote.sha256, folder / remote.name)
    images, labels = spec.parse(files, split)
    tensor = torch.from_numpy(np.ascontiguousarray(images))  # (N, C, H, W) uint8
    if channels is not None:
        if channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {channels}")
        tensor = match_channels(tensor, channels)
    if size is not None:
        if size < 1:
            raise UserError(f"size must be a positive number of pixels, got {size}")
        tensor = resize_center_crop(tensor, size)
    return ImageData(
        name=name,
        images=tensor,
        labels=torch.from_numpy(labels),
        classes=list(spec.classes),
        native_size=spec.native_size,
    )
