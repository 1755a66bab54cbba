"""Adding a family is one file plus a registry line: a throwaway family defined here (registered for this module,
removed afterwards) trains, checkpoints, resumes, loads and samples, and the front ends (`ganforge sample`, the web
page's operations, `ganforge explore`) offer what it declares and refuse what it does not. Every registered
family's declaration comes with its methods, and each family's D gives its verdict through `judge`."""
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
from ganforge import api, cli, losses
from ganforge.data import load_dataset
from ganforge.data.base import to_float
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.explore import Explorer
from ganforge.models import MODELS, GANModel, get_model, register
from ganforge.models.base import LOGIT_LOSSES, Capability, check_psi
from ganforge.nn.mlp import MLPDiscriminator, MLPGenerator
from ganforge.training import checkpoint

from conftest import FAST
from support_web import call, decode, grid_of, serving

# The methods a capability promises; the base class's defaults say "not supported".
SERVED_BY = {
    Capability.TRUNCATION: ("truncate",),
    Capability.STYLE_MIXING: ("mix", "styles", "synthesize", "style_slots"),
    Capability.ATTRIBUTES: ("read_attributes",),
}


class Toy(GANModel):
    """The throwaway family: MLP G and D, and the truncation trick in Z."""

    name = "toy-contract"
    paper = "none: a test's own family"
    summary = "MLP G and D that declare the truncation trick"
    capabilities = GANModel.capabilities | {Capability.TRUNCATION}
    defaults = {"z_dim": 8, "hidden_g": [32], "hidden_d": [32], "batch_size": 16}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        shape = (self.channels, self.size, self.size)
        self.G, self.D = MLPGenerator(cfg.z_dim, shape, cfg.hidden_g), MLPDiscriminator(shape, cfg.hidden_d)

    def d_step(self, batch, ctx):
        fake, _ = self.make_fake(batch["image"].shape[0], batch["image"].device, ctx)
        d_real, d_fake = self.score_pair(batch["image"], fake)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}

    @torch.no_grad()
    def truncate(self, z, psi, labels=None, nets=None):
        return (nets or {}).get("G", self.G)(check_psi(psi) * z, labels)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The registered family and a 4-step run of it."""
    register(Toy)
    try:
        out = tmp_path_factory.mktemp("toy") / "run"
        summary = ganforge.train(Toy.name, steps=4, out=str(out), set=FAST, progress=False)
        yield out, summary
    finally:
        MODELS.pop(Toy.name, None)


def truncated(model, seed: int, n: int, psi: float) -> torch.Tensor:
    """What the truncation trick draws for seed: G(psi * z) of the seed's latents."""
    with torch.no_grad():
        return model.G(psi * model.latent(n, torch.Generator().manual_seed(seed)), None)


def test_a_family_of_one_file_trains_checkpoints_resumes_loads_and_samples(toy, tmp_path):
    out, summary = toy
    assert summary["step"] == 4 and Path(summary["checkpoint"]).is_file()
    g = ganforge.load(out)
    assert isinstance(g.model, Toy) and g.step == 4 and g.model.needs is Kind.IMAGES
    tensors, _ = checkpoint.load(summary["checkpoint"])
    assert all(torch.equal(tensors[f"net.G.{k}"], v) for k, v in g.model.G.state_dict().items())
    images = g.sample(8, seed=3)
    assert images.shape == (8, 1, 28, 28) and images.abs().max() <= 1
    assert torch.equal(images, g.sample(8, seed=3)) and not torch.equal(images, g.sample(8, seed=4))
    # Two steps, then two more in a new run of the command: the same tensors as four straight.
    half = tmp_path / "half"
    ganforge.train(Toy.name, steps=2, out=str(half), set=FAST, progress=False)
    resumed = ganforge.train(Toy.name, steps=4, out=str(half), set=FAST, resume=True, progress=False)
    again, _ = checkpoint.load(resumed["checkpoint"])
    assert sorted(again) == sorted(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)


