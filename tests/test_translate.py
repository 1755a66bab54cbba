"""`ganforge translate`: any size and aspect, names and formats kept, --size, --full-res, directions, masks,
and one clear line for every bad input. Runs on tiny models trained for two steps on the derived tasks."""

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import translate as translate_mod
from ganforge.cli import main
from ganforge.data.base import to_float, to_uint8
from ganforge.data.mnist5k import mnist5k
from ganforge.imaging.similarity import psnr

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]
DIGIT = mnist5k("test").images[0, 0].numpy()  # a real 28 x 28 digit


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    tiny = {"pix2pix": ["width=4"], "inpaint": ["width=4"], "cyclegan": ["width=4", "n_blocks=1"],
            "srgan": ["width=4", "n_blocks=1"], "dcgan": ["width=8"]}
    for model, sets in tiny.items():
        ganforge.train(model, out=str(root / model), steps=2, batch_size=4, set=[*FAST, *sets], progress=False)
    return root


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _translate(*args):
    return main(["translate", *map(str, args)])


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_any_size_keeps_names_formats_and_the_models_values(runs, tmp_path):
    inputs = [_save(tmp_path / "in" / "digit.png", DIGIT),
              _save(tmp_path / "in" / "wide.jpg", np.tile(DIGIT, (1, 3))[:, :83]),
              _save(tmp_path / "in" / "tall.bmp", np.tile(DIGIT, (2, 1))[:53, :19])]
    assert _translate(runs / "pix2pix", *inputs, "--out", tmp_path / "out") == 0
    for source in inputs:
        out = Image.open(tmp_path / "out" / source.name)
        assert out.size == Image.open(source).size and out.format == Image.open(source).format
    g = ganforge.load(runs / "pix2pix")
    with torch.no_grad():
        expected = to_uint8(g.model.translate(to_float(torch.from_numpy(DIGIT)[None, None])))[0, 0].numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "digit.png")), expected)


