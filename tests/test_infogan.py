"""InfoGAN on real digits: a short run's information term falls and Q reads back the categorical code of fresh
samples; `sample --code` fixes codes, `explore codes` draws the figure-2 grid, and bad codes are refused in one line."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import api, cli
from ganforge.models.base import Capability
from ganforge.models.infogan import InfoGAN
from ganforge.errors import UserError
from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.nn.infogan import InfoGANDiscriminator, InfoGANGenerator

from conftest import train_fast

STEPS = 80


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "infogan"
    train_fast("infogan", out, steps=STEPS, batch_size=32, seed=3)
    return out


@pytest.fixture(scope="module")
def generator(infogan_run):
    return ganforge.load(infogan_run)


def read_cat(g, images: torch.Tensor) -> torch.Tensor:
    """The categorical code Q reads in images (N, 1, H, W) in [-1, 1]."""
    return g.model.read_codes(images.to(g.device))[0].argmax(dim=1).cpu()


def test_the_information_loss_falls(infogan_run):
    records = [json.loads(line) for line in (infogan_run / "metrics.jsonl").read_text().splitlines()]
    info = [r["G/info"] for r in records if r["kind"] == "train"]
    assert len(info) == STEPS
    early, late = np.mean(info[:10]), np.mean(info[-10:])
    assert late < 0.5 * early, (early, late)


def test_q_recovers_the_categorical_code_of_fresh_samples(generator):
    model = generator.model
    assert model.can(Capability.CODES) and model.z_dim == 62 + 10 + 2
    z = model.latent(400, torch.Generator().manual_seed(11))
    drawn = z[:, 62:72].argmax(dim=1)
    with torch.no_grad():
        read = read_cat(generator, model.G(z))
    assert (read == drawn).float().mean() > 0.3  # chance is 0.1


def test_q_has_a_layer_of_its_own_that_spectral_norm_leaves_alone():
    model = InfoGAN(api.resolve_config("infogan", sets=["d_norm=spectral"]), {"name": "digits", "channels": 1, "size": 28})
    assert isinstance(model.D, InfoGANDiscriminator)
    assert torch.nn.utils.parametrize.is_parametrized(model.D.body.head, "weight")
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in model.D.q.modules())
    linears = [m for m in model.D.q.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [128, 10 + 2 * 2]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.D.q.modules())
    assert model.D(torch.zeros(3, 1, 28, 28)).shape == (3, 1 + 10 + 2 * 2)


def test_fc_gives_g_and_d_the_papers_fully_connected_layers():
    """Table 1: G is FC 1024 (batch norm, ReLU) before DCGAN's projection; D's convolutions end in FC 1024 (batch
    norm, leaky ReLU) that D's score and Q both read."""
    model = InfoGAN(api.resolve_config("infogan", sets=["fc=1024", "width=64"]), {"name": "digits", "channels": 1, "size": 28})
    assert isinstance(model.G, InfoGANGenerator) and isinstance(model.D, InfoGANDiscriminator)
    fc_g = [type(m) for m in model.G.fc]
    assert fc_g == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU] and model.G.fc[0].in_features == 74
    assert model.G.net.project[0].in_features == 1024 and model.G.net.project[0].out_features == 128 * 7 * 7
    assert model.D.fc[0].in_features == 128 * 7 * 7 and model.D.fc[0].out_features == 1024
    assert model.D.body.head.in_features == 1024 and model.D.q.net[0].in_features == 1024
    model.train()
    z = model.latent(5, torch.Generator().manual_seed(0))
    images = model.G(z)
    assert images.shape == (5, 1, 28, 28)
    assert model.D(images).shape == (5, 1 + 10 + 2 * 2)
    assert InfoGAN.paper_settings["fc"] == 1024


def test_fc_without_qs_own_layer_is_refused():
    with pytest.raises(UserError, match="fc"):
        api.resolve_config("infogan", sets=["fc=256", "q_hidden=0"])


