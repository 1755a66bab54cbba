"""Config resolution: the order of precedence, and one clear UserError for every kind of bad setting."""
import pytest
import torch
import yaml

from ganforge import config
from ganforge.config import TRAINER_DEFAULTS, load_yaml, parse_set, resolve
from ganforge.errors import UserError
from ganforge.models import MODELS

DCGAN = MODELS["dcgan"].defaults
GAN = MODELS["gan"].defaults


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_precedence_defaults_model_yaml_flags_set(tmp_path):
    yaml_file = write(tmp_path, "batch_size: 32\nseed: 5\nn_critic: 2\noptim:\n  G:\n    lr: 0.001\n")
    assert resolve("gan", {})["batch_size"] == TRAINER_DEFAULTS["batch_size"]  # trainer default
    assert resolve("dcgan", DCGAN)["ema"]["beta"] == DCGAN["ema"]["beta"] != TRAINER_DEFAULTS["ema"]["beta"]
    from_yaml = resolve("dcgan", DCGAN, yaml_file)
    assert (from_yaml.batch_size, from_yaml.seed, from_yaml.n_critic) == (32, 5, 2)
    flagged = resolve("dcgan", DCGAN, yaml_file, flags={"batch_size": 16, "steps": None})
    assert flagged.batch_size == 16 and flagged.seed == 5
    assert flagged.steps == TRAINER_DEFAULTS["steps"]  # a flag left unset (None) changes nothing
    final = resolve("dcgan", DCGAN, yaml_file, flags={"batch_size": 16}, sets=["batch_size=8", "optim.G.lr=5e-4"])
    assert final.batch_size == 8 and final.seed == 5 and final.n_critic == 2
    # nested settings merge key by key: the model's betas and D's learning rate survive a change to G's lr
    assert final.optim.G.lr == 5e-4 and final.optim.G.betas == DCGAN["optim"]["G"]["betas"]
    assert final.optim.D.lr == DCGAN["optim"]["D"]["lr"]


def test_model_defaults_override_trainer_defaults():
    wgan = resolve("wgan", MODELS["wgan"].defaults)
    assert wgan.n_critic == 5 and wgan.clip == 0.01 and wgan.optim.D.name == "rmsprop" and wgan.optim.D.lr == 5e-5
    gp = resolve("wgan-gp", MODELS["wgan-gp"].defaults)
    recipe = MODELS["wgan-gp"].defaults
    assert gp.gp_weight == 10.0 and gp.loss == "wasserstein" and gp.n_critic == recipe["n_critic"]
    assert gp.optim.D.lr == recipe["optim"]["D"]["lr"] != TRAINER_DEFAULTS["optim"]["D"]["lr"]
    assert gp.optim.G.betas == recipe["optim"]["G"]["betas"]
    assert resolve("dcgan", DCGAN).model == "dcgan"


def test_resolving_does_not_mutate_the_defaults():
    before = repr(DCGAN), repr(TRAINER_DEFAULTS)
    resolve("dcgan", DCGAN, sets=["optim.G.lr=0.1", "optim.G.betas=[0.1,0.2]", "batch_size=3"])
    assert (repr(DCGAN), repr(TRAINER_DEFAULTS)) == before


@pytest.mark.parametrize("setting,suggestion", [("batch_sise=3", "batch_size"), ("optim.G.lrr=0.1", "optim.G.lr"),
                                                ("nciritc=2", "n_critic")])
def test_unknown_key_suggests_the_close_one(setting, suggestion):
    with pytest.raises(UserError, match=f"did you mean '{suggestion}'"):
        resolve("dcgan", DCGAN, sets=[setting])


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "optim:\n  G:\n    learning_rate: 0.1\n")
    with pytest.raises(UserError) as e:
        resolve("dcgan", DCGAN, path)
    assert path in str(e.value) and "optim.G.learning_rate" in str(e.value)


