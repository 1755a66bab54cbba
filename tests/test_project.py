"""`ganforge project` and ganforge.api.project: a model's own images are found again, the same seed gives the same
latents, the figures match hand-computed cases, and every bad input is one line. Short real runs on mnist5k."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import api
from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.imaging.similarity import multiscale_ssim, psnr, ssim
from ganforge.latent.space import load_latents

from conftest import FAST, train_latent_runs

STEPS = 60  # projection steps in these tests
# PSNR in dB that a projection of the model's own image must reach in STEPS steps: these seeded runs reach 20.6 (stylegan)
# and 48.8 (dcgan), printed by test_recovers_its_own_image
RECOVERED = {"stylegan": 17.0, "dcgan": 35.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_latent_runs(tmp_path_factory.mktemp("runs"))


def _own_image(run, path, seed=3):
    """An image the run's generator drew, written as a PNG, and the same as uint8 (1, 1, 28, 28)."""
    g = api.load(run)
    image = ((g.sample(1, seed=seed) * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    Image.fromarray(image[0, 0].numpy()).save(path)
    return image


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_psnr_and_ssim_on_hand_checked_cases():
    a = torch.zeros(1, 1, 16, 16)
    assert psnr(a, a + 0.1).item() == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 of a unit range: 20 dB
    assert ssim(a + 0.3, a + 0.3).item() == pytest.approx(1.0, abs=1e-6)
    # constant images: the variances and covariance vanish, leaving (2 ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01**2
    assert ssim(a + 0.5, a + 0.25).item() == pytest.approx((2 * 0.125 + c1) / (0.25 + 0.0625 + c1), rel=1e-5)
    # an 11 x 11 pair has one window position: the Gaussian-weighted statistics computed by hand
    rng = np.random.default_rng(0)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c2 = 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = ssim(torch.tensor(x)[None, None].float(), torch.tensor(y)[None, None].float()).item()
    assert got == pytest.approx(expected, abs=1e-5)
    assert multiscale_ssim(a + 0.4, a + 0.4).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("model", ["stylegan", "dcgan"])
def test_recovers_its_own_image(runs, tmp_path, model):
    target = _own_image(runs / model, tmp_path / "own.png")
    latents, images = api.project(runs / model, [tmp_path / "own.png"], steps=STEPS, seed=0)
    g = api.load(runs / model)
    assert latents.space == g.model.latent_spaces[0] and latents.values.shape[0] == 1
    with torch.no_grad():  # the latent alone reproduces the reconstruction
        assert torch.allclose(g.model.generate(latents.values, latents.space), images, atol=1e-5)
    mse = ((images * 127.5 + 127.5).round() - target.float()).square().mean().item()
    measured = 10 * math.log10(255**2 / mse)
    print(f"{model}: PSNR {latents.figures['psnr'][0]:.2f} dB")
    assert latents.figures["psnr"][0] == pytest.approx(measured, abs=0.2)
    assert latents.figures["psnr"][0] > RECOVERED[model]


def test_same_seed_same_result_and_each_image_its_own_latent(runs, tmp_path):
    run = runs / "stylegan"
    targets = torch.cat([_own_image(run, tmp_path / f"{s}.png", seed=s) for s in (1, 2)])
    first, images = api.project(run, targets, steps=10, seed=7)
    again, _ = api.project(run, targets, steps=10, seed=7)
    other, _ = api.project(run, targets, steps=10, seed=8)
    assert torch.equal(first.values, again.values)
    assert not torch.equal(first.values, other.values)
    assert first.values.shape[0] == 2 and not torch.equal(first.values[0], first.values[1])
    assert np.all(first.figures["psnr"] > 10) and first.figures["ssim"].shape == (2,)


def test_cli_writes_pictures_and_a_latent_file_that_loads_back(runs, tmp_path, capsys):
    run = runs / "stylegan"
    _own_image(run, tmp_path / "a.png", seed=1)
    rgba = np.zeros((40, 30, 4), np.uint8)  # a transparent picture of another size: composited on white
    rgba[10:30, 10:20] = (0, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "b.png")
    out = tmp_path / "out"
    code = main(["project", str(run), str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out),
                 "--steps", "10", "--space", "w", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "a.png" in printed and "b.png" in printed and "PSNR" in printed and "SSIM" in printed
    for name in ("a", "b"):
        picture = np.asarray(Image.open(out / f"{name}_projected.png"))
        assert picture.shape[1] > 2 * 56 and picture.shape[1] > picture.shape[0]  # input | reconstruction, at 2x
    model = api.load(run).model
    latents = load_latents(out / "latents.npz", model)
    assert latents.space == "w" and latents.values.shape == (2, model.cfg.w_dim)
    assert list(latents.figures["inputs"]) == ["a.png", "b.png"]
    assert latents.figures["psnr"].shape == (2,) and latents.figures["ssim"].shape == (2,)
    left = picture[:, : picture.shape[1] // 2]
    assert left.min() < 50 and left.max() > 200  # b's black bar on white, not on black


def test_a_translating_family_is_refused(tmp_path, capsys):
    run = tmp_path / "pix2pix"
    ganforge.train("pix2pix", out=str(run), steps=1, batch_size=2, set=[*FAST, "width=4"], progress=False)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    assert main(["project", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "out")]) == 2
    assert "pix2pix translates images" in _error(capsys)


def test_a_corrupt_image_is_refused_naming_it(runs, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    assert main(["project", str(runs / "dcgan"), str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "broken.png" in _error(capsys)
    assert not (tmp_path / "out").exists()


def test_class_conditional_needs_a_label_which_the_file_keeps(cgan_run, runs, tmp_path, capsys):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    assert main(["project", str(cgan_run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o1")]) == 2
    assert "--label" in _error(capsys)
    assert main(["project", str(cgan_run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o2"), "--label", "3",
                 "--steps", "2", "--quiet"]) == 0
    latents = load_latents(tmp_path / "o2" / "latents.npz", api.load(cgan_run).model)
    assert latents.labels.tolist() == [3]
    assert main(["project", str(runs / "dcgan"), str(tmp_path / "x.png"), "--out", str(tmp_path / "o3"), "--label", "3"]) == 2
    assert "not class-conditional" in _error(capsys)
    with pytest.raises(UserError, match="no 'w' space"):
        api.project(runs / "dcgan", [tmp_path / "x.png"], space="w")
