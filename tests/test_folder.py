"""Image folders and zips: class labels from sub-folders, mixed sizes and modes, bad files skipped and counted."""
import io
import logging
import os
import zipfile
from importlib import resources

import numpy as np
import pytest
from PIL import Image

from ganforge.data.folder import load_images
from ganforge.errors import UserError


@pytest.fixture(scope="module")
def mnist():
    with resources.files("ganforge.data").joinpath("assets/mnist5k.npz").open("rb") as stream:
        data = np.load(stream)
        return data["images"], data["labels"]


def _png_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _class_tree(root, mnist, per_class=3):
    """root/<digit>/<n>.png for digits 0..2, real MNIST images; returns {(digit, n): array}."""
    images, labels = mnist
    written = {}
    for digit in (0, 1, 2):
        (root / str(digit)).mkdir(parents=True)
        for n, index in enumerate(np.flatnonzero(labels == digit)[:per_class]):
            Image.fromarray(images[index]).save(root / str(digit) / f"{n}.png")
            written[(digit, n)] = images[index]
    return written


def test_class_folders_give_sorted_labels_and_exact_pixels(tmp_path, mnist):
    written = _class_tree(tmp_path / "digits", mnist)
    data = load_images(tmp_path / "digits")
    assert data.classes == ["0", "1", "2"]
    assert data.images.shape == (9, 1, 28, 28) and data.images.dtype.is_floating_point is False
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.skipped == 0 and data.name == "digits"
    # Sorted path order: label d, file n sits at index 3 d + n, pixel for pixel.
    for (digit, n), array in written.items():
        assert np.array_equal(data.images[3 * digit + n, 0].numpy(), array)


def test_flat_folder_is_unlabelled_and_nested_files_are_found(tmp_path, mnist):
    images, _ = mnist
    (tmp_path / "flat" / "deeper").mkdir(parents=True)
    Image.fromarray(images[0]).save(tmp_path / "flat" / "a.png")
    Image.fromarray(images[1]).save(tmp_path / "flat" / "deeper" / "b.png")
    data = load_images(tmp_path / "flat")
    assert data.labels is None and data.classes == [] and len(data) == 2


def test_single_wrapping_folder_is_not_a_class(tmp_path, mnist):
    images, _ = mnist
    (tmp_path / "set" / "only").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(images[i]).save(tmp_path / "set" / "only" / f"{i}.png")
    assert load_images(tmp_path / "set").labels is None


def test_zip_matches_the_folder_it_was_made_from(tmp_path, mnist):
    _class_tree(tmp_path / "digits", mnist)
    archive = tmp_path / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((tmp_path / "digits").rglob("*.png")):
            zipped.write(path, path.relative_to(tmp_path / "digits").as_posix())
        zipped.writestr("__MACOSX/0/._0.png", b"resource fork junk")
        zipped.writestr("2/.hidden.png", b"not read")
    from_folder, from_zip = load_images(tmp_path / "digits"), load_images(archive)
    assert from_zip.classes == from_folder.classes
    assert from_zip.labels.tolist() == from_folder.labels.tolist()
    assert np.array_equal(from_zip.images.numpy(), from_folder.images.numpy())
    assert from_zip.skipped == 0 and from_zip.name == "digits"


def test_mixed_sizes_and_modes_become_one_size_and_colour(tmp_path, mnist):
    images, _ = mnist
    root = tmp_path / "mixed"
    root.mkdir()
    Image.fromarray(images[0]).save(root / "a_grey28.png")  # first in sorted order: sets size 28
    Image.fromarray(np.full((56, 112, 3), (255, 0, 0), np.uint8)).save(root / "b_red_wide.png")
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(root / "c_green_alpha.png")
    Image.fromarray(np.full((1, 4000), 200, np.uint8)).save(root / "d_strip.png")
    data = load_images(root)
    assert data.images.shape == (4, 3, 28, 28)  # colour because one image is colour
    assert np.array_equal(data.images[0, 0].numpy(), images[0]) and np.array_equal(data.images[0, 2].numpy(), images[0])
    assert data.images[1, :, 14, 14].tolist() == [255, 0, 0]
    assert data.images[2, :, 14, 14].tolist() == [0, 255, 0]
    assert (data.images[3] == 200).all()

    grey = load_images(root, size=16, channels=1)
    assert grey.images.shape == (4, 1, 16, 16)
    assert grey.images[1, 0, 8, 8].item() == 76  # red as BT.601 luma


def test_bad_files_are_skipped_counted_and_reported_once(tmp_path, mnist, caplog):
    images, _ = mnist
    root = tmp_path / "messy"
    root.mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(root / f"good{i}.png")
    (root / "a_empty.png").write_bytes(b"")
    (root / "b_text.jpg").write_text("not a picture")
    os.symlink(root / "gone.png", root / "c_broken_link.png")  # unreadable whoever runs the test
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "notes.txt").write_text("ignored: not an image extension")
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        data = load_images(root)
    assert len(data) == 3 and data.skipped == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "ganforge"]
    assert len(warnings) == 1
    assert "skipped 3 unreadable files" in warnings[0] and str(root) in warnings[0]
    assert "first: a_empty.png: the file is empty" in warnings[0]


def test_symlink_loop_does_not_hang(tmp_path, mnist):
    images, _ = mnist
    root = tmp_path / "looped"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(images[0]).save(root / "sub" / "x.png")
    os.symlink(root, root / "sub" / "back_to_top")
    os.symlink(root / "sub", root / "sub" / "self")
    data = load_images(root)
    assert len(data) == 1


def test_user_mistakes_name_the_path(tmp_path, mnist):
    with pytest.raises(UserError, match="no such file or folder: .*nowhere"):
        load_images(tmp_path / "nowhere")
    (tmp_path / "labels.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="labels.csv is a file"):
        load_images(tmp_path / "labels.csv")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="no image files in .*empty"):
        load_images(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="no readable images in .*broken.*x.png"):
        load_images(tmp_path / "broken")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(UserError, match="fake.zip is not a readable zip file"):
        load_images(tmp_path / "fake.zip")
    Image.fromarray(mnist[0][0]).save(tmp_path / "one.png")
    with pytest.raises(UserError, match="one.png is a single image: a dataset is the folder"):
        load_images(tmp_path / "one.png")


def test_a_zip_cut_short_is_named_as_a_damaged_zip(tmp_path, mnist):
    archive = tmp_path / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(3):
            zipped.writestr(f"{i}.png", _png_bytes(mnist[0][i]))
    cut = tmp_path / "download"  # no .zip suffix: known by its signature
    cut.write_bytes(archive.read_bytes()[:-40])  # the central directory is at the end
    with pytest.raises(UserError, match="download is not a readable zip file"):
        load_images(cut)


def test_default_size_is_the_most_common_short_side(tmp_path, mnist):
    root = tmp_path / "set"
    root.mkdir()
    Image.fromarray(np.full((1, 1), 7, np.uint8)).save(root / "0_dot.png")  # first in sorted order
    Image.fromarray(np.full((1, 4000), 9, np.uint8)).save(root / "1_strip.png")
    for i in range(3):
        Image.fromarray(mnist[0][i]).save(root / f"digit{i}.png")
    data = load_images(root)
    assert data.images.shape == (5, 1, 28, 28)
    assert np.array_equal(data.images[2, 0].numpy(), mnist[0][0])  # the common size: no resampling
