"""Run a trained image-to-image model (pix2pix, cyclegan, srgan, inpaint, stargan) on images; the
`ganforge translate` command (translate/command.py) is a thin layer over `translate_files`.

Inputs may have any size and aspect ratio: the generators are fully convolutional and pad to their own
multiple, then crop back. Each output keeps its input's file name (and format). Three resolutions:

- default: the generator runs at the input's full resolution;
- ``--size S``: the input is scaled to S pixels on its long side and the output stays at that size;
- ``--full-res``: the generator runs at its training resolution (or at ``--size``), and joint bilateral
  upsampling guided by the input (Kopf et al. 2007) brings the result back to the input's resolution:
  the output's edges follow the input's, at a fraction of the cost of running the generator at full size.

StarGAN translates into target attributes: ``--attrs NAME=0|1,...`` sets the named ones (one member of an
exclusive group set to 1 clears the others; for domain folders, ``--attrs DOMAIN=1``), and every attribute not
named keeps the input's own value as read by the attribute classifier (mnist5k-attrs) or by the model's D_cls.
``--all-domains`` writes, under each input's name, one grid: the input, then its translation into every domain.

Python: ``translate_files(run, inputs, out, ...)`` and ``translate_image(generator, image, ...)``.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.errors import UserError
from ganforge.imaging.io import IMAGE_SUFFIXES, read_image
from ganforge.models.base import Capability

log = logging.getLogger("ganforge")

# The most pixels a generator runs at in one pass: its activations grow with them and must fit in memory.
# Larger inputs go through --full-res or --size.
MAX_RUN_PIXELS = 2048 * 2048


def translate_files(run: Union[str, os.PathLike], inputs: Sequence[Union[str, os.PathLike]], out: Union[str, os.PathLike], *,
                    direction: str = "a2b", size: Optional[int] = None, full_res: bool = False, mask: Optional[str] = None,
                    attrs: Optional[str] = None, all_domains: bool = False, device: str = "cpu") -> List[Path]:
    """Translate image files into `out`, each under its own name; returns the paths written. `attrs`
    ("red=1,thick=0") or `all_domains` say what an attribute model (stargan) makes of each input."""
    from ganforge import api

    if size is not None and size < 1:
        raise UserError(f"--size must be a positive number of pixels, got {size}")
    generator = api.load(run, device=device)
    model = generator.model
    if not model.translates:
        raise UserError(f"{run} holds a {model.name} model, which samples from noise: use `ganforge sample`")
    model.check_direction(direction)
    takes_mask = model.can(Capability.MASK)
    if mask is not None and not takes_mask:
        raise UserError(f"--mask is for inpaint models; {run} holds a {model.name} model")
    if takes_mask and mask is None:
        raise UserError("inpaint needs --mask: a mask image (white = fill in) or 'center'")
    settings, domains = _attribute_targets(model, run, attrs, all_domains)
    jobs = _jobs(inputs, Path(out))
    written = []
    for source, target in jobs:
        image = read_image(source)
        hole = None if mask is None else _read_mask(mask, source, image.shape[:2])
        options = dict(direction=direction, size=size, full_res=full_res, mask=hole, name=str(source))
        if domains is None:
            result = translate_image(generator, image, attrs=settings, **options)
        else:
            result = _domain_grid(image, [translate_image(generator, image, attrs=domain, **options) for domain in domains])
        written.append(_save(result, target))
    return written


def _attribute_targets(model, run, attrs: Optional[str], all_domains: bool):
    """(settings for every input or None, the settings of every domain or None), checked before any file is read."""
    if not model.can(Capability.ATTRIBUTES):
        if attrs is not None or all_domains:
            raise UserError(f"--attrs and --all-domains are for attribute models (stargan); {run} holds a {model.name} model")
        return None, None
    if (attrs is None) == (not all_domains):
        raise UserError(f"{model.name} needs its targets: --attrs NAME=0|1,... (attributes: "
                        f"{', '.join(model.attribute_names)}) or --all-domains, one of the two")
    if attrs is not None:

        settings = parse_attrs(attrs)
        model.check_settings(settings)
        return settings, None
    vectors, names = model.all_domains()
    log.info("each grid: input | %s", " | ".join(names))
    return None, [dict(zip(model.attribute_names, (int(v) for v in vector))) for vector in vectors.tolist()]


def _domain_grid(image: np.ndarray, outputs: List[np.ndarray]) -> np.ndarray:
    """The input uint8 (H, W, C) and its translations (h, w, C') side by side, as one uint8 image; the input is
    shown at the outputs' size and channels."""
    from ganforge.imaging.grid import make_grid
    from ganforge.imaging.transforms import match_channels

    cells = torch.from_numpy(np.stack(outputs)).permute(0, 3, 1, 2)  # (M, C', h, w)
    first = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None]
    if first.shape[-2:] != cells.shape[-2:]:
        first = F.interpolate(first.float(), size=cells.shape[-2:], mode="bilinear", antialias=True,
                              align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
    first = match_channels(first, cells.shape[1])
    return make_grid(torch.cat([first, cells]), nrow=len(outputs) + 1).permute(1, 2, 0).numpy()


def _jobs(inputs: Sequence, out: Path) -> List[tuple]:
    """(input file, output file) for every input; a folder contributes its images with their relative paths."""
    jobs, seen = [], {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise UserError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            jobs += [(f, out / f.relative_to(path)) for f in files]
        elif path.exists():
            jobs.append((path, out / path.name))
        else:
            raise UserError(f"no such input file or folder: {path}")
    for source, target in jobs:
        key = target.resolve()
        if key == source.resolve():
            raise UserError(f"--out {out} would overwrite the input {source}: choose another output folder")
        if key in seen:
            raise UserError(f"two inputs would both be written to {target} ({seen[key]} and {source}): translate them separately")
        seen[key] = source
    return jobs


def _read_mask(mask: str, source: Path, shape) -> np.ndarray:
    """bool (H, W): True where the image is to be filled in."""
    h, w = shape
    if mask == "center":  # a centred rectangle of half the image's sides
        hole = np.zeros((h, w), dtype=bool)
        hole[h // 4 : h // 4 + max(1, h // 2), w // 4 : w // 4 + max(1, w // 2)] = True
        return hole
    array = read_image(mask, alpha=True)  # transparent is no hole, whatever colour it stores
    if array.shape[:2] != (h, w):
        raise UserError(f"--mask {mask} is {array.shape[1]} x {array.shape[0]} px but {source} is {w} x {h}: they must match")
    return (array[..., :3].mean(axis=2) > 127) & (array[..., 3] > 127)


@torch.no_grad()
def translate_image(generator, image: np.ndarray, *, direction: str = "a2b", size: Optional[int] = None, full_res: bool = False,
                    mask: Optional[np.ndarray] = None, attrs: Optional[Dict[str, int]] = None,
                    name: str = "the input") -> np.ndarray:
    """One image uint8 (H, W, C) through a loaded model (``ganforge.load``) -> uint8 (H', W', C'). `attrs`: an
    attribute model's targets {name: 0 or 1}, the rest kept as the model reads them in the image."""
    model = generator.model
    wanted = model.input_channels(direction)
    channels = image.shape[2]
    if channels == 1 and wanted == 3:
        raise UserError(f"{name} is a grey image but this {model.name} model translates colour images ({direction}): "
                        "give it an RGB image")
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].to(generator.device)
    x = x.float().div_(127.5).sub_(1.0)  # (1, C, H, W) in [-1, 1]
    if channels == 3 and wanted == 1:  # a colour input to a grey model: its luma is all the model can use
        from ganforge.imaging.transforms import match_channels

        x = match_channels(x, 1)
    h, w = x.shape[-2:]
    hole = None if mask is None else torch.from_numpy(mask)[None, None].to(generator.device)
    if full_res and model.scale != 1:
        raise UserError("--full-res is for translation; super-resolution already outputs its scale times the input")
    run_side = size or (model.size if full_res else None)
    small = x if run_side is None or run_side >= max(h, w) else _resize_long_side(x, run_side)
    run_pixels = small.shape[-2] * small.shape[-1] * model.scale ** 2
    if run_pixels > MAX_RUN_PIXELS:
        raise UserError(f"{name} is {w} x {h} px: running the generator at {run_pixels / 1e6:.1f} MP is over the limit of "
                        f"{MAX_RUN_PIXELS / 1e6:.1f} MP; use --full-res or --size")
    source = small
    if hole is not None:
        from ganforge.models.inpaint import masked_input

        small_hole = hole if small.shape[-2:] == (h, w) else F.interpolate(hole.float(), size=small.shape[-2:], mode="nearest") > 0.5
        source = masked_input(small, small_hole)
    if attrs is not None:
        out = model.translate(source, direction, target=model.target_for(source, attrs))  # (1, C', h', w') in [-1, 1]
    else:
        out = model.translate(source, direction)
    if full_res and out.shape[-2:] != (h, w):
        out = upsample_guided(out, x, small)
        if hole is not None:  # only the hole is invented; every known pixel keeps the input's full-resolution value
            out = torch.where(hole, out, x)
    out = (out.clamp(-1, 1) * 127.5 + 128).clamp_(0, 255).to(torch.uint8)
    return out[0].permute(1, 2, 0).cpu().numpy()


def upsample_guided(output: torch.Tensor, full_input: torch.Tensor, low_input: torch.Tensor) -> torch.Tensor:
    """--full-res: a low-resolution output (N, C, h, w) -> the resolution of `full_input` (N, C', H, W) by
    joint bilateral upsampling guided by the input, seen at both resolutions (`low_input` (N, C', h, w) is
    what the generator ran on). All in [-1, 1]; the grid works in [0, 1], the units of its default sigma_r."""
    from ganforge.imaging.bilateral import joint_bilateral_upsample

    return joint_bilateral_upsample((output + 1) / 2, (full_input + 1) / 2, low_res_guide=(low_input + 1) / 2) * 2 - 1


def _resize_long_side(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    scale = side / max(h, w)
    target = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=True)


def _save(array: np.ndarray, path: Path) -> Path:
    """Write uint8 (H, W, C) in the format the file name says (PNG, JPEG at quality 95, ...), atomically."""
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": 95} if fmt == "JPEG" else {}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            try:
                picture.save(stream, format=fmt, **options)
            except (OSError, ValueError, KeyError):  # a format that cannot hold this mode: its closest one
                stream.seek(0)
                stream.truncate()
                picture.convert("RGB").save(stream, format=fmt, **options)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def parse_attrs(text: str) -> Dict[str, int]:
    """'red=1,thick=0' -> {"red": 1, "thick": 0}; names are checked against a model by `check_settings`."""
    settings: Dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or value not in ("0", "1"):
            raise UserError(f"--attrs expects NAME=0 or NAME=1 pairs separated by commas (red=1,thick=0), got '{item.strip()}'")
        if name in settings:
            raise UserError(f"--attrs names '{name}' twice")
        settings[name] = int(value)
    return settings
