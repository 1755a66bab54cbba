"""StarGAN (Choi et al. 2018): one generator translating images between many domains, told which by a target
attribute vector.

G(x, c) takes the image joined with the target attributes c (K values in {0, 1}) tiled into K constant planes,
through the residual network the paper adapts from CycleGAN (two stride-2 convolutions, six residual blocks, two
transposed convolutions, instance norm; appendix, table 4; nn/stargan.py says where ours differs). D is a stack
of stride-2 4 x 4 convolutions with LeakyReLU 0.01 and no normalisation, with two heads (table 5): D_src scores
the image real or fake, D_cls predicts the K attributes.

Losses (section 3, eqs. 1-7, with the WGAN-GP adversarial loss of eq. 8):
    L_D = -L_adv + lambda_cls * L_cls^r + lambda_gp * GP    L_cls^r: D_cls on real x against its attributes c'
    L_G =  L_adv + lambda_cls * L_cls^f + lambda_rec * L_rec + lambda_id * L_id
         L_cls^f: D_cls on G(x, c) against c;  L_rec = ||x - G(G(x, c), c')||_1 (the cycle back);
         L_id = ||x - G(x, c')||_1, asked for no change, no change (not in the paper: see `defaults`)
with lambda_cls 1, lambda_rec 10, lambda_gp 10, a binary cross-entropy per attribute (as for CelebA), n_critic 5,
Adam (0.5, 0.999), batch 16, and the learning rate constant for the first half of training, then decaying
linearly to zero (section 4.4). Training targets c are the batch's real attribute vectors shuffled, as the
authors' code draws them: each target is a combination the data holds, so exclusive groups stay valid.

Data (``--data``; data/attributes.py reads them):
- ``mnist5k-attrs``, the default: digits drawn with the attributes red | green | blue (one of them), thick and
  grey_bg; the figures ``attr_acc`` (the changed attribute reads as asked), ``attr_all`` (every attribute
  does) and ``digit_acc`` (the digit survives) are measured on the held-out digits, each translated into every
  single-attribute change.
- a CelebA-style attribute file, or a folder holding ``list_attr_celeba.txt`` and its images; CelebA's hair
  colours are one exclusive group. The paper's CelebA run (200,000 iterations in the authors' code):
  ``--data celeba --steps 200000 --set size=128 flip=true "attrs=[Black_Hair,Blond_Hair,Brown_Hair,Male,Young]"
  lambda_id=0 optim.G.lr=1e-4 optim.D.lr=1e-4``.
- a folder (or .zip) with one sub-folder per domain: the domains form one exclusive group.
Settings: ``attrs`` the attributes to learn (default: all of the data's), ``groups`` further mutually exclusive
groups, e.g. ``--set "groups=[[Straight_Hair,Wavy_Hair]]"``.

Using a trained model:
- ``ganforge translate RUN img.png --attrs red=1,thick=0 --out DIR`` (domain folders: ``--attrs DOMAIN=1``), or
  ``--all-domains`` for one input in every domain, in one grid.
- ``model.translate_attrs(x, target)``: images (N, C, H, W) in [-1, 1] and target attributes float (N, K) in
  {0, 1}, ordered as ``model.attribute_names``; ``model.target_for(x, {"red": 1})`` builds such targets.
Attributes a request does not name keep the input's own values, as read by the attribute classifier for
mnist5k-attrs and by the model's own D_cls (trained on the real images) for any other data. Setting one member
of an exclusive group to 1 clears the others.
"""
from __future__ import annotations

import difflib
import itertools
from typing import Dict, List, Tuple

import torch
from torch.nn import functional as F

from ganforge import losses
from ganforge.errors import UserError
from ganforge.data.catalogue import Kind
from ganforge.features.attribute_classifier import applies, read_attributes
from ganforge.models.base import Capability, Translated
from ganforge.models.registry import register
from ganforge.models.pix2pix import ImageToImageModel, _as_batch
from ganforge.nn.stargan import StarDiscriminator, StarGenerator, d_layers

