"""Image files in every mode a user may have, the bad files they will have, and the batched transforms."""
import io
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.errors import UserError
from ganforge.imaging.io import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, read_image, write_png
from ganforge.imaging.transforms import match_channels, resize_center_crop


def _digit() -> np.ndarray:
    """A real MNIST digit, (28, 28) uint8."""
    from importlib import resources

    with resources.files("ganforge.data").joinpath("assets/mnist5k.npz").open("rb") as stream:
        return np.load(stream)["images"][0]


def _colour(height=12, width=20) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# --- modes


def test_grey_and_rgb_round_trip_exactly(tmp_path):
    digit, colour = _digit(), _colour()
    Image.fromarray(digit).save(tmp_path / "g.png")
    Image.fromarray(colour).save(tmp_path / "c.png")
    Image.fromarray(colour).save(tmp_path / "c.bmp")
    assert np.array_equal(read_image(tmp_path / "g.png"), digit[:, :, None])
    assert np.array_equal(read_image(tmp_path / "c.png"), colour)
    assert np.array_equal(read_image(tmp_path / "c.bmp"), colour)
    loaded = read_image((tmp_path / "g.png").read_bytes(), name="digit")
    assert loaded.dtype == np.uint8 and loaded.shape == (28, 28, 1)


def test_palette_image_grey_palette_gives_one_channel_colour_palette_three(tmp_path):
    digit = _digit()
    grey = Image.fromarray(digit).convert("P")  # Pillow builds a palette holding the grey levels
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    grey.save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png").shape == (28, 28, 1)

    colour = _colour()
    Image.fromarray(colour).quantize(16).save(tmp_path / "colour.png")
    loaded = read_image(tmp_path / "colour.png")
    assert loaded.shape == (12, 20, 3)
    # A 16-colour palette stays close to the original.
    assert np.abs(loaded.astype(int) - colour.astype(int)).mean() < 40


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    rgba[0, 1, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[0, 1].tolist() == [227, 177, 152]  # half transparent: (200 * 128 + 255 * 127) / 255, ...
    assert out[1, 1].tolist() == [255, 255, 255]  # fully transparent: white

    la = np.stack([np.full((3, 3), 240, np.uint8), np.full((3, 3), 64, np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png")[..., 0].tolist() == [[251] * 3] * 3  # (240 * 64 + 255 * 191) / 255

    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 90, 90, 90])
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)  # index 0 (black) is transparent
    assert read_image(tmp_path / "p.png")[0, :, 0].tolist() == [255, 90]


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 8-bit 0, 1, 128, 255 exactly
    image16 = Image.fromarray(levels)
    assert image16.mode == "I;16"
    image16.save(tmp_path / "d16.png")
    assert read_image(tmp_path / "d16.png")[0, :, 0].tolist() == [0, 1, 128, 255]

    Image.fromarray(levels.astype(np.int32)).save(tmp_path / "d32.tif")  # mode "I"
    assert Image.open(tmp_path / "d32.tif").mode == "I"
    assert read_image(tmp_path / "d32.tif")[0, :, 0].tolist() == [0, 1, 128, 255]


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (5, 5), (0, 255, 255, 0)).save(tmp_path / "red.tif")
    Image.new("CMYK", (5, 5), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=95)
    for name in ("red.tif", "red.jpg"):
        out = read_image(tmp_path / name)
        assert out.shape == (5, 5, 3)
        red, green, blue = out[2, 2].astype(int)
        assert red > 240 and green < 15 and blue < 15, (name, out[2, 2])


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 30), dtype=np.uint8))  # 30 wide, 10 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape == (30, 10, 1)


def test_tiny_and_extreme_aspect_images_read(tmp_path):
    Image.fromarray(np.array([[7]], dtype=np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.full((1, 4000), 9, dtype=np.uint8)).save(tmp_path / "strip.png")
    assert read_image(tmp_path / "one.png").tolist() == [[[7]]]
    assert read_image(tmp_path / "strip.png").shape == (1, 4000, 1)


# --- bad files: each an ImageError (a UserError) naming the file and the problem


def _error(source, **kwargs) -> str:
    with pytest.raises(ImageError) as caught:
        read_image(source, **kwargs)
    assert isinstance(caught.value, UserError)
    return str(caught.value)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    message = _error(tmp_path / "empty.png")
    assert "empty.png" in message and "empty" in message.split("empty.png")[1]


def test_truncated_png_and_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_colour(64, 64)).save(buffer, "PNG")
    data = buffer.getvalue()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert "cut.png" in _error(tmp_path / "cut.png") and "truncated" in _error(tmp_path / "cut.png")
    (tmp_path / "header.png").write_bytes(data[:20])  # inside the IHDR chunk
    assert "truncated PNG" in _error(tmp_path / "header.png")

    buffer = io.BytesIO()
    Image.fromarray(_colour(64, 64)).save(buffer, "JPEG")
    data = buffer.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    message = _error(tmp_path / "cut.jpg")
    assert "cut.jpg" in message and "truncated" in message


def test_text_with_an_image_extension(tmp_path):
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n")
    message = _error(tmp_path / "notes.png")
    assert "notes.png" in message and "not an image" in message


def test_corrupt_pixel_data(tmp_path):
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    garbage = _png_chunk(b"IDAT", b"this is not zlib data at all")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + garbage + _png_chunk(b"IEND", b""))
    message = _error(tmp_path / "bad.png")
    assert "bad.png" in message and "corrupt" in message


