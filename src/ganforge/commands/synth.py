"""`ganforge synth RUN --n N --out DIR`: a labelled data set drawn from a class-conditional model.

DIR/CLASSNAME/000123.png (one sub-folder per class, the number the image's row in data.npz) and DIR/data.npz
(images uint8 (N, H, W, C) at the data's native size, labels int64, classes), both readable back as `--data`;
DIR/synth.json records the model, its resolved config, the checkpoint and its step, the seed and the command.
Classes get N // K images each and the first N % K classes (by label) one more. synth.json is written first and
data.npz last, so a folder without data.npz is an unfinished set that `--force` may replace.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch

from ganforge.config import MAX_SEED
from ganforge.errors import UserError

RECORD, ARRAYS = "synth.json", "data.npz"
DEFAULT_BATCH = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("A labelled data set from a class-conditional model (cgan, acgan): one sub-folder of PNGs "
                          "per class, data.npz and synth.json, balanced over the classes.")
    parser.add_argument("run", help="a run folder or a checkpoint file of a class-conditional model")
    parser.add_argument("--n", type=int, required=True, help="images in all; the first N %% K classes get one more")
    parser.add_argument("--out", required=True, help="the folder to write (new or empty; see --force)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="images drawn at a time (the same seed and "
                        "batch give the same images)")
    parser.add_argument("--force", action="store_true", help="replace the data set an earlier synth wrote in --out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    record = synthesize(args.run, args.n, args.out, seed=args.seed, batch=args.batch, force=args.force,
                        device=args.device, progress=not args.quiet)
    counts = ", ".join(f"{name}: {count}" for name, count in zip(record["classes"], record["per_class"]))
    print(f"{record['n']} images of {len(record['classes'])} classes ({counts}) -> {args.out}/CLASS/*.png, "
          f"{Path(args.out) / ARRAYS}, {Path(args.out) / RECORD}")
    return 0


def per_class(n: int, classes: int) -> List[int]:
    """n split over the classes: n // K each, and one more for each of the first n % K."""
    return [n // classes + (c < n % classes) for c in range(classes)]


def command_line(run: str, n: int, out: str, seed: int, batch: int) -> str:
    """The command that writes this set again (progress, --force and --device do not change it)."""
    return shlex.join(["ganforge", "synth", str(run), "--n", str(n), "--out", str(out), "--seed", str(seed),
                       "--batch", str(batch)])


def synthesize(run: Union[str, Path], n: int, out: Union[str, Path], *, seed: int = 0, batch: int = DEFAULT_BATCH,
               force: bool = False, device: str = "cpu", progress: bool = False) -> Dict:
    """Write the data set (see the module's docstring) and return what synth.json records."""
    from tqdm import tqdm

    from ganforge import api
    from ganforge.imaging.io import write_png
    from ganforge.version import __version__

    if not 1 <= n <= api.MAX_SAMPLES:
        raise UserError(f"--n must be between 1 and {api.MAX_SAMPLES:,}, got {n}")
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    if batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}")
    out = Path(out).expanduser()
    _check_out(out, force)
    generator = api.load(run, device=device)
    if not generator.model.conditional:
        from ganforge.data.catalogue import Kind
        from ganforge.models import MODELS

        conditional = ", ".join(name for name, cls in MODELS.items() if cls.needs == Kind.LABELS)
        raise UserError(f"synth needs a class-conditional model ({conditional}); {run} holds a {generator.meta['model']}")
    classes = generator.classes
    bad = next((name for name in classes if not _plain_folder_name(name)), None)
    if bad is not None:
        raise UserError(f"class '{bad}' of {run} cannot name a folder: synth writes one sub-folder per class")
    counts = per_class(n, len(classes))
    labels = torch.repeat_interleave(torch.arange(len(classes)), torch.tensor(counts))  # class by class, row order
    record = {
        "model": generator.meta["model"],
        "checkpoint": _checkpoint_of(run),
        "step": generator.step,
        "seed": seed,
        "batch": batch,
        "n": n,
        "classes": classes,
        "per_class": counts,
        "native_size": generator.info.get("native_size"),
        "command": command_line(str(run), n, str(out), seed, batch),
        "ganforge_version": __version__,
        "config": generator.cfg.to_dict(),
    }
    _forget_earlier(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    # one noise stream drawn batch by batch: the same images as Generator.sample(n, labels, seed, batch)
    stream = torch.Generator(device=generator.device).manual_seed(seed)
    rows: List[np.ndarray] = []
    with tqdm(total=n, disable=not progress, desc="synth", unit="img", dynamic_ncols=True) as bar:
        for start in range(0, n, batch):
            chunk = labels[start : start + batch]
            images = generator.model.sample(len(chunk), chunk.to(generator.device), generator=stream).cpu()
            native = generator.to_native_uint8(images).numpy()  # (B, H, W, C)
            for offset, (image, label) in enumerate(zip(native, chunk.tolist())):
                write_png(out / classes[label] / f"{start + offset:06d}.png", image)
            rows.append(native)
            bar.update(len(chunk))
    np.savez_compressed(out / ARRAYS, images=np.concatenate(rows), labels=labels.numpy().astype(np.int64),
                        classes=np.array(classes, dtype=str))
    return record


def _checkpoint_of(run: Union[str, Path]) -> str:
    """The checkpoint file a run folder stands for (its latest); a file or a pretrained name as given."""
    from ganforge.training import checkpoint

    if Path(run).expanduser().is_dir():
        return str(checkpoint.resolve(str(run)).with_suffix(".safetensors"))
    return str(run)


def _plain_folder_name(name: str) -> bool:
    """A name the folder reader takes as one first-level sub-folder: not hidden, no separator, not ours."""
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name and name not in (RECORD, ARRAYS)


def _check_out(out: Path, force: bool) -> None:
    """One line unless `out` is new, empty, or (with force) holds only an earlier synth's data set."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    if not force:
        raise UserError(f"--out {out} is not empty: add --force to replace the data set synth wrote there, or choose a new folder")
    ours = _earlier_names(out)
    others = [name for name in entries if name not in ours and not name.startswith(".")]
    if ours is None or others:
        stray = others[0] if others else entries[0]
        raise UserError(f"--out {out} holds '{stray}', which synth did not write: --force replaces only an earlier "
                        f"synth's data set; choose a new or empty folder")


def _earlier_names(out: Path) -> Optional[set]:
    """The names an earlier synth wrote in `out` (its class folders and files), or None if none did."""
    try:
        classes = json.loads((out / RECORD).read_text())["classes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(classes, list) or not all(isinstance(c, str) and _plain_folder_name(c) for c in classes):
        return None
    return {RECORD, ARRAYS, *classes}


def _forget_earlier(out: Path) -> None:
    """Remove an earlier synth's data set (checked by _check_out), so no stale image is read back with the new."""
    for name in _earlier_names(out) or ():
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