def test_the_truncation_it_declares_reaches_sample_and_the_command_line(toy, tmp_path):
    out, _ = toy
    g = ganforge.load(out)
    assert torch.allclose(g.sample(8, seed=3, truncation=0.5), truncated(g.model, 3, 8, 0.5), atol=1e-6)
    assert cli.main(["sample", str(out), "--n", "4", "--truncation", "0.5", "--grid", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").is_file()
    with pytest.raises(UserError, match="truncation must be in"):
        g.sample(4, truncation=1.5)


def test_the_page_offers_what_it_declares(toy):
    out, _ = toy
    model = ganforge.load(out).model
    with serving([out]) as (url, _):
        info = call(f"{url}/api/models")[1]["models"][0]
        caps = info["capabilities"]
        assert info["model"] == Toy.name and info["needs"] == "images"
        assert caps["generate"] and caps["interpolate"] and caps["truncation"] and caps["discriminate"]
        assert not (caps["mix"] or caps["translate"] or caps["classes"] or caps["judge_as_class"] or caps["predicts_class"])
        status, r = call(f"{url}/api/models/0/generate", {"seed": 5, "rows": 2, "truncation": 0.5})
        assert status == 200 and np.array_equal(decode(r["image"]), grid_of(truncated(model, 5, 4, 0.5), 2))
        status, r = call(f"{url}/api/models/0/discriminate?example=1", body=b"")  # the plain head: a logit of "real"
        assert status == 200 and r["p_real"] == pytest.approx(1 / (1 + np.exp(-r["score"])), abs=1e-3)
        status, r = call(f"{url}/api/models/0/mix", {"levels": ["coarse"]})
        assert status == 400 and "style mixing is not available" in r["error"]


def test_explore_offers_what_it_declares(toy, tmp_path, capsys):
    out, _ = toy
    assert not Explorer(ganforge.load(out)).has_styles
    strip = tmp_path / "strip.png"
    assert cli.main(["explore", str(out), "interpolate", "--out", str(strip), "--seeds", "0,1", "--steps", "3",
                     "--truncation", "0.5"]) == 0
    assert strip.is_file()
    capsys.readouterr()
    for what, words in ((["mix"], "has no styles to mix"), (["interpolate", "--space", "w"], "has no W space")):
        assert cli.main(["explore", str(out), *what, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err


def test_the_family_is_listed_while_registered_and_the_template_never(toy, capsys):
    assert cli.main(["models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert Toy.name in names and "template" not in names


def test_the_template_trains_as_written_once_registered(tmp_path):
    from ganforge.models.template import TemplateGAN

    assert TemplateGAN.name not in MODELS  # importing it registers nothing
    register(TemplateGAN)
    try:
        ganforge.train(TemplateGAN.name, steps=2, out=str(tmp_path / "run"), set=[*FAST, "hidden_g=[16]", "hidden_d=[16]"],
                       progress=False)
        g = ganforge.load(tmp_path / "run")
        assert torch.allclose(g.sample(4, seed=1, truncation=0.7), truncated(g.model, 1, 4, 0.7), atol=1e-6)
    finally:
        MODELS.pop(TemplateGAN.name, None)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_declared_capability_comes_with_its_methods(name):
    cls = get_model(name)
    assert isinstance(cls.needs, Kind) and all(isinstance(c, Capability) for c in cls.capabilities)
    for capability, methods in SERVED_BY.items():
        if capability in cls.capabilities:
            assert all(getattr(cls, m) is not getattr(GANModel, m) for m in methods), (name, capability)
    assert Capability.JUDGE in cls.capabilities  # every family's D can be asked


# Narrow networks, as tools/training_fingerprint.py builds them.
TINY = {
    "gan": ["hidden_g=[16,32]", "hidden_d=[32,16]"], "stargan": ["width=4", "n_blocks=1"],
    "cyclegan": ["width=4", "n_blocks=1"], "srgan": ["width=4", "n_blocks=1"],
    "stylegan": ["width=4", "max_width=8", "z_dim=8", "w_dim=8"],
}


def judged(model, data, n: int = 4):
    """The family's D on n images of its own kind (and the inputs its D pairs them with)."""
    a = to_float(data.images[:n])
    b = None if data.images_b is None else to_float(data.images_b[:n])
    if not model.translates:
        return model.judge(model.sample(n))
    if model.name in ("pix2pix", "inpaint"):
        with pytest.raises(UserError, match="judges \\(input, output\\) pairs"):
            model.judge(a)
        source, target = model.source_target({"image": a} if b is None else {"image": a, "image_b": b})
        return model.judge(target, source=source)
    if model.name == "cyclegan":
        assert model.judge(a, side="a").score.shape == (n,)
    return model.judge(b if b is not None else a)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_family_judges_with_its_own_head(name):
    cls = get_model(name)
    cfg = api.resolve_config(name, sets=TINY.get(name, ["width=4"]))
    data = load_dataset(cfg.data, size=cfg.size, needs=cls.needs)
    model = cls(cfg, data.info()).eval()
    torch.manual_seed(0)
    verdict = judged(model, data)
    assert verdict.score.shape == (4,) and torch.isfinite(verdict.score).all()
    if cfg.loss in LOGIT_LOSSES:  # a probability only where D's output is a logit of "real"
        assert torch.allclose(verdict.probability, torch.sigmoid(verdict.score))
    else:
        assert verdict.probability is None
    if model.can(Capability.JUDGE_AS_CLASS):
        assert verdict.as_class.shape == (4, model.n_classes)
        assert torch.equal(verdict.score, verdict.as_class.amax(dim=1))
        images = model.sample(4)
        as_three = model.judge(images, torch.full((4,), 3))
        assert torch.allclose(as_three.score, as_three.as_class[:, 3])
    if model.can(Capability.CLASSIFY):
        assert torch.allclose(verdict.class_probabilities.sum(dim=1), torch.ones(4))
    if model.can(Capability.ATTRIBUTES):
        probabilities = verdict.attribute_probabilities
        assert probabilities.shape == (4, len(model.attribute_names)) and ((probabilities >= 0) & (probabilities <= 1)).all()