def test_folders_keep_their_tree_and_colour_goes_to_a_grey_model(runs, tmp_path):
    _save(tmp_path / "in" / "a.png", DIGIT)
    _save(tmp_path / "in" / "sub" / "b.png", np.stack([DIGIT, DIGIT // 2, DIGIT], axis=-1))
    assert _translate(runs / "pix2pix", tmp_path / "in", "--out", tmp_path / "out") == 0
    assert Image.open(tmp_path / "out" / "a.png").mode == "L" and Image.open(tmp_path / "out" / "sub" / "b.png").mode == "L"


def test_size_runs_the_generator_at_the_long_side(runs, tmp_path):
    source = _save(tmp_path / "p.png", np.tile(DIGIT, (2, 3)))  # 56 x 84
    assert _translate(runs / "cyclegan", source, "--out", tmp_path / "out", "--size", 42) == 0
    out = Image.open(tmp_path / "out" / "p.png")
    assert out.size == (42, 28) and out.mode == "RGB"


def _psnr(a, b) -> float:
    return float(psnr(a.reshape(1, -1), b.reshape(1, -1), peak=2.0))


def test_full_res_upsampling_puts_edges_where_the_input_has_them():
    """A translation that is a function of each pixel (here grey -> a colour ramp), computed at low resolution
    and brought back by --full-res's upsampling, must match that function applied at full resolution, far
    better than plain bilinear upsampling, which blurs every edge."""
    digit = torch.from_numpy(np.kron(DIGIT, np.ones((9, 7), dtype=np.uint8)))[None, None]  # 252 x 196, sharp edges
    full = to_float(digit)

    def colourise(x):  # (N, 1, H, W) -> (N, 3, H, W), all in [-1, 1]
        return torch.cat([x, -x, 0.5 * x.abs() - 0.25], dim=1)

    low = translate_mod._resize_long_side(full, 28)
    result = translate_mod.upsample_guided(colourise(low), full, low)
    bilinear = torch.nn.functional.interpolate(colourise(low), size=full.shape[-2:], mode="bilinear", align_corners=False)
    assert result.shape == (1, 3, 252, 196)
    assert _psnr(result, colourise(full)) > 25 and _psnr(result, colourise(full)) > _psnr(bilinear, colourise(full)) + 8


def test_full_res_runs_the_generator_at_training_size(runs, tmp_path):
    big = np.kron(DIGIT, np.ones((8, 8), dtype=np.uint8))  # 224 x 224
    source = _save(tmp_path / "big.png", big)
    assert _translate(runs / "cyclegan", source, "--out", tmp_path / "out", "--full-res") == 0
    out = torch.from_numpy(np.asarray(Image.open(tmp_path / "out" / "big.png")).copy()).permute(2, 0, 1)[None]
    assert out.shape == (1, 3, 224, 224)
    g = ganforge.load(runs / "cyclegan")
    full = to_float(torch.from_numpy(big)[None, None])
    low = translate_mod._resize_long_side(full, 28)
    with torch.no_grad():
        expected = to_uint8(translate_mod.upsample_guided(g.model.translate(low), full, low))
    assert (out.int() - expected.int()).abs().max() <= 1


def test_cyclegan_directions_and_channels(runs, tmp_path, capsys):
    colour = _save(tmp_path / "c.png", np.stack([DIGIT, 255 - DIGIT, DIGIT // 3], axis=-1))
    assert _translate(runs / "cyclegan", colour, "--out", tmp_path / "out", "--direction", "b2a") == 0
    assert Image.open(tmp_path / "out" / "c.png").mode == "L"  # F: colour -> grey
    grey = _save(tmp_path / "g.png", DIGIT)
    assert _translate(runs / "cyclegan", grey, "--out", tmp_path / "out2", "--direction", "b2a") == 2
    assert "g.png is a grey image but this cyclegan model translates colour images (b2a)" in _error(capsys)
    assert _translate(runs / "pix2pix", grey, "--out", tmp_path / "out3", "--direction", "b2a") == 2
    assert "translates a2b only" in _error(capsys)


def test_inpaint_keeps_every_known_pixel(runs, tmp_path, capsys):
    source = _save(tmp_path / "d.png", np.tile(DIGIT, (1, 2)))  # 28 x 56
    assert _translate(runs / "inpaint", source, "--out", tmp_path / "out", "--mask", "center") == 0
    out = np.asarray(Image.open(tmp_path / "out" / "d.png"))
    hole = np.zeros(out.shape, dtype=bool)
    hole[7:21, 14:42] = True
    assert np.array_equal(out[~hole], np.tile(DIGIT, (1, 2))[~hole]) and not np.array_equal(out[hole], np.tile(DIGIT, (1, 2))[hole])
    mask = _save(tmp_path / "m.png", np.zeros((10, 10), dtype=np.uint8))
    assert _translate(runs / "inpaint", source, "--out", tmp_path / "o2", "--mask", mask) == 2
    assert "m.png is 10 x 10 px but" in _error(capsys)
    assert _translate(runs / "inpaint", source, "--out", tmp_path / "o3") == 2
    assert "inpaint needs --mask" in _error(capsys)
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "o4", "--mask", "center") == 2
    assert "--mask is for inpaint models" in _error(capsys)


def test_super_resolution_outputs_four_times_the_input(runs, tmp_path, capsys):
    source = _save(tmp_path / "s.png", DIGIT[::4, ::4][:, :5])  # 7 x 5
    assert _translate(runs / "srgan", source, "--out", tmp_path / "out") == 0
    assert Image.open(tmp_path / "out" / "s.png").size == (20, 28)
    assert _translate(runs / "srgan", source, "--out", tmp_path / "out", "--full-res") == 2
    assert "--full-res is for translation" in _error(capsys)


def test_bad_inputs_give_one_line(runs, tmp_path, capsys, monkeypatch):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    assert _translate(runs / "pix2pix", fake, "--out", tmp_path / "out") == 2
    assert "notes.png" in _error(capsys)
    assert _translate(runs / "pix2pix", tmp_path / "missing.png", "--out", tmp_path / "out") == 2
    assert "no such input" in _error(capsys)
    source = _save(tmp_path / "in" / "x.png", DIGIT)
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "in") == 2
    assert "would overwrite the input" in _error(capsys)
    _save(tmp_path / "other" / "x.png", DIGIT)
    assert _translate(runs / "pix2pix", source, tmp_path / "other" / "x.png", "--out", tmp_path / "out") == 2
    assert "both be written to" in _error(capsys)
    assert _translate(runs / "dcgan", source, "--out", tmp_path / "out") == 2
    assert "samples from noise" in _error(capsys)
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "out", "--size", 0) == 2
    assert "--size must be a positive" in _error(capsys)
    # enormous: over the per-image pixel limit when read, or over what the generator runs at once
    monkeypatch.setenv("GANFORGE_MAX_PIXELS", "500")
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "out") == 2
    assert "over the limit of 500" in _error(capsys)
    monkeypatch.delenv("GANFORGE_MAX_PIXELS")
    monkeypatch.setattr(translate_mod, "MAX_RUN_PIXELS", 500)
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "out") == 2
    assert "use --full-res or --size" in _error(capsys)
    assert _translate(runs / "pix2pix", source, "--out", tmp_path / "out", "--size", 20) == 0
