"""Editing directions (latent/directions.py), `ganforge edit` and `ganforge explore RUN directions`, on short real
runs on mnist5k: SeFa's directions are orthonormal and move the image more than random ones, `thick` adds ink, the
cache is kept and made again for other weights, edits write what they say, and wrong inputs are one line."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import ganforge
from ganforge import api
from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.latent import directions as dirs
from ganforge.latent.space import Latents, load_latents, save_latents

from conftest import FAST, train_latent_runs

N = 600  # latents labelled per run here (the default is dirs.SAMPLES)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_latent_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def stylegan(runs):
    g = api.load(runs / "stylegan")
    return g, api.directions(g, n=N)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _latents(model, n: int, seed: int) -> torch.Tensor:
    return model.latent(n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["stylegan", "dcgan"])
def test_sefa_directions_are_orthonormal_and_move_the_image_more_than_random_ones(runs, family):
    g = api.load(runs / family)
    found = api.directions(g, n=N)
    sefa = found.vectors[[found.index(f"sefa{i}") for i in range(dirs.SEFA)]]
    assert found.space == ("w" if family == "stylegan" else "z")
    assert torch.allclose(sefa @ sefa.t(), torch.eye(dirs.SEFA), atol=1e-5)
    model = g.model
    with torch.no_grad():
        start = model.to_space(_latents(model, 32, seed=7), found.space)
        base = model.generate(start, found.space)
        length = 3 * dirs.spread(found.covariance, sefa[0])

        def change(v):
            return (model.generate(start + length * v, found.space) - base).abs().mean().item()

        along = change(sefa[0])
        rng = torch.Generator().manual_seed(1)
        randoms = [change(r / r.norm()) for r in torch.randn(8, sefa.shape[1], generator=rng)]
    print(f"{family}: sefa0 moves the image by {along:.4f}, random directions by {np.mean(randoms):.4f} on average")
    assert along > np.mean(randoms)


def test_thick_adds_ink(stylegan):
    g, found = stylegan
    assert "thick" in found.names and found.keep[found.index("thick")]  # it keeps the digits it found
    start = Latents("z", _latents(g.model, 64, seed=11))
    with torch.no_grad():
        before = dirs.ink_area(g.model.generate(start.values, "z"))
    edited, images = api.edit(g, start, "thick", 2.0)
    after = dirs.ink_area(images)
    print(f"ink area {before.mean():.4f} -> {after.mean():.4f}")
    assert edited.space == "w" and after.mean() > before.mean()


def test_the_cache_is_kept_reused_and_made_again_for_other_weights(runs, tmp_path):
    run = tmp_path / "dcgan"
    shutil.copytree(runs / "dcgan", run)
    first = api.directions(run, n=300)
    cache = run / dirs.CACHE
    stamp = cache.stat().st_mtime_ns
    again = api.directions(run, n=300)
    assert cache.stat().st_mtime_ns == stamp and torch.equal(first.vectors, again.vectors)
    with np.load(cache) as f:
        key = str(f["checkpoint"])
    weights = next((run / "checkpoints").glob("*.safetensors"))
    tensors = load_file(str(weights))
    name = next(k for k in tensors if k.startswith("ema.G.") and k.endswith("weight") and tensors[k].dim() == 2)
    tensors[name] = tensors[name] * 2 + 0.01  # other weights in the same checkpoint file
    save_file(tensors, str(weights))
    changed = api.directions(run, n=300)
    with np.load(cache) as f:
        assert str(f["checkpoint"]) != key
    assert not torch.allclose(changed.vectors, first.vectors)


def test_edit_writes_the_moved_latents_and_their_images(stylegan, runs, tmp_path, capsys):
    g, _ = stylegan
    found = api.directions(g)  # the default settings, as the command uses
    z = _latents(g.model, 3, seed=5)
    with torch.no_grad():
        w_plus = g.model.to_space(z, "w+")
    save_latents(tmp_path / "wp.npz", Latents("w+", w_plus), "stylegan")
    save_latents(tmp_path / "z.npz", Latents("z", z), "stylegan")
    out = tmp_path / "out"
    assert main(["edit", str(runs / "stylegan"), str(tmp_path / "wp.npz"), "--direction", "sefa0", "--strength", "2",
                 "--out", str(out)]) == 0
    assert "3 latent(s) moved 2 along sefa0 in w+" in capsys.readouterr().out
    edited = load_latents(out / "latents.npz", g.model)
    step = found.step("sefa0", 2)
    assert edited.space == "w+" and torch.allclose(edited.values, w_plus + step, atol=1e-5)  # every layer moved
    with torch.no_grad():
        expected = g.to_native_uint8(g.model.generate(edited.values, "w+").clamp(-1, 1))
    for i in range(3):
        written = np.asarray(Image.open(out / f"{i:04d}_edited.png"))
        assert np.abs(written.astype(int) - expected[i, :, :, 0].numpy().astype(int)).max() <= 1
    # a z latent along a w direction comes back in w
    assert main(["edit", str(runs / "stylegan"), str(tmp_path / "z.npz"), "--direction", "sefa1", "--strength", "-1",
                 "--out", str(tmp_path / "out_z")]) == 0
    moved = load_latents(tmp_path / "out_z" / "latents.npz", g.model)
    with torch.no_grad():
        assert moved.space == "w" and torch.allclose(moved.values, g.model.to_space(z, "w") + found.step("sefa1", -1), atol=1e-5)


def test_edit_projects_pictures_first(stylegan, runs, tmp_path):
    g, _ = stylegan
    image = (g.sample(1, seed=2) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0, 0].numpy()
    Image.fromarray(image).save(tmp_path / "mine.png")
    out = tmp_path / "out"
    assert main(["edit", str(runs / "stylegan"), str(tmp_path / "mine.png"), "--direction", "sefa0", "--strength", "1",
                 "--steps", "5", "--quiet", "--out", str(out)]) == 0
    edited = load_latents(out / "latents.npz", g.model)
    assert (out / "mine_edited.png").is_file() and list(edited.figures["inputs"]) == ["mine.png"]


def test_explore_directions_draws_a_row_per_direction(stylegan, runs, tmp_path, capsys):
    out = tmp_path / "dirs.png"
    assert main(["explore", str(runs / "stylegan"), "directions", "--names", "sefa0,thick", "--strengths", "-2", "0", "2",
                 "--out", str(out)]) == 0
    assert "rows: sefa0, thick" in capsys.readouterr().out
    scale = 64 // 28
    assert Image.open(out).size == (scale * (3 * 30 + 2), scale * (2 * 30 + 2))


def test_conditioning_removes_the_kept_directions():
    torch.manual_seed(0)
    others = torch.randn(3, 16)
    v = torch.nn.functional.normalize(torch.randn(16), dim=0)
    kept = dirs.condition(v, others)
    assert kept.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert (others @ kept).abs().max() < 1e-5
    with pytest.raises(UserError, match="lies within"):
        dirs.condition(others[0] / others[0].norm(), others)


def test_a_w_latent_cannot_take_a_z_direction(stylegan):
    g, found = stylegan
    in_z = dirs.Directions("z", ["a"], torch.eye(1, g.model.z_dim), torch.tensor([float("nan")]), [()],
                           torch.eye(g.model.z_dim))
    w = Latents("w", g.model.latent_start("w"))
    with pytest.raises(UserError, match="a w latent cannot take a direction in z"):
        dirs.apply(g.model, g.info, w, in_z, "a", 1.0)


def test_wrong_requests_are_one_line(stylegan, runs, tmp_path, capsys):
    z = Latents("z", _latents(stylegan[0].model, 1, seed=0))
    save_latents(tmp_path / "z.npz", z, "stylegan")
    run, latent = str(runs / "stylegan"), str(tmp_path / "z.npz")
    cases = [
        (["--direction", "bold", "--strength", "1"], "no direction 'bold'; this run's directions: sefa0"),
        (["--direction", "thick", "--strength", "1", "--keep", "sefa1,nope"], "no direction 'nope'"),
        (["--direction", "thick", "--strength", "nan"], "--strength must be a number"),
        (["--direction", "thick", "--strength", "1", "--steps", "5"], "--steps is for projecting pictures"),
    ]
    for flags, message in cases:
        assert main(["edit", run, latent, *flags, "--out", str(tmp_path / "o")]) == 2
        assert message in _error(capsys)
    assert main(["explore", run, "mix", "--names", "thick", "--out", str(tmp_path / "m.png")]) == 2
    assert "--names applies to `explore RUN directions`" in _error(capsys)


def test_a_translating_family_is_refused(tmp_path, capsys):
    run = tmp_path / "pix2pix"
    ganforge.train("pix2pix", out=str(run), steps=1, batch_size=2, set=[*FAST, "width=4"], progress=False)
    np.savez(tmp_path / "z.npz", space="z", latents=np.zeros((1, 8), np.float32), model="pix2pix")
    assert main(["edit", str(run), str(tmp_path / "z.npz"), "--direction", "sefa0", "--strength", "1",
                 "--out", str(tmp_path / "out")]) == 2
    assert "pix2pix translates images and has no latent space" in _error(capsys)
    assert main(["explore", str(run), "directions", "--out", str(tmp_path / "d.png")]) == 2
    assert "pix2pix translates images" in _error(capsys)