def test_model_specific_keys_exist_only_for_that_model():
    assert resolve("wgan", MODELS["wgan"].defaults, sets=["clip=0.02"]).clip == 0.02
    with pytest.raises(UserError, match="clip"):
        resolve("dcgan", DCGAN, sets=["clip=0.02"])


@pytest.mark.parametrize("setting", ["steps=abc", "steps=1.5", "batch_size=true", "optim.G.lr=fast",
                                     "optim.G.betas=0.5", "loss=3", "ema=0.9", "size=big", "size=28.5",
                                     "minutes=soon"])
def test_wrong_value_type_is_a_user_error(setting):
    key = setting.split("=")[0]
    with pytest.raises(UserError, match=key.split(".")[-1]):
        resolve("dcgan", DCGAN, sets=[setting])


def test_wrong_type_in_yaml_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="'steps' must be an integer"):
        resolve("dcgan", DCGAN, write(tmp_path, "steps: many\n"))


def test_integers_are_accepted_where_numbers_are_expected():
    cfg = resolve("dcgan", DCGAN, sets=["optim.G.lr=1", "ema.beta=0"])
    assert cfg.optim.G.lr == 1.0 and isinstance(cfg.optim.G.lr, float)


def test_scientific_notation_is_a_number_from_set_and_yaml(tmp_path):
    # YAML 1.1 reads 1e-4 (no dot) as text; settings must still get the number
    assert parse_set(["optim.G.lr=1e-4"]) == {"optim": {"G": {"lr": 1e-4}}}
    cfg = resolve("dcgan", DCGAN, write(tmp_path, "optim:\n  D:\n    lr: 3e-4\n"), sets=["optim.G.lr=1e-4"])
    assert cfg.optim.G.lr == 1e-4 and cfg.optim.D.lr == 3e-4
    assert isinstance(cfg.optim.G.lr, float) and isinstance(cfg.optim.D.lr, float)
    assert load_yaml(write(tmp_path, "ema:\n  beta: 5E-1\n", "b.yaml")) == {"ema": {"beta": 0.5}}


def test_set_parses_yaml_scalars_and_lists():
    assert parse_set(["loss=lsgan", "n_critic=3", "optim.G.betas=[0.0, 0.99]", "augment.policy=color,translation"]) == {
        "loss": "lsgan", "n_critic": 3, "optim": {"G": {"betas": [0.0, 0.99]}}, "augment": {"policy": "color,translation"}}


@pytest.mark.parametrize("item", ["steps", "=3", " =3"])
def test_set_without_key_value_is_a_user_error(item):
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_set([item])


def test_broken_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "steps: 10\nbatch_size: 4\noptim: {G: {lr: 0.1}\nseed: 3\n")
    with pytest.raises(UserError) as e:
        resolve("dcgan", DCGAN, path)
    message = str(e.value)
    assert path in message and "line 4" in message and "\n" not in message


@pytest.mark.parametrize("text,needle", [("- 1\n- 2\n", "mapping"), ("just text\n", "mapping")])
def test_yaml_that_is_not_a_mapping(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=needle) as e:
        resolve("dcgan", DCGAN, path)
    assert path in str(e.value)


def test_yaml_binary_and_missing_files(tmp_path):
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 20)
    with pytest.raises(UserError, match="weights.yaml"):
        resolve("dcgan", DCGAN, str(binary))
    with pytest.raises(UserError, match="not found"):
        resolve("dcgan", DCGAN, str(tmp_path / "missing.yaml"))


def test_empty_yaml_changes_nothing(tmp_path):
    assert resolve("dcgan", DCGAN, write(tmp_path, "# nothing yet\n")) == resolve("dcgan", DCGAN)


def test_yaml_of_another_model_is_refused(tmp_path):
    with pytest.raises(UserError, match="'wgan'"):
        resolve("dcgan", DCGAN, write(tmp_path, "model: wgan\n"))


