"""What a GAN family is to the trainer: networks, named phases, and how to sample.

The trainer runs a model's phases in order every iteration. A phase names the optimiser it steps, how
many times it repeats (n_critic for the discriminator) and which networks it holds frozen; the model's
`step(phase, batch, ctx)` returns a dict of scalar losses whose "loss" entry the trainer backpropagates.
Everything else (optimisers, schedules, EMA, checkpoints, logging, devices) is the trainer's.

Fake reuse: within one iteration the generator does not change between the last discriminator step and
the generator step, so the last D step makes its fake batch with the graph kept, scores it detached, and
leaves it in `ctx.cache`; the G step then backpropagates through that same batch instead of running G
again. Earlier critic steps (n_critic > 1) generate under no_grad.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ganforge import losses
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.models.recipe import Rung
from ganforge.nn.augment import ADA, build_augment, policy_ops

Tensor = torch.Tensor


# The checkpoint's key schema: "net.NAME.KEY" for the trained modules, "ema.NAME.KEY" for their averages.
LIVE, AVERAGED = "net", "ema"


def module_tensors(modules: Dict[str, nn.Module], source: str = LIVE) -> Dict[str, Tensor]:
    """The tensors a checkpoint stores for named modules (a model's, or their EMA copies with source "ema")."""
    return {f"{source}.{name}.{key}": value for name, module in modules.items() for key, value in module.state_dict().items()}


def load_module_tensors(modules: Dict[str, nn.Module], tensors: Dict[str, Tensor], sources: Tuple[str, ...] = (LIVE,),
                        where: str = "the checkpoint", model: str = "") -> Dict[str, str]:
    """Load each named module from the first of `sources` that the tensors hold it under -> {name: source}.
    A module the tensors lack is left as it is; one that does not fit is one UserError line."""
    loaded = {}
    for name, module in modules.items():
        for source in sources:
            prefix = f"{source}.{name}."
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            if state:
                try:
                    module.load_state_dict(state)
                except RuntimeError:
                    raise UserError(f"{where}'s {name} does not fit this {model + ' ' if model else ''}configuration (different sizes or settings)") from None
                loaded[name] = source
                break
    return loaded


class Capability(Enum):
    """What a family can do beyond training and its kind (`translates`, `needs`). A family declares its own in
    `capabilities`; front ends ask `model.can(...)`. Each names the methods that serve it, whose defaults in
    GANModel say "not supported"."""

    TRUNCATION = "truncation"  # truncate(z, psi, labels), sample(..., truncation=psi): the truncation trick
    STYLE_MIXING = "style_mixing"  # mix(z_a, z_b, levels, labels), styles(z, psi), synthesize(ws), style_slots(), style_space
    MASK = "mask"  # translation fills the hole that a mask channel of the input marks (inpainting)
    ATTRIBUTES = "attributes"  # translation into target attributes: read_attributes, check_settings, target_for
    JUDGE = "judge"  # judge(images, labels) -> Verdict: D's verdict on images
    JUDGE_AS_CLASS = "judge_as_class"  # D takes the class: its verdict says "a real 3?", per class (CGAN)
    CLASSIFY = "classify"  # D's auxiliary head names the class (ACGAN)
    LATENT = "latent"  # images are a differentiable function of a latent: generate(latent, space); project, edit
    CODES = "codes"  # the latent holds named codes (InfoGAN): with_codes(z, codes) sets them, code_names lists them


# Losses under which D's output is a logit of "real", so its sigmoid is a probability.
LOGIT_LOSSES = ("minimax", "nonsaturating")
# Where D's output parts real from fake, for ADA's r_t = E[sign(D(real) - boundary)]: a logit's 0, the middle of
# LSGAN's targets 0 and 1 (Mao 2017). A Wasserstein critic's score has no such point.
DECISION_BOUNDARIES = {"minimax": 0.0, "nonsaturating": 0.0, "hinge": 0.0, "lsgan": 0.5}


@dataclass
class Verdict:
    """D's verdict on N images; higher scores read as more real."""

    score: Tensor  # (N,) D's raw output per image (a patch map's mean; a critic's unbounded score)
    probability: Optional[Tensor] = None  # (N,) P(real), where D's output is a logit (LOGIT_LOSSES)
    as_class: Optional[Tensor] = None  # (N, K) the score of each image judged as each class (JUDGE_AS_CLASS)
    class_probabilities: Optional[Tensor] = None  # (N, K) D's guess of the class (CLASSIFY)
    attribute_probabilities: Optional[Tensor] = None  # (N, K) D's reading of each attribute (StarGAN's D_cls)


@dataclass
class Translated:
    """Outputs an image-to-image model made from held-out inputs, and what the quality figures compare them with
    (metrics/translation.py). `figures` names those that apply; a set named NAME reports psnr_NAME and l1_NAME
    (the pixels against `targets`), NAME_cfd and NAME_acc (the digit read in the outputs against `labels`; with
    `inputs`, NAME_cfd_input and NAME_acc_input read in them),
    for "attributes", NAME_acc and NAME_all (the attributes read against `asked`) and, for "fid", NAME_fid (the
    outputs against the targets in Inception space) beside NAME_fid_input (the untouched `inputs` against them);
    a set named "" the bare names."""

    outputs: Tensor  # (N, C, H, W) in [-1, 1]; any shape for the pixel figures alone
    figures: Tuple[str, ...]  # from psnr, l1, cfd, acc, attributes, fid
    targets: Optional[Tensor] = None  # what each output should equal (psnr, l1, fid)
    inputs: Optional[Tensor] = None  # what the outputs were made from: fid_input, the distance a translation starts at
    labels: Optional[Tensor] = None  # (N,) the digit each output should still show (cfd, acc)
    # how the digit is read: "grey" (grey outputs; colour ones are not judged), "luma" (a colour digit on a
    # textured background), "ink" (a digit in any ink on a plain background)
    digit: str = "grey"
    asked: Optional[Tensor] = None  # (N, K) the attributes each output was asked for, in `columns` order
    changed: Optional[Tensor] = None  # (N,) the attribute each output was asked to change
    columns: Tuple[int, ...] = ()  # the attribute classifier's columns, in the order of `asked`


def check_psi(psi) -> float:
    """The truncation psi as a float in (0, 1], else one clear line."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0.0 < psi <= 1.0:
        raise UserError(f"truncation must be in (0, 1] (1 = none, 0.7 is typical), got {psi}")
    return float(psi)


@dataclass(frozen=True)
class Phase:
    name: str  # "D", "G", ...: also the key of the optimiser it steps
    repeat: int = 1
    frozen: Tuple[str, ...] = ()  # parameter groups held fixed while this phase backpropagates
    new_batch: bool = False  # draw a fresh real batch for each repeat (critic steps); else reuse the last


@dataclass
class StepContext:
    """What one iteration's phases share."""

    step: int  # generator steps done so far
    repeat: int = 0  # index within a repeated phase
    last_repeat: bool = True
    cache: Dict[str, object] = field(default_factory=dict)


class GANModel(nn.Module):
    name: str = ""
    paper: str = ""  # the reference, shown by `ganforge models`
    summary: str = ""
    needs: Kind = Kind.IMAGES  # the data it trains on: images | labels | paired | unpaired | attributes
    defaults: Dict = {}  # overrides of the trainer's defaults plus the family's own hyperparameters
    # The paper's values where `defaults` differ, by dotted key into the resolved config ("optim.G.lr"): the
    # value itself where the setting takes it (`--set key=value` restores it), else words ("200 epochs").
    # Every family declares its own; the README's model table shows each beside the default (models/describe.py).
    paper_settings: Dict = {}
    # settings added since runs were saved, with the value a saved config without them takes where it is not the
    # default: the one that builds the networks those runs trained (api fills them in on load and resume)
    legacy_settings: Dict = {}
    # settings that follow the image: rungs by image size over `defaults` (models/recipe.py), under the user's
    recipe: Tuple[Rung, ...] = ()
    ema_nets: Tuple[str, ...] = ("G",)  # networks averaged when ema.beta > 0, and used for sampling
    # the modules a checkpoint holds, by attribute name: the networks, and state such as history buffers
    checkpointed: Tuple[str, ...] = ("G", "D")
    translates: bool = False  # image-to-image families make outputs from input images, not from noise
    capabilities: FrozenSet[Capability] = frozenset({Capability.JUDGE, Capability.LATENT})  # what else it can do
    # LATENT: the spaces `generate` takes, the first the one to project into by default ("z": G's input; StyleGAN's
    # "w" is one style for every layer, "w+" one per layer, Abdal et al. 2019)
    latent_spaces: Tuple[str, ...] = ("z",)
    style_space: Optional[str] = None  # STYLE_MIXING: the latent space that holds `styles` (N, num_ws, w_dim)
    directions: Tuple[str, ...] = ()  # the directions `translate` takes ("a2b", and "b2a" for two generators)
    scale: int = 1  # a translation's output size / its input size (super-resolution: 2 or 4)
    attribute_names: Sequence[str] = ()  # ATTRIBUTES: the target attributes, in order
    attribute_groups: Sequence[Sequence[str]] = ()  # ATTRIBUTES: groups of which one member at most is set
    # trainer settings this family has no use for: absent from its config, so setting one is refused
    unused_settings: Tuple[str, ...] = ()
    adversarial_losses: Tuple[str, ...] = losses.ADVERSARIAL_LOSSES  # the values its `loss` setting takes

    def __init__(self, cfg, info: Dict):
        super().__init__()
        type(self).check_config(cfg)
        self.cfg, self.info = cfg, info
        self.channels, self.size = info["channels"], info["size"]
        self.n_classes = len(info.get("classes") or [])
        self.augment = build_augment(cfg.get("augment"), DECISION_BOUNDARIES.get(cfg.loss, 0.0))
        if self.needs == Kind.LABELS and not self.n_classes:
            raise UserError(f"{self.name} is class-conditional but the data '{info['name']}' has no labels: use a folder with one sub-folder per class")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.needs = Kind(cls.needs)  # the word is accepted; a word that is no Kind fails on import
        cls.capabilities = frozenset(Capability(c) for c in cls.capabilities)

    def can(self, capability: Capability) -> bool:
        """Whether this family declares `capability`: what a front end asks before offering it."""
        return capability in self.capabilities

    @property
    def conditional(self) -> bool:
        """Generates a class asked for (labels as G's input)."""
        return self.needs == Kind.LABELS

    @classmethod
    def check_config(cls, cfg) -> None:
        """One line for the first of this family's settings that cannot work. Runs when a config is resolved,
        before any data is read (so `--show-config` checks too), and again when the model is built."""
        if cfg.loss not in cls.adversarial_losses:
            raise UserError(f"{cls.name}: loss must be one of {', '.join(cls.adversarial_losses)}, got '{cfg.loss}'")
        augment = cfg.get("augment")
        if augment and ADA in policy_ops(augment.policy) and augment.interval and cfg.loss not in DECISION_BOUNDARIES:
            raise UserError(f"{cls.name}: augment.policy=ada adapts p to the sign of D's output on reals, which a {cfg.loss} "
                            f"critic's score does not carry; hold p fixed with augment.interval=0 and augment.p=P")
        if cls.translates and cfg.eval.metrics not in ("auto", "none", ""):
            raise UserError(f"{cls.name} reports its own figures on held-out pairs: eval.metrics takes auto or none, "
                            f"not '{cfg.eval.metrics}' (score outputs with `ganforge eval --images`)")

    def checkpointed_modules(self) -> Dict[str, nn.Module]:
        return {name: getattr(self, name) for name in self.checkpointed}

    # --- what the trainer calls --------------------------------------------------------------
    def phases(self) -> List[Phase]:
        return [Phase("D", repeat=self.cfg.n_critic, new_batch=True), Phase("G", frozen=("D",))]

    def parameter_groups(self) -> Dict[str, List[nn.Module]]:
        """Optimiser name -> the networks it updates."""
        return {"G": [self.G], "D": [self.D]}

    def step(self, phase: str, batch: Dict[str, Tensor], ctx: StepContext) -> Dict[str, Tensor]:
        if phase == "D":
            return self.d_step(batch, ctx)
        if phase == "G":
            return self.g_step(batch, ctx)
        raise ValueError(f"{self.name} has no phase '{phase}'")

    def after_step(self, phase: str) -> None:
        """Runs after the optimiser step of a phase (weight clipping lives here)."""

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               nets: Optional[Dict[str, nn.Module]] = None, truncation: Optional[float] = None) -> Tensor:
        """n images (n, C, H, W) in [-1, 1]; `nets` replaces networks by name (the EMA copies); `truncation`
        psi goes to `truncate` (TRUNCATION)."""
        G = (nets or {}).get("G", self.G)
        device = next(G.parameters()).device
        z = self.latent(n, generator, device)
        if self.n_classes and labels is None:
            labels = torch.arange(n, device=device) % self.n_classes
        labels = labels.to(device) if labels is not None else None
        if truncation is not None:
            return self.truncate(z, truncation, labels, nets=nets)
        return G(z, labels)

    # --- image-to-image families (translates = True) -----------------------------------------
    def translate(self, x: Tensor, direction: str = "a2b", nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] of the direction's source domain -> the translated images."""
        raise UserError(f"{self.name} generates images from noise; it does not translate images")

    def preview(self, batch: Dict[str, Tensor], nets: Optional[Dict[str, nn.Module]] = None) -> Tuple[Tensor, int]:
        """A sample grid for a fixed batch of data: (images (M, C, H, W) in [-1, 1], images per row),
        e.g. input | output | target side by side."""
        raise NotImplementedError(f"{self.name} samples from noise")

    def translations(self, test, nets: Optional[Dict[str, nn.Module]] = None) -> Dict[str, Translated]:
        """What the model makes of held-out data (an ImageData), by name, for the quality figures to judge
        (metrics/translation.py); {} when nothing applies."""
        return {}

    @torch.no_grad()
    def sample_seeded(self, n: int, seed: int, device, labels: Optional[Tensor] = None,
                      nets: Optional[Dict[str, nn.Module]] = None, batch: int = 500, **options) -> Tensor:
        """n samples on the CPU from noise seeded with `seed` (never the global RNG), `batch` at a time;
        `options` go to the family's `sample` (StyleGAN's truncation)."""
        g = torch.Generator(device=device).manual_seed(seed)
        return torch.cat([self.sample(min(batch, n - i), None if labels is None else labels[i : i + batch], generator=g,
                                      nets=nets, **options).cpu()
                          for i in range(0, n, batch)])

    # --- shared pieces for the image-generating families ------------------------------------
    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    def latent(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def random_labels(self, n: int, device) -> Optional[Tensor]:
        return torch.randint(0, self.n_classes, (n,), device=device) if self.n_classes else None

    def fake_batch(self, n: int, device) -> Tuple[Tensor, Optional[Tensor]]:
        """G's images of n fresh latents, and their labels (None unless conditional); a family that draws its
        fakes another way (StyleGAN's style mixing) overrides this alone."""
        z, labels = self.latent(n, device=device), self.random_labels(n, device)
        return self.G(z, labels), labels

    def make_fake(self, n: int, device, ctx: StepContext) -> Tuple[Tensor, Optional[Tensor]]:
        """A fake batch for a D step; the last D step keeps its graph for the G step to reuse."""
        if ctx.last_repeat:
            fake, labels = self.fake_batch(n, device)
            ctx.cache["fake"] = (fake, labels)
            return fake.detach(), labels
        with torch.no_grad():
            return self.fake_batch(n, device)

    def take_fake(self, n: int, device, ctx: StepContext) -> Tuple[Tensor, Optional[Tensor]]:
        """The G step's batch: the one the last D step made, or a fresh one."""
        if "fake" in ctx.cache:
            return ctx.cache.pop("fake")
        return self.fake_batch(n, device)

    def score(self, x: Tensor, labels: Optional[Tensor] = None, real: bool = False) -> Tensor:
        """D on augmented input (the same augmentation family for real and fake, Zhao 2020). real: x is a D step's
        real batch, whose scores adaptive augmentation reads (ADA's r_t)."""
        out = self.D(self.augment(x), labels)
        if real and self.augment.adaptive:
            self.augment.observe(self.adversarial_scores(out))
        return out

    def adversarial_scores(self, out: Tensor) -> Tensor:
        """The real-or-fake part of D's output (N, ...): all of it, less an auxiliary classifier's logits (CLASSIFY)."""
        return losses.split_scores(out, self.n_classes)[0] if self.can(Capability.CLASSIFY) else out

    def score_gradient(self, x: Tensor, labels: Optional[Tensor] = None) -> Optional[Tensor]:
        """d(sum of score(x))/dx from D's closed form (see DCGANDiscriminator.input_gradient), or None when
        D has none or augmentation sits between x and D: then penalties take autograd's double backward."""
        input_gradient = getattr(self.D, "input_gradient", None)
        if input_gradient is None or self.augment.active:
            return None
        return input_gradient(x, labels)

    def score_pair(self, real: Tensor, fake: Tensor, real_labels=None, fake_labels=None) -> Tuple[Tensor, Tensor]:
        """D on real and fake: one batched call, except with batch norm, whose statistics must not mix them."""
        if getattr(self.D, "uses_batch_norm", False):
            return self.score(real, real_labels, real=True), self.score(fake, fake_labels)
        labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
        out = self.score(torch.cat([real, fake]), labels)
        if self.augment.adaptive:
            self.augment.observe(self.adversarial_scores(out[: real.shape[0]]))
        return out[: real.shape[0]], out[real.shape[0] :]

    # --- optional capabilities (Capability): the defaults say "not supported" -----------------------
    def _unsupported(self, what: str) -> UserError:
        return UserError(f"{self.name} has no {what}")

    def truncate(self, z: Tensor, psi: float, labels: Optional[Tensor] = None, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """TRUNCATION: images (N, C, H, W) in [-1, 1] from latents (N, z_dim) pulled towards the average by psi
        in (0, 1] (Karras et al. 2019, section 3.2; Brock et al. 2019)."""
        raise self._unsupported("truncation trick")

    def mix(self, z_a: Tensor, z_b: Tensor, levels: Sequence[str], labels: Optional[Tensor] = None, psi: float = 1.0,
            nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """STYLE_MIXING: images of z_a whose styles at `levels` (coarse, middle, fine) come from z_b."""
        raise self._unsupported("styles to mix")

    def styles(self, z: Tensor, psi: float = 1.0, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """STYLE_MIXING: latents (N, z_dim) -> styles (N, num_ws, w_dim), truncated by psi."""
        raise self._unsupported("style space")

    def synthesize(self, ws: Tensor, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """STYLE_MIXING: styles (N, num_ws, w_dim) -> images (N, C, H, W) in [-1, 1]."""
        raise self._unsupported("style space")

    def style_slots(self) -> Dict[str, List[int]]:
        """STYLE_MIXING: the slots of the styles' axis 1 that each level (coarse, middle, fine) drives."""
        raise self._unsupported("style space")

    def generate(self, latent: Tensor, space: str = "z", labels: Optional[Tensor] = None,
                 nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """LATENT: images (N, C, H, W) in [-1, 1] from latents in `space` (one of `latent_spaces`), with gradients
        (projection optimises the latent through it). This default is G on z, for every noise family."""
        if not self.can(Capability.LATENT):
            raise self._unsupported("latent space to generate from")
        if space != "z":
            raise UserError(f"{self.name} has no {space} space; its latent spaces: {', '.join(self.latent_spaces)}")
        return (nets or {}).get("G", self.G)(latent, labels)

    def to_space(self, z: Tensor, space: str, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """LATENT: latents z (N, z_dim) as `space` sees them (StyleGAN: z -> w -> w+); z itself for "z"."""
        if not self.can(Capability.LATENT):
            raise self._unsupported("latent space")
        if space != "z":
            raise UserError(f"{self.name} has no {space} space; its latent spaces: {', '.join(self.latent_spaces)}")
        return z

    def latent_start(self, space: str, device=None) -> Tensor:
        """LATENT: where a projection starts, one latent (1, ...) in `space`: the prior's centre (z = 0), or
        StyleGAN's tracked average w (Karras et al. 2020, appendix D)."""
        return self.to_space(torch.zeros(1, self.z_dim, device=device), space)

    def with_codes(self, z: Tensor, codes: Dict[str, float]) -> Tensor:
        """CODES: a copy of latents z (N, z_dim) with the named codes ({name: value}) set; the rest as drawn."""
        raise self._unsupported("codes")

    def read_attributes(self, x: Tensor, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """ATTRIBUTES: the attributes images (N, C, H, W) in [-1, 1] show, float (N, K) in {0, 1}."""
        raise self._unsupported("attributes")

    @torch.no_grad()
    def judge(self, images: Tensor, labels: Optional[Tensor] = None) -> Verdict:
        """JUDGE: D's verdict on images (N, C, H, W) in [-1, 1], un-augmented; this default is the plain head,
        one score per image. `labels` (N,) are for a D that takes the class (JUDGE_AS_CLASS)."""
        return self.verdict(self.D(images, None))

    def verdict(self, scores: Tensor, **heads) -> Verdict:
        """A Verdict from D's scores (N, ...), a map's mean per image; a probability where they are logits."""
        score = scores.reshape(scores.shape[0], -1).mean(dim=1)
        return Verdict(score, torch.sigmoid(score) if self.cfg.loss in LOGIT_LOSSES else None, **heads)