def test_a_run_saved_with_q_in_ds_last_layer_still_loads(tmp_path):
    """Runs saved before Q had a layer of its own have no q_hidden in their config: they load with Q's outputs in
    D's last layer, as they were trained."""
    train_fast("infogan", tmp_path / "old", sets=["q_hidden=0", "noise_std=1"], steps=3, batch_size=8, seed=1)
    sidecar = next((tmp_path / "old" / "checkpoints").glob("*.json"))
    meta = json.loads(sidecar.read_text())
    del meta["config"]["q_hidden"], meta["config"]["noise_std"], meta["config"]["fc"]
    sidecar.write_text(json.dumps(meta))
    g = ganforge.load(tmp_path / "old")
    assert type(g.model.D) is DCGANDiscriminator and g.model.cfg.q_hidden == 0 and g.model.cfg.noise_std == 1
    assert type(g.model.G) is DCGANGenerator and g.model.cfg.fc == 0
    probabilities, means = g.model.read_codes(g.sample(4, seed=0, codes={"cat": 1}))
    assert probabilities.shape == (4, 10) and means.shape == (4, 2)


def test_sample_with_codes_changes_only_the_codes(generator):
    model = generator.model
    fixed = generator.sample(6, seed=4, codes={"cat": 2, "c2": -1.5})
    z = model.with_codes(model.latent(6, torch.Generator().manual_seed(4)), {"cat": 2, "c2": -1.5})
    assert torch.allclose(fixed, model.G(z), atol=1e-6)
    assert (z[:, 62:72].argmax(dim=1) == 2).all() and (z[:, 73] == -1.5).all()
    assert not torch.equal(z[:, :62], model.latent(6, torch.Generator().manual_seed(5))[:, :62])


def test_sample_code_on_the_command_line_fixes_the_categorical_code(infogan_run, generator, tmp_path):
    npz = tmp_path / "three.npz"
    assert cli.main(["sample", str(infogan_run), "--n", "200", "--code", "cat=3", "--npz", str(npz)]) == 0
    images = torch.from_numpy(np.load(npz)["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1  # (N, 1, 28, 28)
    share = (read_cat(generator, images) == 3).float().mean()
    assert share > 0.3, share  # chance is 0.1


def test_explore_codes_draws_one_row_per_category_and_a_column_per_step(infogan_run, tmp_path):
    out = tmp_path / "codes.png"
    assert cli.main(["explore", str(infogan_run), "codes", "--out", str(out), "--code", "c2", "--steps", "5"]) == 0
    grid = np.asarray(Image.open(out))
    scale, cell = 2, 28 + 2  # enlarged to at least 64 px a digit; two pixels between cells
    assert grid.shape[:2] == (scale * (10 * cell + 2), scale * (5 * cell + 2))
    rows = grid[::scale, ::scale].reshape(-1) if grid.ndim == 2 else grid[::scale, ::scale, 0].reshape(-1)
    assert rows.std() > 0  # pictures, not a blank


@pytest.mark.parametrize("flags, message", [
    (["--code", "dog=1"], "infogan has no code 'dog'; its codes: cat, c1, c2"),
    (["--code", "cat=10"], "code cat takes a whole number from 0 to 9, got 10"),
    (["--code", "cat=2.5"], "code cat takes a whole number from 0 to 9, got 2.5"),
    (["--code", "c1=3"], "code c1 takes a value from -2 to 2 (its prior is -1 to 1), got 3"),
    (["--code", "cat"], "--code takes NAME=VALUE pairs separated by commas"),
])
def test_bad_codes_are_refused_in_one_line(infogan_run, tmp_path, capsys, flags, message):
    assert cli.main(["sample", str(infogan_run), "--n", "4", "--grid", str(tmp_path / "g.png"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "g.png").exists()


def test_a_family_without_codes_refuses_them_in_one_line(cgan_run, infogan_run, tmp_path, capsys):
    assert cli.main(["sample", str(cgan_run), "--n", "4", "--code", "cat=1", "--grid", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "this cgan model has no latent codes (infogan has): drop --code" in err and err.count("\n") == 1
    assert cli.main(["explore", str(cgan_run), "codes", "--out", str(tmp_path / "c.png")]) == 2
    assert "cgan has no latent codes" in capsys.readouterr().err
    assert cli.main(["explore", str(infogan_run), "codes", "--out", str(tmp_path / "c.png"), "--code", "cat"]) == 2
    assert "--code must be one of the continuous codes c1, c2, got 'cat'" in capsys.readouterr().err
    assert cli.main(["explore", str(infogan_run), "interpolate", "--out", str(tmp_path / "s.png"), "--code", "c1"]) == 2
    assert "--code picks the code that the codes picture sweeps" in capsys.readouterr().err