@pytest.mark.parametrize("flags,sets,key", [
    ({"steps": -5}, [], "steps"), ({"steps": 0}, [], "steps"), ({"batch_size": 0}, [], "batch_size"),
    ({}, ["n_critic=0"], "n_critic"), ({"minutes": -1.0}, [], "minutes"), ({}, ["optim.D.lr=-1e-4"], "lr"),
    ({}, ["optim.G.weight_decay=-0.1"], "weight_decay"), ({}, ["ema.beta=1.0"], "ema.beta"),
    ({}, ["optim.G.name=adamw"], "optim.G.name"), ({}, ["schedule.kind=cosine"], "schedule.kind"),
    ({}, ["log.every=-1"], "log.every"), ({}, ["eval.every=-5"], "eval.every"), ({}, ["device=tpu"], "device"),
    ({}, ["size=-28"], "size"), ({}, ["checkpoint.keep=0"], "checkpoint.keep"), ({}, ["sample.n=0"], "sample.n"),
    ({}, ["eval.n=-1"], "eval.n"), ({}, ["eval.share=0"], "eval.share"), ({}, ["threads=0"], "threads"), ({}, ["threads=1.5"], "threads"),
    ({}, ["threads=two"], "threads"),
])
def test_bad_numbers_and_names_are_user_errors(flags, sets, key):
    with pytest.raises(UserError, match=key):
        resolve("dcgan", DCGAN, flags=flags, sets=sets)


def test_written_config_reads_back_identically(tmp_path):
    cfg = resolve("wgan-gp", MODELS["wgan-gp"].defaults, flags={"steps": 7, "out": str(tmp_path)},
                  sets=["optim.G.lr=1e-5", "ema.beta=0.999", "augment.policy=color,cutout"])
    path = write(tmp_path, config.dump(cfg), "config.yaml")
    assert yaml.safe_load(open(path))["optim"]["G"]["lr"] == 1e-5
    assert resolve("wgan-gp", MODELS["wgan-gp"].defaults, path) == cfg


def test_attribute_access():
    cfg = resolve("dcgan", DCGAN)
    assert cfg.optim.G.lr == cfg["optim"]["G"]["lr"]
    with pytest.raises(AttributeError):
        cfg.no_such_setting


@pytest.mark.parametrize("setting,needle", [
    ("optim.G.lr=nan", "'optim.G.lr' must be a finite number"), ("minutes=.inf", "'minutes' must be a finite number"),
    ("optim.D.betas=[0.5]", "optim.D.betas must be two numbers"), ("optim.G.betas=[1.5,0.9]", r"optim.G.betas\[0\] must be in \[0.0, 1.0\)"),
    ("optim.G.betas=[a,b]", r"'optim.G.betas\[0\]' must be a number"), ("optim.G.momentum=-1", "optim.G.momentum must be in"),
    ("hidden_g=[64,x]", r"'hidden_g\[1\]' must be an integer"), ("hidden_g=[64,null]", r"'hidden_g\[1\]' must be an integer, got null"),
    ("ema.start=-5", "ema.start must be >= 0"), ("schedule.decay_start=5", "schedule.decay_start must be in"),
    ("divergence.lr_factor=0", "divergence.lr_factor must be in"), ("divergence.retries=-1", "divergence.retries"),
    ("seed=-1", "seed must be a whole number from 0"), (f"seed={2**70}", "seed must be a whole number from 0"),
])
def test_values_out_of_range_are_refused_by_name(setting, needle):
    with pytest.raises(UserError, match=needle):
        resolve("gan", GAN, sets=[setting])


def test_list_items_take_the_defaults_type():
    cfg = resolve("gan", GAN, sets=["optim.G.betas=[0, 1e-1]", "hidden_g=[8,16]"])
    assert cfg.optim.G.betas == [0.0, 0.1] and all(isinstance(b, float) for b in cfg.optim.G.betas)
    assert cfg.hidden_g == [8, 16]