Tensor = torch.Tensor
PAPER_ADAM = {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.999]}  # section 4.4
MAX_DOMAINS = 64  # the most domains one --all-domains grid shows


@register
class StarGAN(ImageToImageModel):
    name = "stargan"
    paper = "Choi et al. 2018, StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation"
    summary = "one ResNet G for all domains given target attributes, D with WGAN-GP and attribute heads, + 10 * reconstruction"
    needs = Kind.ATTRIBUTES
    capabilities = frozenset({Capability.JUDGE, Capability.ATTRIBUTES})
    defaults = {
        "data": "mnist5k-attrs",
        "attrs": [],  # the attributes to learn; [] = every attribute of the data
        "groups": [],  # mutually exclusive groups besides the data's own, e.g. [[Straight_Hair, Wavy_Hair]]
        "width": 0,  # 0 = by size: 64 from 128 px (tables 4 and 5); 16 below, far cheaper per step on a CPU
        "n_blocks": 6,  # residual blocks (table 4)
        "d_width": 64,  # D's first layer (table 5), at every size: D costs little beside G
        "d_layers": 0,  # D's stride-2 layers; 0 = by size (d_layers above)
        # D's widest layer: table 5's top (2,048 at 128 px); uncapped, a seventh layer at 256 px makes D 180M parameters
        "d_max_width": 2048,
        "lambda_cls": 1.0,  # section 4.4
        "lambda_rec": 10.0,
        "lambda_gp": 10.0,
        # not in the paper: ||x - G(x, c')||_1, the input asked for its own attributes, so that G changes what it
        # is asked to and keeps the rest (it kept more digits on mnist5k-attrs than weight 1)
        "lambda_id": 5.0,
        "flip": False,  # the paper flips faces half the time (section 4.4); a flipped digit is no digit
        "loss": "wasserstein",  # WGAN-GP (eq. 8)
        "n_critic": 5,  # D steps per G step (section 4.4)
        "batch_size": 16,  # section 4.4
        "steps": 1500,  # mnist5k-attrs: 750 constant + 750 decaying
        # 5x the paper's rate: its 200,000 CelebA steps are out of a CPU's reach
        "optim": {"G": {**PAPER_ADAM, "lr": 5e-4}, "D": {**PAPER_ADAM, "lr": 5e-4}},
        "schedule": {"kind": "linear_decay", "decay_start": 0.5},  # 10 constant + 10 decaying epochs (section 4.4)
        "eval": {"n": 500},
    }
    # section 4.4 (Adam 1e-4, 10 + 10 epochs on CelebA, flips) and tables 4 and 5 (64 channels); no identity loss
    paper_settings = {"width": 64, "lambda_id": 0.0, "flip": True, "steps": "20 epochs",
                      "optim.G.lr": 1e-4, "optim.D.lr": 1e-4}
    legacy_settings = {"d_max_width": 0}  # runs saved before the cap trained an uncapped D

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        for key in ("width", "d_layers", "d_max_width"):  # 0 means "by size" or "no cap"
            if cfg[key] < 0:
                raise UserError(f"stargan: {key} must be 0 or more, got {cfg[key]}")
        if cfg.d_width < 1:
            raise UserError(f"stargan: d_width must be at least 1, got {cfg.d_width}")

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)
        data_names = list(info.get("attribute_names") or [])
        if not data_names:
            raise UserError(f"stargan needs attribute labels and '{info['name']}' has none: give mnist5k-attrs, a "
                            "CelebA-style attribute file, or a folder with one sub-folder per domain")
        self.attribute_names = self._chosen(cfg.attrs, data_names, info["name"])
        self.attribute_groups = self._groups(list(info.get("attribute_groups") or []) + list(cfg.groups), data_names)
        self.columns = [data_names.index(n) for n in self.attribute_names]  # the data's columns this model learns
        self.judged = applies(data_names, self.channels)  # the shipped attribute classifier reads this data
        k = len(self.attribute_names)
        width = cfg.width or (64 if self.size >= 128 else 16)
        self.G = StarGenerator(self.channels, k, width, cfg.n_blocks)
        self.D = StarDiscriminator(self.channels, k, self.size, cfg.d_width, cfg.d_layers or d_layers(self.size), cfg.d_max_width)

    @staticmethod
    def _chosen(wanted: List, data_names: List[str], data: str) -> List[str]:
        chosen = [str(n) for n in wanted] or data_names
        for name in chosen:
            if name not in data_names:
                raise UserError(f"attrs: '{name}' is not an attribute of '{data}'{_hint(name, data_names)}; it has "
                                f"{', '.join(data_names)}")
            if chosen.count(name) > 1:
                raise UserError(f"attrs names '{name}' twice")
        return chosen

    def _groups(self, groups: List, data_names: List[str]) -> List[List[str]]:
        """The exclusive groups among the chosen attributes (a group left with one member is no group)."""
        out: List[List[str]] = []
        for group in groups:
            if not isinstance(group, list) or not all(isinstance(n, str) for n in group):
                raise UserError(f"groups: each group is a list of attribute names, e.g. [[a, b, c]]; got {group!r}")
            for name in group:
                if name not in data_names:
                    raise UserError(f"groups: '{name}' is not an attribute of the data{_hint(name, data_names)}")
            kept = [n for n in group if n in self.attribute_names]
            taken = [n for n in kept if any(n in g for g in out)]
            if taken:
                raise UserError(f"groups: '{taken[0]}' is in two exclusive groups; an attribute belongs to one at most")
            if len(kept) > 1:
                out.append(kept)
        return out

    # --- training ---------------------------------------------------------------------------------
    def real(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """(images (B, C, H, W), their attributes (B, K)) of a batch, flipped half the time when `flip` is on."""
        x, c = batch["image"], batch["attributes"]
        if self.columns != list(range(c.shape[1])):
            c = c[:, self.columns]
        if self.cfg.flip:
            flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
            x = torch.where(flip, x.flip(-1), x)
        return x, c

    def d_step(self, batch, ctx):
        x, c_org = self.real(batch)
        c_trg = c_org[torch.randperm(x.shape[0], device=x.device)]
        if ctx.last_repeat:  # the G step reuses this fake and its graph
            fake = self.G(x, c_trg)
            ctx.cache["fake"] = (x, c_org, c_trg, fake)
            fake = fake.detach()
        else:
            with torch.no_grad():
                fake = self.G(x, c_trg)
        src, cls = self.D(torch.cat([x, fake]))
        n = x.shape[0]
        adversarial = losses.d_loss(self.cfg.loss, src[:n], src[n:])
        cls_real = F.binary_cross_entropy_with_logits(cls[:n], c_org)
        loss = adversarial + self.cfg.lambda_cls * cls_real
        out = {"adv": adversarial.detach(), "cls": cls_real.detach()}
        if self.cfg.lambda_gp:
            gp = losses.gradient_penalty(lambda t: self.D(t)[0], x, fake)
            loss = loss + self.cfg.lambda_gp * gp
            out["gp"] = gp.detach()
        return {"loss": loss, **out}

    def g_step(self, batch, ctx):
        if "fake" in ctx.cache:
            x, c_org, c_trg, fake = ctx.cache.pop("fake")
        else:
            x, c_org = self.real(batch)
            c_trg = c_org[torch.randperm(x.shape[0], device=x.device)]
            fake = self.G(x, c_trg)
        src, cls = self.D(fake)
        adversarial = losses.g_loss(self.cfg.loss, src)
        cls_fake = F.binary_cross_entropy_with_logits(cls, c_trg)
        reconstruction = losses.l1(self.G(fake, c_org), x)
        loss = adversarial + self.cfg.lambda_cls * cls_fake + self.cfg.lambda_rec * reconstruction
        out = {"adv": adversarial.detach(), "cls": cls_fake.detach(), "rec": reconstruction.detach()}
        if self.cfg.lambda_id:
            identity = losses.l1(self.G(x, c_org), x)
            loss = loss + self.cfg.lambda_id * identity
            out["id"] = identity.detach()
        return {"loss": loss, **out}

    # --- targets ----------------------------------------------------------------------------------
    def group_of(self, name: str) -> List[str]:
        return next((g for g in self.attribute_groups if name in g), [name])

    @torch.no_grad()
    def read_attributes(self, x: Tensor, nets=None) -> Tensor:
        """The attributes images (N, C, H, W) in [-1, 1] show, float (N, K) in {0, 1}: by the shipped classifier
        where it applies, else by D_cls, an attribute set above probability 1/2 and, in an exclusive group, only
        the most likely member."""
        if self.judged:
            return read_attributes(x)[:, self.columns]
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        probabilities = self.net("D", nets)(x)[1].sigmoid()
        decided = (probabilities > 0.5).float()
        for group in self.attribute_groups:
            columns = [self.attribute_names.index(n) for n in group]
            part = probabilities[:, columns]
            decided[:, columns] = F.one_hot(part.argmax(dim=1), len(columns)).float() * (part.amax(dim=1, keepdim=True) > 0.5)
        return decided

    @torch.no_grad()
    def judge(self, images, labels=None):
        """D_src's patch scores averaged per image (a critic's, under WGAN-GP), and D_cls's attribute probabilities."""
        src, cls = self.D(images)
        return self.verdict(src, attribute_probabilities=cls.sigmoid())

    def check_settings(self, settings: Dict[str, int]) -> None:
        """Refuse an unknown attribute, a value other than 0 or 1, or two members of one exclusive group set to 1."""
        names = self.attribute_names
        for name, value in settings.items():
            if name not in names:
                raise UserError(f"unknown attribute '{name}'{_hint(name, names)}; this {self.name} model's attributes: "
                                f"{', '.join(names)}")
            if value not in (0, 1) or isinstance(value, bool):
                raise UserError(f"attribute {name}: give 0 or 1, got {value!r}")
        for group in self.attribute_groups:
            on = [n for n in group if settings.get(n) == 1]
            if len(on) > 1:
                raise UserError(f"{' and '.join(on)} are both set to 1, but {', '.join(group)} exclude one another: "
                                "choose one")

    def apply_settings(self, current: Tensor, settings: Dict[str, int]) -> Tensor:
        """Attributes (N, K) with `settings` {name: 0 or 1} applied; a member of an exclusive group set to 1
        clears the rest of its group."""
        self.check_settings(settings)
        target = current.clone().float()
        index = self.attribute_names.index
        for name, value in settings.items():
            if value == 1:
                target[:, [index(n) for n in self.group_of(name)]] = 0
        for name, value in settings.items():
            target[:, index(name)] = float(value)
        return target

    def target_for(self, x: Tensor, settings: Dict[str, int], nets=None) -> Tensor:
        """Targets (N, K) for images (N, C, H, W): their own attributes as read, with `settings` applied."""
        self.check_settings(settings)
        return self.apply_settings(self.read_attributes(x, nets), settings)

    def flips(self, c: Tensor) -> Tensor:
        """Every single-attribute change of attributes (N, K) -> (K, N, K): attribute k toggled, or for a member
        of an exclusive group, set with the rest of its group cleared (no change where it was set already)."""
        out = c.unsqueeze(0).repeat(len(self.attribute_names), 1, 1)
        for k, name in enumerate(self.attribute_names):
            group = self.group_of(name)
            if len(group) > 1:
                out[k][:, [self.attribute_names.index(n) for n in group]] = 0
                out[k][:, k] = 1
            else:
                out[k][:, k] = 1 - c[:, k]
        return out

    def all_domains(self) -> Tuple[Tensor, List[str]]:
        """Every domain, (M, K) in {0, 1}, with their names: one member of each exclusive group, each other
        attribute on or off."""
        slots, placed = [], set()
        for name in self.attribute_names:
            if name in placed:
                continue
            group = self.group_of(name)
            placed.update(group)
            slots.append([[g] for g in group] if len(group) > 1 else [[], [name]])
        count = 1
        for options in slots:
            count *= len(options)
        if count > MAX_DOMAINS:
            raise UserError(f"this {self.name} model has {count} domains, more than {MAX_DOMAINS} for one grid: "
                            "choose targets with --attrs")
        vectors, names = [], []
        for combination in itertools.product(*slots):
            on = [n for part in combination for n in part]
            vectors.append([float(n in on) for n in self.attribute_names])
            names.append("+".join(on) or "none")
        return torch.tensor(vectors), names

    # --- using it ---------------------------------------------------------------------------------
    def translate_attrs(self, x: Tensor, target, nets=None) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] -> the same images with the target attributes, float (N, K) or (K,) in
        {0, 1} ordered as `attribute_names`."""
        target = torch.as_tensor(target, dtype=torch.float32, device=x.device)
        if target.dim() == 1:
            target = target.expand(x.shape[0], -1)
        if target.shape != (x.shape[0], len(self.attribute_names)):
            raise UserError(f"target attributes must be ({x.shape[0]}, {len(self.attribute_names)}) for "
                            f"{x.shape[0]} images, got {tuple(target.shape)}")
        return self.net("G", nets)(x, target)

    def translate(self, x: Tensor, direction: str = "a2b", nets=None, target=None) -> Tensor:
        self.check_direction(direction)
        if target is None:
            raise UserError(f"{self.name} translates to target attributes: name them (--attrs NAME=1,...) or ask "
                            "for --all-domains")
        return self.translate_attrs(x, target, nets)

    def preview(self, batch, nets=None):
        """input | every single-attribute change, one input a row."""
        x = batch["image"]
        c = self.read_attributes(x, nets)
        outputs = [self.translate_attrs(x, target, nets) for target in self.flips(c)]
        rows = torch.stack([self.shown(image) for image in [x, *outputs]], dim=1)  # (n, 1 + K, 3, H, W)
        return rows.flatten(0, 1), 1 + len(outputs)

    def translations(self, test, nets=None) -> Dict[str, Translated]:
        """Each held-out image translated into every single-attribute change, with the attributes asked for and
        the one changed (attr_acc, attr_all: read by the attribute classifier), and the digit it should keep
        (digit_acc: read in its ink, whatever the colour). {} for data the shipped classifier does not know."""
        if not self.judged or test.attributes is None:
            return {}
        x = _as_batch(test, self.G)["image"]
        c = test.attributes.to(x.device)[:, self.columns]
        outputs, asked, changed, labels = [], [], [], []
        for k, target in enumerate(self.flips(c)):
            moved = (target != c).any(dim=1)
            if not moved.any():
                continue
            xs, ts = x[moved], target[moved]
            outputs.append(torch.cat([self.translate_attrs(part, t, nets) for part, t in zip(xs.split(250), ts.split(250))]))
            asked.append(ts)
            changed.append(torch.full((len(ts),), k, dtype=torch.long, device=x.device))
            if test.labels is not None:
                labels.append(test.labels.to(x.device)[moved])
        out = torch.cat(outputs)
        made = {"attr": Translated(out, ("attributes",), asked=torch.cat(asked), changed=torch.cat(changed),
                                   columns=tuple(self.columns))}
        if labels:
            made["digit"] = Translated(out, ("acc",), labels=torch.cat(labels), digit="ink")
        return made


def _hint(name: str, names: List[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