def test_decompression_bomb_refused_from_the_header(tmp_path):
    # A 100000 x 100000 PNG header with a valid CRC and no pixel data: decoding it would need 10 GB.
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IEND", b""))
    message = _error(tmp_path / "bomb.png")
    assert "bomb.png" in message and "bomb" in message.split("bomb.png")[1]


def test_pixel_limit_is_ours_and_overridable(tmp_path, monkeypatch):
    assert MAX_PIXELS == 64_000_000
    Image.fromarray(_colour(100, 100)).save(tmp_path / "big.png")
    monkeypatch.setenv("GANFORGE_MAX_PIXELS", "9999")
    message = _error(tmp_path / "big.png")
    assert "100 x 100" in message and "GANFORGE_MAX_PIXELS" in message
    monkeypatch.setenv("GANFORGE_MAX_PIXELS", "10000")
    assert read_image(tmp_path / "big.png").shape == (100, 100, 3)
    monkeypatch.setenv("GANFORGE_MAX_PIXELS", "lots")
    with pytest.raises(UserError, match="GANFORGE_MAX_PIXELS"):
        read_image(tmp_path / "big.png")


def test_unreadable_paths(tmp_path):
    (tmp_path / "folder.png").mkdir()
    message = _error(tmp_path / "folder.png")
    assert "folder.png" in message and "folder" in message.split("folder.png")[1]
    message = _error(tmp_path / "missing.png")
    assert "missing.png" in message and "no such file" in message
    assert "<image bytes>" in _error(b"")
    os.mkfifo(tmp_path / "pipe.png")  # reading it would block forever
    assert "not a regular file" in _error(tmp_path / "pipe.png")


# --- writing


def test_write_png_numpy_and_tensors_round_trip(tmp_path):
    colour = _colour()
    write_png(tmp_path / "hwc.png", colour)
    assert np.array_equal(read_image(tmp_path / "hwc.png"), colour)

    chw = torch.from_numpy(colour).permute(2, 0, 1)
    write_png(tmp_path / "chw.png", chw)
    write_png(tmp_path / "hwc_tensor.png", chw.permute(1, 2, 0))
    assert np.array_equal(read_image(tmp_path / "chw.png"), colour)
    assert np.array_equal(read_image(tmp_path / "hwc_tensor.png"), colour)

    grey = torch.tensor([[[-1.0, 0.0, 1.0]]])  # (1, 1, 3) float in [-1, 1]
    write_png(tmp_path / "grey.png", grey)
    assert read_image(tmp_path / "grey.png")[0, :, 0].tolist() == [0, 128, 255]


def test_write_png_is_atomic_and_leaves_no_temp_files(tmp_path):
    write_png(tmp_path / "out" / "x.png", _colour())
    write_png(tmp_path / "out" / "x.png", _colour(5, 5))  # replaces the old file
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]
    assert read_image(tmp_path / "out" / "x.png").shape == (5, 5, 3)
    with pytest.raises(ValueError):
        write_png(tmp_path / "out" / "y.png", np.zeros((4, 4, 3), dtype=np.float32))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]


def test_write_png_where_no_file_can_go_is_a_user_error(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(UserError, match="folder.png: it is a folder"):
        write_png(tmp_path / "folder.png", _colour())
    (tmp_path / "file").write_text("a file where a folder would have to be")
    with pytest.raises(UserError, match="cannot write .*file/x.png"):
        write_png(tmp_path / "file" / "x.png", _colour())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"] and not any((tmp_path / "folder.png").iterdir())


def test_suffixes_cover_the_common_formats():
    assert {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif"} <= IMAGE_SUFFIXES


# --- transforms


def test_resize_center_crop_keeps_dtype_range_and_centre():
    images = torch.zeros(2, 1, 40, 80, dtype=torch.uint8)
    images[:, :, :, 20:60] = 255  # the centre 40 x 40 square is white, the sides black
    out = resize_center_crop(images, 20)
    assert out.dtype == torch.uint8 and out.shape == (2, 1, 20, 20)
    assert (out == 255).all()  # the crop keeps the centre only

    floats = images.float() / 127.5 - 1
    out = resize_center_crop(floats, 10)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 10, 10)
    assert torch.allclose(out, torch.ones_like(out))


def test_resize_is_antialiased():
    # A one-pixel checkerboard shrunk by 4 must become flat grey; nearest or plain bilinear would alias.
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 255).to(torch.uint8)
    out = resize_center_crop(checker[None, None], 16)
    assert (out.float() - 127.5).abs().max() <= 1


def test_resize_extreme_aspect_strip():
    strip = torch.full((1, 3, 1, 4000), 77, dtype=torch.uint8)
    out = resize_center_crop(strip, 28)
    assert out.shape == (1, 3, 28, 28) and (out == 77).all()


def test_match_channels_luma_and_repeat():
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert match_channels(rgb, 1).item() == 76  # 0.299 * 255, as Pillow's convert("L")
    expected = np.asarray(Image.fromarray(_colour()).convert("L"))
    ours = match_channels(torch.from_numpy(_colour()).permute(2, 0, 1)[None], 1)[0, 0].numpy()
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1
    grey = torch.arange(6, dtype=torch.uint8).view(1, 1, 2, 3)
    assert torch.equal(match_channels(grey, 3), grey.expand(1, 3, 2, 3))
