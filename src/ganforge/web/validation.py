"""What the page sends, checked before a model sees it: numbers in range, JSON bodies, uploaded images.

Every refusal is an HTTPError with a status and one line the page shows as it is.
"""
from __future__ import annotations

import io
import json
import math
from typing import Dict

import numpy as np
from PIL import Image


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def integer(value, name: str, low: int, high: int) -> int:
    try:
        number_ = int(value)
        if isinstance(value, float) and value != number_:
            raise ValueError
    except (TypeError, ValueError):
        raise HTTPError(400, f"{name} must be a whole number, got {value!r}") from None
    if not low <= number_ <= high:
        raise HTTPError(400, f"{name} must be between {low} and {high}, got {number_}")
    return number_


def number(value, name: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise HTTPError(400, f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and low <= x <= high):
        raise HTTPError(400, f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return x


def json_body(body: bytes) -> Dict:
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "the request body is not JSON") from None
    if not isinstance(params, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return params


def check_pixels(body: bytes, name: str, max_pixels: int) -> None:
    """Refuse a huge image from its header alone; read_image then decodes (and judges) the rest."""
    from ganforge.imaging.io import ImageError

    try:
        with Image.open(io.BytesIO(body)) as probe:
            width, height = probe.size
    except Exception:  # noqa: BLE001 - not parseable here: read_image reports why, in its words
        return
    if width * height > max_pixels:
        raise ImageError(name, f"{width} x {height} = {width * height:,} pixels is over this page's limit of "
                               f"{max_pixels:,}; resize it first")


def decode_upload(body: bytes, name: str, max_pixels: int) -> np.ndarray:
    """An uploaded image file -> uint8 (H, W, C), refused when empty, too large or not an image."""
    from ganforge.imaging.io import read_image

    if not body:
        raise HTTPError(400, "no image received: choose an image file to upload")
    check_pixels(body, name, max_pixels)
    return read_image(body, name=name)
