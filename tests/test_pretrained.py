"""Generator-only files (api.save_generator), the shipped pretrained generators (`pretrained:NAME`) and the tool
that trains them, on real short runs."""
import importlib.util
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import ganforge
from ganforge import api, cli, pretrained
from ganforge.errors import UserError
from ganforge.models import MODELS
from ganforge.models.base import Capability
from ganforge.pretrained.command import listing
from ganforge.training import checkpoint, generator_file
from ganforge.translate import translate_image
from ganforge.web.operations import generate, judge, load_entries
from ganforge.web.validation import HTTPError

ROOT = Path(__file__).resolve().parents[1]
FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]
MNIST_CREDIT = "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A DCGAN (with its EMA), a CGAN (class-conditional) and a CycleGAN (two generators), narrow and brief, and their
    generator files."""
    root = tmp_path_factory.mktemp("pretrained-runs")
    ganforge.train("dcgan", out=str(root / "dcgan"), steps=10, batch_size=16, set=[*FAST, "width=8"], progress=False)
    ganforge.train("cgan", out=str(root / "cgan"), steps=3, batch_size=16, set=[*FAST, "width=8"], progress=False)
    ganforge.train("cyclegan", out=str(root / "cyclegan"), steps=2, batch_size=4, set=[*FAST, "width=4", "n_blocks=1"],
                   progress=False)
    api.save_generator(root / "dcgan", root / "dcgan.safetensors", figures={"cfd": 12.5, "n": 100}, name="dcgan-test")
    api.save_generator(root / "dcgan", root / "dcgan32.safetensors", half=False)
    api.save_generator(root / "cgan", root / "cgan.safetensors")
    api.save_generator(root / "cyclegan", root / "cyclegan.safetensors")
    return root


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_the_file_holds_the_averaged_generator_alone_in_fp16_with_what_describes_it(runs):
    stored, meta = _tensors(runs / "dcgan.safetensors")
    ckpt, sidecar = checkpoint.load(str(runs / "dcgan"))
    assert stored and all(k.startswith("net.G.") for k in stored)
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    for key, value in stored.items():  # the EMA's weights, not the live G's
        average = ckpt["ema." + key[len("net."):]]
        assert torch.equal(value, average.half() if average.is_floating_point() else average), key
    assert (meta["format"], meta["model"], meta["name"], json.loads(meta["step"])) == ("ganforge-generator", "dcgan", "dcgan-test", 10)
    assert meta["ganforge_version"] == ganforge.__version__ and meta["licence"].startswith(MNIST_CREDIT)
    assert json.loads(meta["figures"]) == {"cfd": 12.5, "n": 100} and json.loads(meta["averaged"]) is True
    assert json.loads(meta["data"]) == sidecar["data"] and json.loads(meta["config"])["width"] == 8
    size = (runs / "dcgan.safetensors").stat().st_size
    assert size < 0.6 * (runs / "dcgan32.safetensors").stat().st_size
    assert size < 0.25 * Path(str(checkpoint.resolve(str(runs / "dcgan"))).replace(".json", ".safetensors")).stat().st_size


def test_a_generator_file_samples_as_its_run_in_fp32(runs):
    run, half, full = (api.load(p) for p in (runs / "dcgan", runs / "dcgan.safetensors", runs / "dcgan32.safetensors"))
    assert half.generator_only and full.generator_only and not run.generator_only
    assert {p.dtype for p in half.model.G.parameters()} == {torch.float32}
    assert (half.step, half.cfg, half.info) == (run.step, run.cfg, run.info)
    expected = run.sample(32, seed=3)
    assert torch.equal(full.sample(32, seed=3), expected)
    assert 0 < (half.sample(32, seed=3) - expected).abs().max() < 0.02  # fp16 weights, fp32 sampling


def test_sample_explore_and_eval_take_a_generator_file(runs, tmp_path, capsys, shared_cache):
    file = str(runs / "dcgan.safetensors")
    assert cli.main(["sample", file, "--n", "8", "--grid", str(tmp_path / "g.png"), "--npz", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].shape == (8, 28, 28, 1)
    assert cli.main(["explore", file, "interpolate", "--out", str(tmp_path / "walk.png"), "--seeds", "0,1", "--steps", "3"]) == 0
    assert (tmp_path / "g.png").is_file() and (tmp_path / "walk.png").is_file()
    assert cli.main(["sample", str(runs / "cgan.safetensors"), "--n", "4", "--label", "7", "--npz", str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as saved:
        assert saved["labels"].tolist() == [7, 7, 7, 7]
    capsys.readouterr()
    assert cli.main(["eval", str(runs / "cgan.safetensors"), "--metrics", "cfd,acc", "--n", "100", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["cfd"] > 0 and 0 <= figures["acc"] <= 1


def test_every_command_that_takes_a_run_takes_pretrained_names(tmp_path, capsys, shared_cache):
    digit = tmp_path / "digit.png"
    assert cli.main(["sample", "pretrained:dcgan-mnist5k", "--n", "4", "--grid", str(digit)]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "pretrained:dcgan-mnist5k", "--metrics", "cfd", "--n", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cfd"] > 0
    assert cli.main(["explore", "pretrained:stylegan-mnist5k", "mix", "--out", str(tmp_path / "mix.png")]) == 0
    assert cli.main(["translate", "pretrained:pix2pix-edges", str(digit), "--out", str(tmp_path / "translated")]) == 0
    assert cli.main(["project", "pretrained:dcgan-mnist5k", str(digit), "--out", str(tmp_path / "projected"),
                     "--steps", "2", "--quiet"]) == 0
    assert (tmp_path / "mix.png").is_file() and any((tmp_path / "translated").iterdir())
    assert (tmp_path / "projected" / "latents.npz").is_file()
    assert cli.main(["eval", str(tmp_path / "no-such-run")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_cyclegan_file_holds_both_generators_and_translates_both_ways(runs):
    stored, _ = _tensors(runs / "cyclegan.safetensors")
    assert {k.split(".")[1] for k in stored} == {"G", "F"}
    run, file = api.load(runs / "cyclegan"), api.load(runs / "cyclegan.safetensors")
    grey = (np.arange(28 * 28, dtype=np.uint8).reshape(28, 28, 1) * 7) % 251
    colour = np.repeat(grey, 3, axis=2)
    for direction, image in (("a2b", grey), ("b2a", colour)):
        ours, theirs = (translate_image(g, image, direction=direction).astype(int) for g in (file, run))
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 2, direction
    makes_images(file)


def test_no_discriminator_is_offered_and_asking_one_is_a_clear_line(runs):
    g = api.load(runs / "dcgan.safetensors")
    with pytest.raises(UserError, match="holds the generator only: it has no discriminator \\(D\\)"):
        g.model.judge(g.sample(2))
    on_file, on_run = load_entries([str(runs / "dcgan.safetensors"), str(runs / "dcgan")], "cpu")
    assert (on_file.name, on_file.run) == ("dcgan", None) and on_file.caps["generate"]
    assert on_run.caps["discriminate"] and not on_file.caps["discriminate"]
    assert generate(on_file, {"seed": 1, "rows": 2})["n"] == 4
    digit = np.zeros((28, 28, 1), dtype=np.uint8)
    with pytest.raises(HTTPError, match="no discriminator to ask \\(this file holds the generator only"):
        judge(on_file, lambda side: digit, {})
    assert "score" in judge(on_run, lambda side: digit, {})


def test_damaged_or_foreign_files_are_refused_in_one_line(runs, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((runs / "dcgan.safetensors").read_bytes()[:5000])
    with pytest.raises(UserError, match="cut.safetensors"):
        api.load(cut)
    stored, meta = _tensors(runs / "dcgan.safetensors")
    del meta["config"]
    save_file(stored, str(tmp_path / "noconfig.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="incomplete generator file \\(no config"):
        api.load(tmp_path / "noconfig.safetensors")
    meta = {**_tensors(runs / "dcgan.safetensors")[1], "format_version": "99"}
    save_file(stored, str(tmp_path / "future.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="generator format 99.*upgrade ganforge"):
        api.load(tmp_path / "future.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(UserError, match="not a ganforge checkpoint"):
        api.load(tmp_path / "foreign.safetensors")


# --- the catalogue and pretrained:NAME ------------------------------------------------------------------------
def makes_images(g) -> None:
    """A loaded model makes finite images: samples from noise, or one translation of a plain grey image."""
    model = g.model
    if not model.translates:
        images = g.sample(4)
        assert images.shape[0] == 4 and torch.isfinite(images).all()
        return
    image = np.full((model.size, model.size, model.input_channels(model.directions[0])), 128, np.uint8)
    mask = np.ones(image.shape[:2], bool) if model.can(Capability.MASK) else None
    attrs = {} if model.can(Capability.ATTRIBUTES) else None
    out = translate_image(g, image, mask=mask, attrs=attrs)
    assert out.dtype == np.uint8 and out.shape[0] == model.size * model.scale


@pytest.mark.parametrize("entry", pretrained.shipped(), ids=lambda e: e.name)
def test_every_shipped_file_fits_loads_and_makes_images(entry):
    assert entry.file().stat().st_size <= pretrained.MAX_FILE_BYTES
    g = api.load(f"pretrained:{entry.name}")
    assert g.generator_only and g.meta["model"] == entry.family and g.meta["licence"] == entry.licence
    makes_images(g)


def test_every_catalogue_entry_ships_the_files_fit_together_and_each_has_its_figures():
    assert [entry.name for entry in pretrained.shipped()] == list(pretrained.CATALOGUE)
    files = [entry.file() for entry in pretrained.shipped()]
    assert sum(p.stat().st_size for p in files) <= pretrained.MAX_TOTAL_BYTES
    recorded = pretrained.figures()
    assert all(entry.name in recorded for entry in pretrained.shipped())


def test_every_catalogue_entry_is_a_command_that_parses():
    parser = cli.build_parser("")
    for entry in pretrained.CATALOGUE.values():
        assert entry.family in MODELS, entry.name
        words = shlex.split(entry.command())
        args = parser.parse_args(words[1:])
        assert (args.model, args.data, args.steps, args.seed) == (entry.family, entry.data, entry.steps, entry.seed)
        assert entry.licence and "not recorded" not in entry.licence, entry.name


def test_pretrained_names_resolve_or_say_which_there_are(runs, tmp_path, capsys):
    with pytest.raises(UserError, match="no pretrained model 'dcgan': did you mean pretrained:dcgan-mnist5k or pretrained:dcgan-openmoji64"):
        pretrained.find("dcgan")
    with pytest.raises(UserError, match="did you mean pretrained:stylegan-mnist5k\\?"):
        pretrained.find("stylgan-mnist5k")
    (tmp_path / "dcgan-mnist5k.safetensors").write_bytes((runs / "dcgan.safetensors").read_bytes())
    assert pretrained.find("dcgan-mnist5k", folder=tmp_path) == tmp_path / "dcgan-mnist5k.safetensors"
    with pytest.raises(UserError, match="'cgan-mnist5k' is in the catalogue but its file does not ship"):
        pretrained.find("cgan-mnist5k", folder=tmp_path)
    text = listing(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("dcgan-mnist5k"))
    assert "dcgan" in row and "mnist5k" in row and "28 px" in row and "0.0 MB" not in row and "cfd 12.5 at step 10" in row
    assert "not shipped yet: cgan-mnist5k" in text
    assert cli.main(["sample", "pretrained:nosuch"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main(["pretrained"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in pretrained.CATALOGUE)


def _tool():
    spec = importlib.util.spec_from_file_location("train_pretrained", ROOT / "tools" / "train_pretrained.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tool_skips_a_family_that_is_not_registered(capsys):
    tool = _tool()
    assert not tool.registered(pretrained.Pretrained("later-mnist5k", "nosuchfamily", "mnist5k", 10))
    assert "skipped later-mnist5k: the nosuchfamily family is not registered" in capsys.readouterr().out
    with pytest.raises(UserError, match="--only: no catalogue entry nosuch"):
        tool.chosen(["nosuch"])


def test_the_tool_trains_an_entry_and_records_its_own_figures(tmp_path, capsys):
    assert _tool().main(["--only", "dcgan-mnist5k", "--steps", "3", "--set", "width=8", "eval.n=100", "threads=1",
                         "--quiet", "--dest", str(tmp_path / "dest"), "--runs", str(tmp_path / "runs")]) == 0
    assert "3 steps" in capsys.readouterr().out
    record = json.loads((tmp_path / "dest" / "figures.json").read_text())["dcgan-mnist5k"]
    assert record["steps"] == 3 and "--steps 3" in record["command"] and "width=8" in record["command"]
    meta = generator_file.read_meta(tmp_path / "dest" / "dcgan-mnist5k.safetensors")
    assert meta["figures"] == record["figures"] and record["figures"]["cfd"] > 0 and meta["step"] == 3
    assert meta["command"] == record["command"] and record["bytes"] == (tmp_path / "dest" / "dcgan-mnist5k.safetensors").stat().st_size


@pytest.mark.skipif(not pretrained.shipped(), reason="no pretrained file ships yet")
def test_the_page_serves_every_shipped_noise_model_by_name_at_once():
    """`ganforge serve pretrained:NAME`: the page lists each model and draws from it, with no training and no network."""
    from support_web import call, request, serving

    names = [f"pretrained:{e.name}" for e in pretrained.shipped() if not MODELS[e.family].translates]
    with serving(names) as (url, _):
        status, _, page = request(url + "/")
        assert status == 200 and b"<html" in page.lower()
        status, listed = call(f"{url}/api/models")
        assert status == 200 and len(listed["models"]) == len(names)
        for index in range(len(names)):
            status, reply = call(f"{url}/api/models/{index}/generate", {"seed": 1, "rows": 2})
            assert status == 200 and reply["image"].startswith("data:image/png;base64,"), names[index]
