"""Settings that follow the image: a family's rung for the data's image size sits between its defaults and the
user's settings, is written to the run's config.yaml and shown by --show-config. The tests give DCGAN a recipe of
their own."""
import pytest
import yaml

import ganforge
from ganforge.api import resolve_config
from ganforge.cli import main
from ganforge.models import MODELS
from ganforge.models.dcgan import DCGAN
from ganforge.models.recipe import READS_DATA, Rung, nested, rung_for


def test_a_rung_is_picked_by_image_size():
    recipe = (Rung(32), Rung(64, {"width": 48}), Rung(128, {"width": 64}))
    assert rung_for(recipe, 28) is recipe[0] and rung_for(recipe, 33) is recipe[1]
    assert rung_for(recipe, 128) is recipe[2] and rung_for(recipe, 512) is recipe[2]  # the last goes on beyond
    assert rung_for(recipe, None) is None and rung_for((), 64) is None
    assert nested({"optim.G.lr": 1.0, "width": 2}) == {"optim": {"G": {"lr": 1.0}}, "width": 2}


COLOUR_RUNG = Rung(256, {"optim.G.lr": 3e-4, "optim.D.betas": [0.5, 0.9], "width": 24}, why="a test's")


@pytest.fixture
def dcgan_recipe(monkeypatch):
    monkeypatch.setattr(DCGAN, "recipe", (Rung(32, why="the defaults"), COLOUR_RUNG))


def test_the_rung_sits_between_the_defaults_and_the_users_settings(dcgan_recipe):
    colour = {"size": 64, "channels": 3, "count": 1000}
    digits = {"size": 28, "channels": 1, "count": 4000}
    assert resolve_config("dcgan", image=digits) == resolve_config("dcgan")
    rung = rung_for(DCGAN.recipe, 64)
    assert rung is COLOUR_RUNG
    cfg = resolve_config("dcgan", image=colour)
    for key, value in rung.settings.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key
    assert resolve_config("dcgan", image=colour, sets=["optim.G.lr=0.001"]).optim.G.lr == 0.001


def test_every_recipe_names_settings_its_family_has(dcgan_recipe):
    for name, cls in MODELS.items():
        defaults = resolve_config(name)
        for rung in cls.recipe:
            assert rung.why, (name, rung.upto)
            assert not set(rung.settings) & set(READS_DATA), (name, rung.upto)  # the data is read before the rung
            for key in rung.settings:
                node = defaults
                for part in key.split("."):
                    assert part in node, (name, key)
                    node = node[part]
        assert list(r.upto for r in cls.recipe) == sorted(r.upto for r in cls.recipe), name


def test_a_run_on_colour_images_records_its_rung_and_show_config_prints_it(tmp_path, capfd, dcgan_recipe):
    out = tmp_path / "run"
    ganforge.train("dcgan", data="openmoji", out=str(out), steps=1, batch_size=4, progress=False,
                   set=["eval.metrics=none", "sample.every=0", "log.every=1"])
    saved = yaml.safe_load((out / "config.yaml").read_text())
    lr = COLOUR_RUNG.settings["optim.G.lr"]
    assert saved["optim"]["G"]["lr"] == lr and saved["width"] == 24 and saved["size"] is None
    assert main(["train", "dcgan", "--data", "openmoji", "--show-config"]) == 0
    shown = yaml.safe_load(capfd.readouterr().out)
    assert shown["optim"]["G"]["lr"] == lr
    assert main(["train", "dcgan", "--show-config"]) == 0  # digits: the defaults
    assert yaml.safe_load(capfd.readouterr().out)["optim"]["G"]["lr"] == DCGAN.defaults["optim"]["G"]["lr"]
