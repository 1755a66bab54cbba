"""The Inception network on the metrics' side: run by ONNX Runtime, and the Inception Score of its logits.

With ONNX Runtime installed, the eager network of features/inception.py can also run there
(:func:`load_onnx_inception`): it is exported once to ONNX into the cache, under a name holding the weights
file's hash.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import torch

from ganforge.data.download import cache_dir, sha256_of
from ganforge.errors import UserError
from ganforge.features.inception import INPUT_SIZE, InceptionV3, load_inception
from ganforge.features.inception_weights import NETWORK_ID, resolve_weights

# Bumped whenever the exported graph would change for the same weights, so an older export is not reused.
_ONNX_EXPORT_VERSION = 1


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@functools.lru_cache(maxsize=4)
def _weights_hash(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the key so a file replaced in place is hashed again.
    return sha256_of(Path(path))[:16]


def onnx_export_path(weights: Path) -> Path:
    """Where the ONNX export of ``weights`` lives: named by the weights' hash, never shared by two files."""
    st = weights.stat()
    digest = _weights_hash(str(weights), st.st_size, st.st_mtime_ns)
    return cache_dir() / "onnx" / f"{NETWORK_ID}_{digest}_v{_ONNX_EXPORT_VERSION}.onnx"


def export_onnx(network: InceptionV3, target: Path) -> Path:
    """Write ``network``'s feature graph to ``target``: input (B, 3, 299, 299) float32, any B."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(
                network,
                (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),),
                tmp,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                opset_version=17,
                dynamo=False,  # the graph is static; the dynamo exporter would also need onnxscript
            )
        os.replace(tmp, target)  # atomic: another process never reads half a file
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


class OnnxInception:
    """The folded network in ONNX Runtime: float (B, 3, 299, 299) preprocessed -> (B, 2048) features,
    called like :class:`InceptionV3` (CPU tensors in, CPU tensors out)."""

    def __init__(self, model: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # the same CPU budget torch was given
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.model = model
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": images})[0])


@functools.lru_cache(maxsize=2)
def _load_onnx(path: str, threads: int) -> OnnxInception:
    target = onnx_export_path(Path(path))
    if not target.is_file():
        try:
            export_onnx(load_inception(path, download=False), target)
        except OSError as e:
            raise UserError(f"cannot write the ONNX export of the Inception network to {target.parent} ({e}); "
                            "set GANFORGE_CACHE to a writable folder, or use backend='torch'") from None
    return OnnxInception(target, threads)


def load_onnx_inception(path: Optional[str] = None, download: bool = True) -> OnnxInception:
    """The network for the resolved weights file in ONNX Runtime, on as many threads as torch uses
    (exported on first use, then read from the cache)."""
    if not onnx_available():
        raise UserError("the onnx backend needs ONNX Runtime: run `pip install onnxruntime onnx`, or use backend='torch'")
    return _load_onnx(str(resolve_weights(path, download=download).resolve()), torch.get_num_threads())


def inception_score(logits: torch.Tensor, splits: int = 10):
    """Inception Score (Salimans et al. 2016) as NVlabs compute it: exp(E_x KL(p(y|x) || p(y))) over each
    of ``splits`` consecutive parts of the (N, 1008) logits; returns (mean, std) over the parts."""
    probs = torch.softmax(logits.double(), dim=1)
    n = probs.shape[0]
    if n < splits:
        raise UserError(f"the Inception Score needs at least {splits} images, got {n}")
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        kl = torch.special.xlogy(part, part) - part * torch.log(part.mean(dim=0, keepdim=True))  # 0 log 0 = 0
        scores.append(float(kl.sum(dim=1).mean().exp()))
    scores_t = torch.tensor(scores, dtype=torch.float64)
    return float(scores_t.mean()), float(scores_t.std(unbiased=False))