def test_config_that_is_a_folder(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        resolve("gan", GAN, str(tmp_path))


def test_threads_default_to_torchs_own_count_shared_among_a_machines_ranks(monkeypatch):
    from ganforge.training.distributed import Ranks, cpu_threads

    assert resolve("dcgan", DCGAN)["threads"] is None
    assert resolve("dcgan", DCGAN, sets=["threads=3"])["threads"] == 3
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert cpu_threads(None, Ranks()) == 4 and cpu_threads(3, Ranks()) == 3
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two ranks on this machine
        assert cpu_threads(None, Ranks(rank=1, world=2, local_rank=1)) == 2
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
        assert cpu_threads(None, Ranks(rank=1, world=8, local_rank=1)) == 1
    finally:
        torch.set_num_threads(before)


# --- settings a family does not use, and a family's own settings, are refused when the config is resolved ---

@pytest.mark.parametrize("model, setting", [
    ("cyclegan", "n_critic=5"),  # its G and D phases alternate one to one
    ("cyclegan", "augment.policy=color"),
    ("pix2pix", "augment.p=0.5"),
    ("srgan", "augment.policy=translation"),
    ("stargan", "augment.policy=color"),
])
def test_a_setting_the_family_does_not_use_is_refused(model, setting):
    from ganforge import api

    top = setting.split("=")[0].split(".")[0]
    with pytest.raises(UserError, match=f"{model} does not use '{top}'"):
        api.resolve_config(model, sets=[setting])
    assert top not in api.resolve_config(model)


@pytest.mark.parametrize("model, setting, needle", [
    ("dcgan", "d_norm=bogus", "d_norm must be"),
    ("acgan", "width=0", "width and z_dim"),
    ("gan", "dropout=1.5", "dropout must be"),
    ("stylegan", "mixing_prob=2", "mixing_prob must be"),
    ("cyclegan", "pool_size=-1", "pool_size"),
    ("pix2pix", "direction=sideways", "direction must be"),
    ("pix2pix", "loss=wasserstein", "loss must be one of nonsaturating, lsgan"),
    ("cyclegan", "loss=hinge", "loss must be one of nonsaturating, lsgan"),
    ("inpaint", "hole_min=0.9", "hole_min"),
    ("cgan", "width=8", "read with networks=conv only"),  # cgan defaults to conv: width is read, this passes below
    ("pix2pix", "eval.metrics=fid", "eval.metrics takes auto or none"),
])
def test_a_familys_own_settings_are_checked_when_resolved(model, setting, needle):
    from ganforge import api

    if model == "cgan":  # a conv setting on the MLP networks
        with pytest.raises(UserError, match=needle):
            api.resolve_config(model, sets=["networks=mlp", setting])
        assert api.resolve_config(model, sets=[setting]).width == 8
        return
    with pytest.raises(UserError, match=needle):
        api.resolve_config(model, sets=[setting])


def test_show_config_checks_the_familys_settings(capfd):
    from ganforge.cli import main

    assert main(["train", "dcgan", "--show-config", "--set", "d_norm=bogus"]) == 2
    assert "d_norm must be batch, spectral or none" in capfd.readouterr().err


def test_minutes_on_a_decaying_schedule_says_what_it_does(tmp_path, caplog):
    import ganforge

    with caplog.at_level("WARNING", logger="ganforge"):
        ganforge.train("cyclegan", out=str(tmp_path / "run"), minutes=0.001, progress=False,
                       set=["width=4", "n_blocks=1", "eval.metrics=none", "sample.every=0"])
    assert "decay to zero over its 4000 steps" in caplog.text and "--minutes 0.001 stops the run early" in caplog.text


def test_nested_settings_are_changed_in_place():
    cfg = resolve("dcgan", DCGAN)
    cfg.optim.G["lr"] = 1e-5
    cfg["ema"] = {"beta": 0.5, "start": 0}
    cfg.ema["start"] = 3
    assert cfg.optim.G.lr == cfg["optim"]["G"]["lr"] == 1e-5 and cfg.ema.beta == 0.5 and cfg.ema.start == 3
    assert type(cfg.to_dict()["optim"]) is dict and yaml.safe_load(config.dump(cfg))["optim"]["G"]["lr"] == 1e-5
