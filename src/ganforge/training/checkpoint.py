"""Checkpoints: tensors in safetensors, everything else in a small JSON sidecar. Loading never runs code.

    checkpoints/step_000500.safetensors   networks, EMA, optimiser tensors, RNG states
    checkpoints/step_000500.json          step, config, data info, optimiser scalars, sampler, version

Both are written to a temporary name, fsynced and renamed; the JSON goes last, so a checkpoint exists
only once both are complete, and a run killed mid-write leaves the previous one untouched.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganforge.errors import UserError
from ganforge.version import __version__

FORMAT = "ganforge-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.json$")


def atomic_write(path: Path, write) -> None:
    """Write through `write(tmp_path)` to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass


def split_optimizer_state(prefix: str, state: Dict[str, Any]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """An optimizer's state_dict -> (tensors keyed `prefix.state.IDX.KEY`, the JSON-able rest)."""
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_optimizer_state(prefix: str, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    head = prefix + ".state."
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save(directory: Path, step: int, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> Path:
    directory = Path(directory)
    stem = directory / f"step_{step:06d}"
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write(stem.with_suffix(".safetensors"), lambda tmp: save_file(flat, tmp))
    sidecar = {"format": FORMAT, "format_version": FORMAT_VERSION, "ganforge_version": __version__, "step": step, **meta}
    text = json.dumps(sidecar, indent=1, default=jsonable)
    atomic_write(stem.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return stem.with_suffix(".json")


def jsonable(value):
    """json.dumps' `default` for what a checkpoint's sidecar or a generator file's metadata holds besides JSON's
    own types: tuples as lists, tensors as nested lists."""
    if isinstance(value, tuple):
        return list(value)
    if torch.is_tensor(value):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON in a checkpoint or generator file")


def list_checkpoints(directory: Path) -> List[Tuple[int, Path]]:
    """(step, sidecar path) of the complete checkpoints in a folder, oldest first."""
    if not Path(directory).is_dir():
        return []
    found = []
    for p in Path(directory).iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file() and p.with_suffix(".safetensors").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def resolve(path: str) -> Path:
    """A run folder, a checkpoints folder, or a checkpoint file -> the sidecar of the checkpoint meant."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"no run or checkpoint at '{path}'")
    if p.is_file():
        if p.suffix == ".safetensors":
            p = p.with_suffix(".json")
        if p.suffix != ".json" or not p.is_file():
            raise UserError(f"'{path}' is not a ganforge checkpoint (expected step_N.safetensors with its .json)")
        return p
    for folder in (p / "checkpoints", p):
        found = list_checkpoints(folder)
        if found:
            return found[-1][1]
    raise UserError(f"no checkpoint in '{path}' (looked for checkpoints/step_N.json)")


def load(path: str, device: str = "cpu") -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """(tensors, sidecar) of a checkpoint; one clear error for anything that is not one of ours."""
    sidecar_path = resolve(path)
    try:
        meta = json.loads(sidecar_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{sidecar_path}: corrupt checkpoint sidecar (not JSON)") from None
    except OSError as e:
        raise UserError(f"cannot read the checkpoint sidecar {sidecar_path}: {e.strerror or e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{sidecar_path}: not a ganforge checkpoint")
    version = meta.get("format_version", 0)
    if not _is_int(version):
        raise UserError(f"{sidecar_path}: corrupt checkpoint sidecar (format_version {version!r} is not a whole number)")
    if version > FORMAT_VERSION:
        raise UserError(
            f"{sidecar_path}: written by ganforge {meta.get('ganforge_version')} in checkpoint format "
            f"{meta['format_version']}, newer than this ganforge {__version__} reads; upgrade ganforge"
        )
    missing = [k for k in ("step", "model", "config", "data") if k not in meta]
    if missing:
        raise UserError(f"{sidecar_path}: incomplete checkpoint sidecar (no {', '.join(missing)})")
    _check_sidecar(meta, sidecar_path)
    tensor_path = sidecar_path.with_suffix(".safetensors")
    try:
        tensors = load_file(str(tensor_path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{tensor_path}: corrupt or unreadable checkpoint tensors ({str(e).splitlines()[0]})") from None
    return tensors, meta


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_sidecar(meta: Dict[str, Any], sidecar_path: Path) -> None:
    """The types every reader of a sidecar relies on, so a hand-edited or damaged one is refused by name."""
    data = meta["data"]
    problems = []
    if not _is_int(meta["step"]) or meta["step"] < 0:
        problems.append(f"step {meta['step']!r} is not a whole number")
    if not isinstance(meta["model"], str):
        problems.append(f"model {meta['model']!r} is not a name")
    if not isinstance(meta["config"], dict):
        problems.append("config is not a mapping")
    if not isinstance(data, dict):
        problems.append("data is not a mapping")
    else:
        for key in ("channels", "size"):
            if not _is_int(data.get(key)) or data[key] < 1:
                problems.append(f"data.{key} {data.get(key)!r} is not a positive whole number")
        if not isinstance(data.get("classes", []), list):
            problems.append("data.classes is not a list")
    if problems:
        raise UserError(f"{sidecar_path}: corrupt checkpoint sidecar ({'; '.join(problems)})")


def prune(directory: Path, keep: int, protect: Optional[int] = None) -> None:
    """Keep the newest `keep` checkpoints (and `protect`, the best one); drop what killed writes left behind."""
    for partial in Path(directory).glob(".step_*.tmp"):  # only the one writing process calls this, after its write
        partial.unlink(missing_ok=True)
    found = list_checkpoints(directory)
    for step, sidecar in found[: max(0, len(found) - keep)]:
        if step == protect:
            continue
        sidecar.unlink(missing_ok=True)  # the sidecar first: a half-deleted checkpoint is never picked
        sidecar.with_suffix(".safetensors").unlink(missing_ok=True)
