"""Generator-only files: the networks a model samples with, in one safetensors file that carries everything else
in its metadata, so that a single file (a shipped model, a URL) is a whole model to sample, explore and translate.

    NAME.safetensors   tensors  "net.G.KEY" (and "net.F.KEY" for CycleGAN): the family's `ema_nets`, averaged
                                where the run kept an average; floats stored in fp16 unless asked otherwise
                       metadata format, format_version, model, step, config, data, ganforge_version, licence,
                                figures, name, command, averaged (str -> str: JSON where not a plain string)

Loading casts every float back to fp32, so sampling runs as from a checkpoint. The discriminators are not in the
file: a loaded model holds `Absent` in their place, which refuses in one line if anything asks it to run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.errors import UserError
from ganforge.training.checkpoint import _check_sidecar, atomic_write, jsonable
from ganforge.version import __version__

FORMAT = "ganforge-generator"
FORMAT_VERSION = 1
_JSON_FIELDS = ("step", "config", "data", "figures", "averaged", "format_version")


class Absent(nn.Module):
    """Stands where a generator-only file holds no network (the discriminators): running it is one clear line."""

    def __init__(self, name: str, source: Union[str, Path]):
        super().__init__()
        self.name, self.source = name, str(source)

    def forward(self, *args, **kwargs):
        raise UserError(f"{self.source} holds the generator only: it has no discriminator ({self.name}) to ask; "
                        f"load the run's checkpoint for that")


def header(path: Union[str, Path]) -> Optional[Dict[str, str]]:
    """The safetensors metadata of `path`, or None when it is not a safetensors file (a folder, a JSON sidecar,
    anything else). Reads the header only."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None


def is_generator_file(path: Union[str, Path]) -> bool:
    meta = header(path)
    return meta is not None and meta.get("format") == FORMAT


def write(path: Union[str, Path], tensors: Dict[str, torch.Tensor], about: Dict[str, Any], half: bool = True) -> Path:
    """Write tensors and `about` (model, step, config, data, and what else describes the model) to `path`.
    half: floats in fp16, where every value fits (a weight beyond fp16's range keeps fp32)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"a generator file is named NAME.safetensors, got '{path}'")
    stored = {}
    for key, value in tensors.items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            narrow = value.half()
            value = narrow if bool(torch.isfinite(narrow).all()) or not bool(torch.isfinite(value).all()) else value
        stored[key] = value.clone()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "ganforge_version": __version__, **about}
    loose = [k for k, v in meta.items() if k not in _JSON_FIELDS and not isinstance(v, str)]
    if loose:
        raise TypeError(f"generator file metadata {loose[0]!r} must be a string (JSON goes in {', '.join(_JSON_FIELDS)})")
    text = {k: json.dumps(v, default=jsonable) if k in _JSON_FIELDS else v for k, v in meta.items()}
    atomic_write(path, lambda tmp: save_file(stored, tmp, metadata=text))
    return path


def read(path: Union[str, Path], device: str = "cpu") -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """(fp32 tensors, metadata with its JSON fields decoded) of a generator file; one line for a damaged one."""
    path = Path(path)
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: corrupt or unreadable generator tensors ({str(e).splitlines()[0]})") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, meta


def read_meta(path: Union[str, Path]) -> Dict[str, Any]:
    """A generator file's metadata, its JSON fields decoded and checked, without reading its tensors."""
    path = Path(path)
    text = header(path)
    if text is None or text.get("format") != FORMAT:
        raise UserError(f"{path}: not a ganforge generator file")
    meta: Dict[str, Any] = dict(text)
    for key in _JSON_FIELDS:
        if key in meta:
            try:
                meta[key] = json.loads(meta[key])
            except json.JSONDecodeError:
                raise UserError(f"{path}: corrupt generator file ({key} in its metadata is not JSON)") from None
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path}: written by ganforge {meta.get('ganforge_version')} in generator format {version}, "
                        f"which this ganforge {__version__} does not read; upgrade ganforge")
    missing = [k for k in ("step", "model", "config", "data") if k not in meta]
    if missing:
        raise UserError(f"{path}: incomplete generator file (no {', '.join(missing)} in its metadata)")
    _check_sidecar(meta, path)
    return meta


def data_licence(spec: str) -> str:
    """The licence (the catalogue's credit) of the data a run trained on; a folder's images keep their own terms."""
    from ganforge.data.catalogue import find

    found = find(str(spec))
    if found is not None and found[0].credit:
        return found[0].credit
    return f"not recorded: '{spec}' is not in ganforge's catalogue, so its images keep their owners' terms"
