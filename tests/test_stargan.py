"""StarGAN: its networks at several sizes, the attribute subset and exclusive groups, targets built from requests,
the losses of one training iteration, exact resume, how its figures judge translations, and `ganforge translate`
with --attrs and --all-domains on a trained run."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import api, cli, losses
from ganforge.data import load_dataset
from ganforge.data.attributes import render
from ganforge.data.base import ImageData, to_float, to_uint8
from ganforge.data.mnist5k import mnist5k
from ganforge.errors import UserError
from ganforge.features.attribute_classifier import read_attributes
from ganforge.metrics.digits import digit_metrics, ink
from ganforge.metrics.translation import translation_figures
from ganforge.models import StepContext
from ganforge.models.stargan import StarGAN
from ganforge.translate import parse_attrs
from ganforge.nn.stargan import StarDiscriminator, StarGenerator, d_layers
from ganforge.training import checkpoint
from ganforge.metrics.training import run_figures
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files

FAST = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]
TINY = ["width=4", "d_width=8", "n_blocks=1"]
NAMES = ["red", "green", "blue", "thick", "grey_bg"]


def attrs_subset(n: int = 48, split: str = "train") -> ImageData:
    """n images of mnist5k-attrs spread over the set."""
    data = load_dataset("mnist5k-attrs" if split == "train" else "mnist5k-attrs-test", needs="attributes")
    idx = torch.arange(n) * len(data) // n
    data.images, data.attributes = data.images[idx].clone(), data.attributes[idx].clone()
    data.labels = None if data.labels is None else data.labels[idx].clone()
    return data


def model_for(sets=(), info=None) -> StarGAN:
    cfg = api.resolve_config("stargan", sets=[*TINY, *sets])
    return StarGAN(cfg, info or attrs_subset(8).info())


def trainer_for(out, sets=(), steps: int = 2, batch_size: int = 8) -> Trainer:
    cfg = api.resolve_config("stargan", sets=[*FAST, *TINY, *sets], out=str(out), steps=steps, batch_size=batch_size)
    return Trainer(cfg, Path(out), progress=False, data=attrs_subset(), measure=run_figures)


# --- networks ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,layers,side", [(28, 3, 3), (32, 4, 2), (64, 5, 2), (128, 6, 2), (256, 7, 2)])
def test_discriminator_heads_at_each_size(size, layers, side):
    assert d_layers(size) == layers  # the paper's six at 128 px: a 2 x 2 map (table 5)
    D = StarDiscriminator(3, 5, size, 8, layers)
    src, cls = D(torch.randn(2, 3, size, size))
    assert src.shape == (2, 1, side, side) and cls.shape == (2, 5)
    _, larger = D(torch.randn(2, 3, 2 * size, 2 * size))  # a larger input: the mean of its logit maps
    assert larger.shape == (2, 5)


@pytest.mark.parametrize("shape", [(28, 28), (64, 64), (37, 53)])
def test_generator_keeps_any_size_and_sees_the_target(shape):
    torch.manual_seed(0)
    G = StarGenerator(3, 5, 4, 1)
    x = torch.rand(2, 3, *shape) * 2 - 1
    a = G(x, torch.tensor([[1.0, 0, 0, 0, 0]] * 2))
    b = G(x, torch.tensor([[0.0, 1, 0, 1, 0]] * 2))
    assert a.shape == (2, 3, *shape) and a.abs().max() <= 1
    # the constant target planes must survive instance norm: an untrained G already answers to them
    assert (a - b).abs().mean() > 1e-3


# --- attributes, groups and targets ----------------------------------------------------------------------------

def test_attribute_subset_picks_the_data_columns_and_drops_a_broken_group():
    model = model_for(["attrs=[thick,red]"])
    assert model.attribute_names == ["thick", "red"] and model.attribute_groups == []  # red alone is no group
    data = attrs_subset(8)
    batch = {"image": to_float(data.images), "attributes": data.attributes}
    _, c = model.real(batch)
    assert torch.equal(c, data.attributes[:, [3, 0]])
    assert model.G.encoder[0].in_channels == 3 + 2 and model.D.cls.out_channels == 2


@pytest.mark.parametrize("sets,message", [
    (["attrs=[red,purple]"], "attrs: 'purple' is not an attribute of 'mnist5k-attrs'"),
    (["attrs=[red,red]"], "attrs names 'red' twice"),
    (["groups=[[thick,bold]]"], "groups: 'bold' is not an attribute of the data"),
    (["groups=[[blue,thick]]"], "groups: 'blue' is in two exclusive groups"),
    (["groups=[thick]"], "groups: each group is a list of attribute names"),
])
def test_bad_attribute_settings_are_refused(sets, message):
    with pytest.raises(UserError, match=re.escape(message)):
        model_for(sets)


def test_more_groups_can_be_declared():
    model = model_for(["groups=[[thick,grey_bg]]"])
    assert model.attribute_groups == [["red", "green", "blue"], ["thick", "grey_bg"]]


def test_settings_apply_with_exclusive_groups():
    model = model_for()
    green_thick = torch.tensor([[0.0, 1, 0, 1, 0]])
    assert model.apply_settings(green_thick, {"red": 1}).tolist() == [[1, 0, 0, 1, 0]]  # red clears green
    assert model.apply_settings(green_thick, {"thick": 0, "grey_bg": 1}).tolist() == [[0, 1, 0, 0, 1]]
    assert model.apply_settings(green_thick, {"green": 0, "blue": 1}).tolist() == [[0, 0, 1, 1, 0]]
    with pytest.raises(UserError, match="unknown attribute 'thik' \\(did you mean 'thick'\\?\\); this stargan model's attributes: red, green"):
        model.apply_settings(green_thick, {"thik": 1})
    with pytest.raises(UserError, match="red and blue are both set to 1, but red, green, blue exclude one another"):
        model.apply_settings(green_thick, {"red": 1, "blue": 1})


@pytest.mark.parametrize("text,message", [
    ("red", "--attrs expects NAME=0 or NAME=1 pairs"), ("red=2", "got 'red=2'"), ("red=1,,thick=0", "got ''"),
    ("red=1,red=0", "--attrs names 'red' twice"),
])
def test_attrs_text_is_checked(text, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_attrs(text)


def test_parse_attrs_reads_pairs():
    assert parse_attrs(" red=1, thick=0 ") == {"red": 1, "thick": 0}


def test_flips_change_one_attribute_each():
    model = model_for()
    c = torch.tensor([[0.0, 1, 0, 1, 0], [1.0, 0, 0, 0, 1]])
    flips = model.flips(c)
    assert flips.shape == (5, 2, 5)
    assert flips[0].tolist() == [[1, 0, 0, 1, 0], [1, 0, 0, 0, 1]]  # red: set, green cleared; already red: unchanged
    assert flips[3].tolist() == [[0, 1, 0, 0, 0], [1, 0, 0, 1, 1]]  # thick toggled
    assert torch.all(flips[:, :, :3].sum(dim=2) == 1)  # every target keeps one colour


def test_all_domains_respect_the_groups():
    model = model_for()
    vectors, names = model.all_domains()
    assert vectors.shape == (12, 5) and len(set(map(tuple, vectors.tolist()))) == 12
    assert torch.all(vectors[:, :3].sum(dim=1) == 1)
    assert names[0] == "red" and names[-1] == "blue+thick+grey_bg"
    many = ImageData(name="many", images=torch.zeros(1, 3, 28, 28, dtype=torch.uint8), attributes=torch.zeros(1, 7),
                     attribute_names=[f"a{i}" for i in range(7)])
    with pytest.raises(UserError, match="128 domains, more than 64"):
        model_for(info=many.info()).all_domains()


def test_d_cls_reading_keeps_at_most_one_group_member():
    """Data no shipped classifier knows is read by D_cls: over 1/2, and one member of a group at most."""
    data = ImageData(name="faces", images=torch.zeros(4, 3, 28, 28, dtype=torch.uint8), attributes=torch.zeros(4, 3),
                     attribute_names=["Black_Hair", "Blond_Hair", "Male"], attribute_groups=[["Black_Hair", "Blond_Hair"]])
    model = model_for(info=data.info())
    assert not model.judged
    with torch.no_grad():  # a D whose features are all 1 and whose D_cls is sure of both hair colours, unsure of Male
        for conv in (model.D.trunk[0], model.D.trunk[2]):
            conv.weight.zero_()
            conv.bias.fill_(1.0)
        model.D.cls.weight.zero_()
        model.D.cls.weight[:2, :, 0, 0] = 1.0
    read = model.read_attributes(torch.zeros(4, 3, 28, 28))
    assert read.tolist() == [[1, 0, 0]] * 4


# --- training ---------------------------------------------------------------------------------------------------

def test_one_iteration_losses_and_targets(tmp_path):
    trainer = trainer_for(tmp_path)
    model = trainer.model
    batch = trainer.sampler.next()
    ctx = StepContext(step=0)
    out = model.step("D", batch, ctx)
    assert set(out) == {"loss", "adv", "cls", "gp"} and all(torch.isfinite(v) for v in out.values())
    x, c_org, c_trg, fake = ctx.cache["fake"]
    # targets are the batch's own attribute vectors shuffled: valid combinations only
    assert sorted(map(tuple, c_trg.tolist())) == sorted(map(tuple, c_org.tolist()))
    assert fake.requires_grad  # kept for the G step
    expected_cls = torch.nn.functional.binary_cross_entropy_with_logits(model.D(x)[1], c_org)
    assert torch.allclose(out["cls"], expected_cls, atol=1e-5)
    g = model.step("G", batch, ctx)
    assert "fake" not in ctx.cache  # reused, not regenerated
    with torch.no_grad():
        rec = losses.l1(model.G(fake, c_org), x)
        cls = torch.nn.functional.binary_cross_entropy_with_logits(model.D(fake)[1], c_trg)
        identity = losses.l1(model.G(x, c_org), x)  # asked for its own attributes, the input comes back
    assert torch.allclose(g["rec"], rec, atol=1e-5) and torch.allclose(g["cls"], cls, atol=1e-5)
    assert torch.allclose(g["id"], identity, atol=1e-5)
    assert torch.allclose(g["loss"], g["adv"] + 1.0 * g["cls"] + 10.0 * g["rec"] + 5.0 * g["id"], atol=1e-4)
    paper = trainer_for(tmp_path / "paper", sets=["lambda_id=0"]).model  # the paper's losses: no identity term
    assert "id" not in paper.step("G", batch, StepContext(step=0))


def test_resume_is_bit_exact(tmp_path):
    """Shuffled targets, the gradient penalty's random points and the decaying learning rate all continue
    exactly after a run of 6 steps is interrupted at step 3."""
    straight = trainer_for(tmp_path / "straight", steps=6)
    straight.fit()
    first = trainer_for(tmp_path / "resumed", steps=6)
    while first.step < 3:  # the loop of Trainer.fit, cut short
        first._iteration({})
        first.step += 1
    first.save_checkpoint()
    cfg = api.resolve_config("stargan", sets=[*FAST, *TINY], out=str(tmp_path / "resumed"), steps=6, batch_size=8, resume=True)
    resumed = Trainer(cfg, tmp_path / "resumed", resume=True, progress=False, data=attrs_subset())
    resumed.fit()
    a, _ = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1]))
    b, _ = checkpoint.load(str(checkpoint.list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][1]))
    assert set(a) == set(b) and any(k.startswith("net.D.cls") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.optimizers["G"].param_groups[0]["lr"] == 0.0


# --- figures ------------------------------------------------------------------------------------------------------

def test_shipped_classifiers_read_the_real_held_out_images():
    test = load_dataset("mnist5k-attrs-test")
    x = to_float(test.images)
    read = read_attributes(x)
    assert (read == test.attributes).all(dim=1).float().mean() > 0.97
    assert digit_metrics(ink(x), test.labels)["accuracy"] > 0.95  # the digit survives its colours


class Oracle(torch.nn.Module):
    """A perfect generator for the held-out set: it looks its input up and draws that digit with the target."""

    def __init__(self):
        super().__init__()
        self.keys = {bytes(img.numpy()): i for i, img in enumerate(load_dataset("mnist5k-attrs-test").images)}
        self.digits = mnist5k("test").images  # the same held-out digits, undrawn
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, x, c):
        index = [self.keys[bytes(img.numpy())] for img in to_uint8(x)]
        return to_float(render(self.digits[index], c))


def test_training_logs_the_figures_on_held_out_digits(tmp_path):
    trainer = trainer_for(tmp_path, sets=["eval.metrics=auto", "eval.n=40"])
    record = trainer.evaluate()  # what every eval.every steps and the end of a run write
    assert record["n"] == 40 and {"attr_acc", "attr_all", "digit_acc"} <= set(record)
    assert all(0 <= record[k] <= 1 for k in ("attr_acc", "attr_all", "digit_acc"))
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["kind"] == "eval"


def test_quality_scores_a_perfect_and_a_lazy_generator():
    test = attrs_subset(200, "test")
    model = model_for(info=load_dataset("mnist5k-attrs", needs="attributes").info())
    model.G = Oracle()
    perfect = translation_figures(model.translations(test))
    assert set(perfect) == {"attr_acc", "attr_all", "digit_acc"}
    assert perfect["attr_acc"] > 0.97 and perfect["attr_all"] > 0.95 and perfect["digit_acc"] > 0.93

    class Lazy(Oracle):  # returns its input: keeps every digit, changes no attribute
        def forward(self, x, c):
            return x

    model.G = Lazy()
    lazy = translation_figures(model.translations(test))
    assert lazy["attr_acc"] < 0.05 and lazy["attr_all"] < 0.05 and lazy["digit_acc"] > 0.95


def test_no_figures_for_data_the_classifier_does_not_know():
    data = ImageData(name="faces", images=torch.zeros(4, 3, 28, 28, dtype=torch.uint8), attributes=torch.zeros(4, 2),
                     attribute_names=["Male", "Young"])
    assert model_for(info=data.info()).translations(data) == {}


# --- a trained run, and translate ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stargan_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "stargan"
    trainer_for(out, steps=3).fit()
    return out


@pytest.fixture()
def digit_png(tmp_path) -> Path:
    path = tmp_path / "in" / "seven.png"
    path.parent.mkdir()
    test = load_dataset("mnist5k-attrs-test")
    Image.fromarray(test.images[700].permute(1, 2, 0).numpy()).save(path)
    return path


def test_translate_attrs_writes_the_translation(stargan_run, digit_png, tmp_path):
    written = translate_files(stargan_run, [digit_png], tmp_path / "out", attrs="red=1,thick=0")
    g = api.load(stargan_run)
    image = torch.from_numpy(np.array(Image.open(digit_png))).permute(2, 0, 1)[None]
    x = to_float(image)
    target = g.model.target_for(x, {"red": 1, "thick": 0})
    assert target[0, :4].tolist() == [1, 0, 0, 0]
    assert target[0, 4] == read_attributes(x)[0, 4]  # not named: the input's own, as the classifier reads it
    with torch.no_grad():
        expected = to_uint8(g.model.translate_attrs(x, target))[0].permute(1, 2, 0).numpy()
    assert written == [tmp_path / "out" / "seven.png"]
    assert np.array_equal(np.array(Image.open(written[0])), expected)


def test_translate_all_domains_writes_one_grid(stargan_run, digit_png, tmp_path, caplog):
    code = cli.main(["translate", str(stargan_run), str(digit_png), "--out", str(tmp_path / "grid"), "--all-domains"])
    assert code == 0
    grid = np.array(Image.open(tmp_path / "grid" / "seven.png"))
    assert grid.shape == (2 + 30, 2 + 13 * 30, 3)  # the input and 12 domains, 28 px with 2 px gaps
    assert "each grid: input | red | red+grey_bg | red+thick" in caplog.text
    original = np.array(Image.open(digit_png))
    assert np.array_equal(grid[2:30, 2:30], original)


@pytest.mark.parametrize("args,message", [
    (["--attrs", "purple=1"], "unknown attribute 'purple'"),
    (["--attrs", "red=1,green=1"], "red and green are both set to 1"),
    (["--attrs", "red=yes"], "--attrs expects NAME=0 or NAME=1"),
    ([], "needs its targets: --attrs NAME=0|1,... (attributes: red, green, blue, thick, grey_bg) or --all-domains"),
    (["--attrs", "red=1", "--all-domains"], "or --all-domains, one of the two"),
])
def test_translate_refuses_bad_targets_in_one_line(stargan_run, digit_png, tmp_path, capsys, args, message):
    code = cli.main(["translate", str(stargan_run), str(digit_png), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_preview_shows_every_single_attribute_change(stargan_run):
    g = api.load(stargan_run)
    batch = {"image": to_float(attrs_subset(3).images)}
    with torch.no_grad():
        images, per_row = g.model.preview(batch)
    assert per_row == 6 and images.shape == (18, 3, 28, 28)
    assert torch.equal(images[0], batch["image"][0])
    assert (Path(stargan_run) / "samples" / "step_000003.png").exists()


def test_attrs_are_refused_for_other_models(tmp_path, digit_png):
    from ganforge.data.derived import load as load_derived

    data = load_derived("mnist5k-edges")
    data.images, data.images_b = data.images[:16].clone(), data.images_b[:16].clone()
    cfg = api.resolve_config("pix2pix", sets=[*FAST, "width=4"], out=str(tmp_path / "p"), steps=1, batch_size=4)
    Trainer(cfg, tmp_path / "p", progress=False, data=data).fit()
    with pytest.raises(UserError, match="--attrs and --all-domains are for attribute models"):
        translate_files(tmp_path / "p", [digit_png], tmp_path / "o", attrs="red=1")


@pytest.mark.slow
def test_default_recipe_reaches_its_figures(tmp_path):
    """The default run on mnist5k-attrs: on the held-out digits, translations carry the asked attribute and keep
    their digit at least 90% of the time."""
    ganforge.train("stargan", out=str(tmp_path / "run"), set=["eval.metrics=none"], progress=False)
    with torch.no_grad():
        m = translation_figures(api.load(tmp_path / "run").model.translations(load_dataset("mnist5k-attrs-test")))
    assert m["attr_acc"] >= 0.9 and m["digit_acc"] >= 0.9, m


def test_the_discriminator_stops_widening_at_the_papers_top_width():
    """Table 5's D tops out at 2,048 channels at 128 px; at 256 px a seventh layer would double it to 4,096."""
    from ganforge import api
    from ganforge.models import get_model

    info = {"channels": 3, "size": 256, "name": "faces", "attribute_names": ["a", "b"]}
    capped = get_model("stargan")(api.resolve_config("stargan", sets=["width=4", "n_blocks=1"]), info)
    widths = [m.out_channels for m in capped.D.trunk if isinstance(m, torch.nn.Conv2d)]
    assert len(widths) == 7 and max(widths) == 2048 and widths[:6] == [64, 128, 256, 512, 1024, 2048]
    uncapped = get_model("stargan")(api.resolve_config("stargan", sets=["width=4", "n_blocks=1", "d_max_width=0"]), info)
    assert max(m.out_channels for m in uncapped.D.trunk if isinstance(m, torch.nn.Conv2d)) == 4096
