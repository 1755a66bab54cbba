"""Inception features of image sets: streamed batch by batch, and cached on disk for real data.

Real-data features are stored under ``<cache>/features/`` in a file named by the network, the
preprocessing, a hash of the image bytes and N, so a changed data set, a different subset or another
preprocessing can never reuse a stale file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from ganforge.errors import UserError
from ganforge.data.base import on_white as on_white_uint8
from ganforge.data.download import cache_dir
from ganforge.features.inception import FEATURE_DIM, PREPROCESSING_ID, InceptionV3, load_inception, preprocess
from ganforge.features.inception_weights import NETWORK_ID
from ganforge.metrics.inception import OnnxInception, load_onnx_inception, onnx_available

BATCH_SIZE = 16  # the fastest of 8, 16, 32 and 64 on a 2-core CPU
BACKENDS = ("auto", "torch", "onnx")
Network = Union[InceptionV3, OnnxInception]


def feature_network(network: Optional[Network] = None, backend: str = "auto") -> Network:
    """The engine that computes features: ``network`` says which weights (None: the resolved default),
    ``backend`` what runs them. "onnx" is ONNX Runtime (features equal to the eager network's within
    float rounding, faster on a CPU), "torch" the eager network, "auto" ONNX Runtime when it is installed
    and the network is on the CPU, else torch."""
    if backend not in BACKENDS:
        raise UserError(f"unknown Inception backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if isinstance(network, OnnxInception):
        return network
    eager = network or load_inception()
    on_cpu = next(eager.parameters()).device.type == "cpu"
    if backend == "torch" or (backend == "auto" and not (on_cpu and onnx_available())):
        return eager
    if eager.source is None:
        raise UserError("the onnx backend needs a network loaded from a weights file (load_inception)")
    try:
        return load_onnx_inception(eager.source)
    except UserError:
        if backend == "auto":
            return eager  # an unwritable cache costs speed, not correctness
        raise


def as_images(images) -> torch.Tensor:
    """An image set in any common layout -> a torch tensor (N, C, H, W), C in {1, 3}.

    Accepts numpy or torch; uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) in [0, 255]; or float
    (N, C, H, W) generator output in [-1, 1]. uint8 stays uint8, float stays float.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise UserError(f"expected an image array, got {type(images).__name__}")
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or x.shape[0] == 0:
        raise UserError(f"expected images shaped (N, H, W), (N, H, W, C) or (N, C, H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
            x = x.permute(0, 3, 1, 2)  # channels-last files (NPZ, PIL) -> (N, C, H, W)
    elif not x.is_floating_point():
        raise UserError(f"images must be uint8 in [0, 255] or float in [-1, 1], got {x.dtype}")
    if x.shape[1] == 4:
        x = on_white(x)
    if x.shape[1] not in (1, 3):
        raise UserError(f"images must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got shape {tuple(x.shape)}")
    return x.contiguous()


def on_white(x: torch.Tensor) -> torch.Tensor:
    """RGBA (N, 4, H, W), straight alpha, uint8 or float in [-1, 1] -> RGB composited on white, as the
    Inception network sees transparent images (and as they are shown)."""
    if x.dtype == torch.uint8:
        return on_white_uint8(x)
    alpha = (x[:, 3:] + 1) / 2
    return x[:, :3] * alpha + (1 - alpha)


def extract_features(
    images: Union[torch.Tensor, np.ndarray, Iterable[torch.Tensor]],
    network: Optional[Network] = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    total: Optional[int] = None,
    backend: str = "auto",
) -> np.ndarray:
    """(N, 2048) float32 pool features of ``images``: one image set, or an iterable of batches (e.g.
    generator output produced chunk by chunk, never held all at once). ``network`` and ``backend``: see
    :func:`feature_network`."""
    network = feature_network(network, backend)
    device = next(network.parameters()).device if isinstance(network, InceptionV3) else torch.device("cpu")
    chunks = [images] if isinstance(images, (torch.Tensor, np.ndarray)) else images
    if total is None and isinstance(images, (torch.Tensor, np.ndarray)):
        total = len(images)
    out = []
    with torch.inference_mode(), tqdm(total=total, unit="img", disable=not progress, desc="inception", leave=False) as bar:
        for chunk in chunks:
            chunk = as_images(chunk)
            for start in range(0, chunk.shape[0], batch_size):
                batch = preprocess(chunk[start : start + batch_size].to(device))
                out.append(network(batch).float().cpu().numpy())
                bar.update(batch.shape[0])
    if not out:
        raise UserError("no images to compute features of")
    return np.concatenate(out)


def content_hash(images: torch.Tensor) -> str:
    """sha256 of a uint8 image tensor's shape and bytes (first 16 hex digits)."""
    x = as_images(images)
    if x.dtype != torch.uint8:
        raise ValueError("content_hash needs uint8 images")
    h = hashlib.sha256(repr(tuple(x.shape)).encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_features(
    images,
    network: Optional[Network] = None,
    progress: bool = False,
    use_cache: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """Features of a real (uint8) image set, read from the cache when this exact set was seen before
    (whichever backend computed them: they agree to float rounding)."""
    x = as_images(images)
    if x.dtype != torch.uint8 or not use_cache:
        return extract_features(x, network, progress=progress, backend=backend)
    path = cache_dir() / "features" / f"{NETWORK_ID}_{PREPROCESSING_ID}_{content_hash(x)}_n{x.shape[0]}.npy"
    if path.is_file():
        try:
            features = np.load(path, allow_pickle=False)
            if features.shape == (x.shape[0], FEATURE_DIM):
                return features
        except (OSError, ValueError):
            pass  # a partial or damaged file: compute again and overwrite it
    features = extract_features(x, network, progress=progress, backend=backend)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return features  # a read-only cache costs time, not correctness
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, features)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return features
