"""Reading and writing image files.

``read_image`` turns any file a user is likely to have (grey, RGB, palette, alpha, 16-bit, CMYK, rotated
phone photos) into uint8 (H, W, C) with C in {1, 3}, transparency composited on white (the background icons
and emoji are drawn on), or into straight-alpha RGBA (C = 4) when asked; it turns every way a file can be bad
into one ``ImageError`` that names the file. ``write_png`` writes atomically, so an interrupted run never leaves
a half-written sample behind.
"""
from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganforge.errors import UserError

# A 64-megapixel photo decodes to ~200 MB of RGB: the most one image may cost before we refuse it.
MAX_PIXELS = 64_000_000

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)

# What Pillow raises on damaged data, depending on the format and where the damage is.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, ZeroDivisionError)


class ImageError(UserError):
    """A file that cannot be read as an image; ``name`` is the file, ``reason`` the problem."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"cannot read image {name}: {reason}")
        self.name = name
        self.reason = reason


def max_pixels() -> int:
    """The per-image pixel limit: ``MAX_PIXELS`` unless the environment variable GANFORGE_MAX_PIXELS sets one."""
    value = os.environ.get("GANFORGE_MAX_PIXELS")
    if value is None:
        return MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UserError(f"GANFORGE_MAX_PIXELS must be a positive whole number of pixels, got {value!r}")
    return limit


def read_image(source: Union[str, os.PathLike, bytes], *, name: Optional[str] = None,
               alpha: bool = False) -> np.ndarray:
    """Decode a file (path) or its contents (bytes) to uint8 (H, W, C), C = 1 for grey, 3 for colour, any
    transparency composited on white; with ``alpha``, to (H, W, 4) straight-alpha RGBA whatever the file holds
    (grey becomes RGB, and an image without alpha is opaque).

    The image size is checked against ``max_pixels()`` from the header, before any pixel is decoded.
    Pillow's own guard (twice ``PIL.Image.MAX_IMAGE_PIXELS``, ~179 million) still applies above that.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "<image bytes>"
        if len(source) == 0:
            raise ImageError(name, "the file is empty (0 bytes)")
        return _decode(io.BytesIO(source), name, alpha)
    path = Path(source)
    name = name or str(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ImageError(name, "it is a folder, not a file")
        if not stat.S_ISREG(mode):  # opening a named pipe would wait forever for a writer
            raise ImageError(name, "not a regular file (a pipe, socket or device)")
        with open(path, "rb") as stream:
            if os.fstat(stream.fileno()).st_size == 0:
                raise ImageError(name, "the file is empty (0 bytes)")
            return _decode(stream, name, alpha)
    except FileNotFoundError:
        raise ImageError(name, "no such file (or a broken link)") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except ImageError:
        raise
    except OSError as e:
        raise ImageError(name, e.strerror or str(e)) from None


def _decode(stream, name: str, alpha: bool) -> np.ndarray:
    try:
        image = Image.open(stream)
    except UnidentifiedImageError:
        stream.seek(0)
        head = stream.read(12)
        claimed = _format_from_signature(head)
        if claimed:
            raise ImageError(name, f"corrupt or truncated {claimed} file (its header cannot be parsed)") from None
        raise ImageError(name, f"not an image in any known format (it starts with {head[:8]!r})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(name, f"refusing a possible decompression bomb ({e})") from None
    except _DECODE_ERRORS as e:
        stream.seek(0)
        claimed = _format_from_signature(stream.read(12)) or "image"
        raise ImageError(name, f"corrupt or truncated {claimed} header ({e})") from None
    with image:
        width, height = image.size
        limit = max_pixels()
        if width * height > limit:
            raise ImageError(
                name,
                f"{width} x {height} = {width * height:,} pixels is over the limit of {limit:,} "
                "(a decompression bomb or a huge scan; set GANFORGE_MAX_PIXELS to allow it)",
            )
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            array = _to_array(image, alpha)
            return _as_rgba(array) if alpha else array
        except Image.DecompressionBombError as e:
            raise ImageError(name, f"refusing a possible decompression bomb ({e})") from None
        except _DECODE_ERRORS as e:
            raise ImageError(name, f"corrupt or truncated {image.format or 'image'} data ({e})") from None


def _format_from_signature(head: bytes) -> Optional[str]:
    """The format a file's first bytes announce, to tell a damaged image from a file that is no image."""
    signatures = {
        b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
        b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
    }
    for signature, claimed in signatures.items():
        if head.startswith(signature):
            return claimed
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _to_array(image: Image.Image, alpha: bool = False) -> np.ndarray:
    """Any Pillow mode -> uint8 (H, W, 1) or (H, W, 3); with ``alpha``, images that carry transparency come
    back as straight-alpha (H, W, 2) or (H, W, 4), the others as above."""
    mode = image.mode
    if mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
        if _is_grey(image):
            image = image.convert("LA" if has_alpha else "L")
            mode = image.mode
    elif mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        mode, image = "L", image.convert("L")
    if mode in ("L", "RGB"):
        array = np.asarray(image, dtype=np.uint8)
    elif mode in ("LA", "La", "RGBA", "RGBa"):
        if mode in ("La", "RGBa"):  # premultiplied storage: back to straight alpha
            image = image.convert("LA" if mode == "La" else "RGBA")
        array = np.asarray(image, dtype=np.uint8)
        if not alpha:
            array = on_white(array)
    elif mode.startswith("I;16") or mode == "I":
        # 16-bit samples (0..65535) to 8 bits with rounding: v / 257 maps 65535 exactly to 255.
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        array = ((values + 128) // 257).astype(np.uint8)
    elif mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.max() <= 1.0:  # floating-point images usually hold [0, 1]
            values = values * 255.0
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    else:  # CMYK, YCbCr, LAB, HSV, RGBX: Pillow knows the conversion to RGB
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def on_white(array: np.ndarray) -> np.ndarray:
    """uint8 (..., C + 1) straight alpha -> uint8 (..., C): the colour composited on white, rounded."""
    colour = array[..., :-1].astype(np.uint32)
    alpha = array[..., -1:].astype(np.uint32)
    return ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _as_rgba(array: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 1 | 2 | 3 | 4) -> (H, W, 4): grey repeated to RGB, an opaque alpha where there was none."""
    height, width, channels = array.shape
    colour = array[..., : 3 if channels >= 3 else 1]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    alpha = array[..., -1:] if channels in (2, 4) else np.full((height, width, 1), 255, np.uint8)
    return np.ascontiguousarray(np.concatenate([colour, alpha], axis=2))


def _is_grey(image: Image.Image) -> bool:
    """True when a converted palette image has R == G == B everywhere (a grey palette)."""
    array = np.asarray(image)
    return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


def check_writable(path: Union[str, os.PathLike]) -> None:
    """One clear line unless a file can be written at `path`: not a folder, its folder made if missing and
    writable."""
    if Path(path).expanduser().is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    parent = Path(path).expanduser().resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write '{path}': {e.strerror or e}") from None
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write '{path}': folder not writable")


def write_png(path: Union[str, os.PathLike], image) -> Path:
    """Write uint8 (H, W, C) / (H, W) numpy, or a tensor (C, H, W) or (H, W, C), as a PNG, atomically: grey,
    RGB, or RGBA (straight alpha) for four channels.

    A float tensor is taken to be in [-1, 1], the range networks produce. Returns the path written.
    """
    array = _as_hwc_uint8(image)
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name such as {path / 'samples.png'}")
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            picture.save(stream, format="PNG")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException as e:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):  # a full disk, a folder that vanished: the user's to fix
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    return path


def _as_hwc_uint8(image) -> np.ndarray:
    import torch

    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 2:
            tensor = tensor[None]
        if tensor.dim() != 3:
            raise ValueError(f"an image tensor must be (C, H, W) or (H, W, C), got {tuple(tensor.shape)}")
        if tensor.is_floating_point():
            tensor = (tensor * 127.5 + 128).clamp_(0, 255).to(torch.uint8)
        elif tensor.dtype != torch.uint8:
            raise ValueError(f"an image tensor must be uint8 or float in [-1, 1], got {tensor.dtype}")
        # Library tensors are (C, H, W); only a trailing 1/3/4 with a leading size that is not one means HWC.
        if tensor.shape[0] in (1, 3, 4) or tensor.shape[-1] not in (1, 3, 4):
            tensor = tensor.permute(1, 2, 0)
        array = tensor.contiguous().numpy()
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.dtype != np.uint8 or array.ndim != 3:
            raise ValueError(f"an image array must be uint8 (H, W, C), got {array.dtype} {array.shape}")
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image must have 1, 3 or 4 channels, got shape {array.shape}")
    return np.ascontiguousarray(array)
