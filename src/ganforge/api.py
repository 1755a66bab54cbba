"""The Python API; the command line is a thin layer over these two calls.

    summary = ganforge.train("dcgan", data="mnist5k", minutes=3, out="runs/dcgan")
    g = ganforge.load("runs/dcgan")            # a run folder or a checkpoint file
    images = g.sample(16, labels=[3] * 16)      # (16, C, H, W) float in [-1, 1]
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import logging

import torch

from ganforge import config as config_mod
from ganforge.config import MAX_SEED
from ganforge.data import ImageData, load_dataset
from ganforge.data.base import to_uint8
from ganforge.errors import UserError
from ganforge.models import get_model
from ganforge.models.base import AVERAGED, LIVE, load_module_tensors
from ganforge.models.recipe import image_of, nested, rung_for
from ganforge.training import checkpoint
from ganforge.training.report import UNBOUNDED_STEPS

log = logging.getLogger("ganforge")


def resolve_config(model: str, *, config_file: Optional[str] = None, sets: Iterable[str] = (), out: Optional[str] = None,
                   resume: Union[bool, str] = False, image: Optional[Dict] = None, **flags) -> config_mod.Config:
    """The full config of a run, the model's own settings checked; on resume, the run's own config is the base
    that flags and --set refine. `image` (models/recipe.py image_of: the data's size, channels and count) brings
    the family's recipe for that image size between its defaults and the user's settings."""
    model_cls = get_model(model)
    base = dict(model_cls.defaults)
    rung = rung_for(model_cls.recipe, image and image["size"])
    if rung is not None:
        base = config_mod.deep_merge(base, nested(rung.settings))
    if resume and out:
        found = checkpoint.list_checkpoints(Path(out) / "checkpoints")
        if found:
            _, meta = checkpoint.load(str(found[-1][1]))
            if meta["model"] != model:
                raise UserError(f"--resume: '{out}' holds a {meta['model']} run, not {model}")
            saved = config_mod.deep_merge(model_cls.legacy_settings, meta["config"])
            base = config_mod.deep_merge(base, {k: v for k, v in saved.items() if k != "model"})
    cfg = config_mod.resolve(model, base, config_file, {**flags, "out": out}, sets, unused=model_cls.unused_settings)
    model_cls.check_config(cfg)
    return cfg


def resume_mode(resume: Union[bool, str], out: Optional[str], model: str) -> bool:
    """--resume (True), no resume (False) or --resume auto: resume when the run folder holds a checkpoint, else
    start afresh, so that a scheduler can restart a preempted command unchanged."""
    if resume in (True, False):
        return resume
    if resume != "auto":
        raise UserError(f"--resume takes no value or 'auto', got '{resume}'")
    folder = Path(out) if out else Path("runs") / model
    return bool(checkpoint.list_checkpoints(folder / "checkpoints"))


def default_out(model: str) -> Path:
    """runs/MODEL, or runs/MODEL-2, -3, ... when that already holds a run."""
    base = Path("runs") / model
    candidate, i = base, 1
    while (candidate / "checkpoints").exists():
        i += 1
        candidate = Path(f"{base}-{i}")
    return candidate


def check_data(model_cls, data: ImageData) -> None:
    """One line unless the data holds what the model family needs: labels, two domains or attributes."""
    if model_cls.needs == "labels" and data.labels is None:
        raise UserError(f"{model_cls.name} is class-conditional but '{data.name}' has no labels: give a folder with one sub-folder per class")
    if model_cls.needs in ("paired", "unpaired") and data.images_b is None:
        raise UserError(f"{model_cls.name} needs two image domains; '{data.name}' has one")
    if model_cls.needs == "attributes" and data.attributes is None:
        raise UserError(f"{model_cls.name} needs attribute labels; '{data.name}' has none")


def load_data(cfg: config_mod.Config) -> ImageData:
    """The data a run trains on, read as its model needs it and checked against what the model needs."""
    model_cls = get_model(cfg.model)
    data = load_dataset(cfg.data, size=cfg.size, needs=model_cls.needs, alpha=cfg.get("alpha", False))
    check_data(model_cls, data)
    return data


def resolve_for_data(model: str, cfg: config_mod.Config, **how) -> Tuple[config_mod.Config, ImageData]:
    """The run's data, read and checked as `cfg` (resolved without an image) says, and the config resolved again
    with the family's recipe for that data's images; `how` are resolve_config's arguments."""
    data = load_data(cfg)
    return resolve_config(model, image=image_of(data.info(), len(data)), **how), data


def train(model: str, *, data: Optional[str] = None, out: Optional[str] = None, steps: Optional[int] = None,
          minutes: Optional[float] = None, batch_size: Optional[int] = None, seed: Optional[int] = None,
          device: Optional[str] = None, config: Optional[str] = None, set: Sequence[str] = (),
          resume: Union[bool, str] = False, progress: bool = True) -> Dict:
    """Train MODEL and return a summary: final step, checkpoint, sample grid, loss plot and quality figures.
    resume: True continues the run in `out`, "auto" continues it if it has a checkpoint and starts it if not."""
    from ganforge.training.devices import pick_device
    from ganforge.training.state import prepare_run_folder
    from ganforge.metrics.training import run_figures
    from ganforge.training.trainer import Trainer

    resume = resume_mode(resume, out, model)
    if out is None:
        out = str(Path("runs") / model) if resume else str(default_out(model))
    elif not resume and checkpoint.list_checkpoints(Path(out) / "checkpoints"):
        raise UserError(f"--out '{out}' already holds a run: add --resume to continue it, or choose another --out")
    how = dict(config_file=config, sets=set, out=out, resume=resume, data=data, steps=steps, minutes=minutes,
               batch_size=batch_size, seed=seed, device=device)
    cfg = resolve_config(model, **how)
    pick_device(cfg.device)  # a wrong --device or --out is refused before any data is read
    prepare_run_folder(Path(out))
    cfg, loaded = resolve_for_data(model, cfg, **how)
    if minutes is not None and steps is None and not resume and cfg.schedule.kind == "constant":
        cfg["steps"] = UNBOUNDED_STEPS  # the time budget alone ends the run
    elif minutes is not None and cfg.schedule.kind != "constant":
        # a decaying schedule needs an end in steps; the budget can only cut it short
        log.warning("%s's learning rates decay to zero over its %d steps (schedule.kind %s); --minutes %g stops the run "
                    "early if those steps take longer, with the decay unfinished. --steps sets the schedule's length; "
                    "--set schedule.kind=constant lets the time alone end the run", model, cfg.steps, cfg.schedule.kind, minutes)
    trainer = Trainer(cfg, Path(out), resume=resume, progress=progress, data=loaded, measure=run_figures)
    summary = trainer.fit()
    summary["out"] = out
    return summary


MAX_SAMPLES = 100_000  # one call's samples are held in memory at once (100,000 RGB 64-px images: 5 GB)


class Generator:
    """A trained generator loaded from a checkpoint, ready to sample on any device. `path`: a run folder, a
    checkpoint, a generator-only file (save_generator), pretrained:NAME or https://.../NAME.safetensors#sha256=HEX."""

    def __init__(self, path: Union[str, Path], device: str = "cpu"):
        from ganforge.pretrained import locate
        from ganforge.training import generator_file
        from ganforge.training.devices import pick_device

        local = locate(path)  # pretrained:NAME and URLs become a local file (a URL is downloaded once)
        # a generator-only file holds the sampling networks alone: no discriminator, optimiser or EMA besides
        self.generator_only = generator_file.is_generator_file(local)
        if self.generator_only:
            self.file = local
            tensors, meta = generator_file.read(local)
        else:
            self.file = checkpoint.resolve(str(local))
            tensors, meta = checkpoint.load(str(self.file), device="cpu")
        self.meta, self.info = meta, meta["data"]
        self.step = meta["step"]
        self.device = pick_device(device)
        model_cls = get_model(meta["model"])
        # a run written before a setting existed takes its legacy value, else the setting's default
        defaults = config_mod.resolve(meta["model"], model_cls.defaults, None, {}, [], unused=model_cls.unused_settings)
        self.cfg = config_mod.Config(config_mod.deep_merge(defaults, config_mod.deep_merge(model_cls.legacy_settings, meta["config"])))
        self.data_spec = self.cfg.data
        self.model = model_cls(self.cfg, self.info)
        modules = self.model.checkpointed_modules()
        if self.generator_only:
            modules = {name: modules[name] for name in self.model.ema_nets}
        loaded = load_module_tensors(modules, tensors, (AVERAGED, LIVE), where=f"{path}: the checkpoint", model=meta["model"])  # EMA first
        missing = [name for name, module in modules.items() if name not in loaded and any(True for _ in module.parameters())]
        if missing:
            raise UserError(f"{path}: the checkpoint has no weights for this {meta['model']}'s {missing[0]}")
        self.averaged = all(loaded.get(name) == AVERAGED for name in self.model.ema_nets) or bool(meta.get("averaged"))
        if self.generator_only:  # a network the file does not hold refuses to run rather than run untrained
            for name, module in self.model.checkpointed_modules().items():
                if name not in modules and any(True for _ in module.parameters()):
                    setattr(self.model, name, generator_file.Absent(name, path))
        self.model.to(self.device).eval()
        self.classes = list(self.info.get("classes") or [])

    def label_index(self, label: Union[int, str]) -> int:
        """A class given by index or by name."""
        if self.model.needs != "labels" or not self.classes:  # an unconditional G would ignore the label
            raise UserError(f"this {self.meta['model']} model is not class-conditional: drop --label")
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        try:
            index = int(label)
        except (TypeError, ValueError):
            raise UserError(f"unknown label '{label}'; this model's classes: {', '.join(self.classes)}") from None
        if not 0 <= index < len(self.classes):
            raise UserError(f"label {index} out of range: this model has {len(self.classes)} classes (0..{len(self.classes) - 1})")
        return index

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Sequence[Union[int, str]]] = None, seed: int = 0, batch: int = 500,
               truncation: Optional[float] = None, codes: Optional[Dict[str, float]] = None) -> torch.Tensor:
        """n samples (n, C, H, W) in [-1, 1] on the CPU; labels cycle when fewer than n are given.

        truncation: psi in (0, 1] for models with the truncation trick (stylegan): every latent is pulled
        towards the average w by that factor; None leaves them be.
        codes: {name: value} for models with latent codes (infogan: {"cat": 3, "c1": 0.5}), fixed in every
        sample while the rest of each latent is drawn as without them."""
        if not 0 < n <= MAX_SAMPLES:
            raise UserError(f"--n must be between 1 and {MAX_SAMPLES:,}, got {n}")
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
        if truncation is not None:
            check_truncation(self, truncation)
        label_tensor = None
        if labels is not None and len(labels):
            idx = [self.label_index(label) for label in labels]
            label_tensor = torch.tensor([idx[i % len(idx)] for i in range(n)], device=self.device)
        elif self.model.needs == "labels":
            label_tensor = torch.arange(n, device=self.device) % len(self.classes)
        self.last_labels = None if label_tensor is None else label_tensor.cpu()
        extra = {} if truncation is None else {"truncation": truncation}
        if codes:
            from ganforge.models.base import Capability

            if not self.model.can(Capability.CODES):
                raise UserError(f"this {self.meta['model']} model has no latent codes (infogan has): drop --code")
            self.model.with_codes(self.model.latent(1), codes)  # a wrong name or value is refused before sampling
            extra["codes"] = codes
        return self.model.sample_seeded(n, seed, self.device, label_tensor, batch=batch, **extra)

    def to_native_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C) at the dataset's native size (28 for MNIST)."""
        native = self.info.get("native_size") or images.shape[-1]
        if images.shape[-1] != native:
            images = torch.nn.functional.interpolate(images, size=(native, native), mode="bilinear", antialias=True, align_corners=False)
        return to_uint8(images).permute(0, 2, 3, 1).contiguous()


def check_truncation(generator: Generator, psi) -> None:
    """One clear line unless the generator declares the truncation trick and psi is in (0, 1]."""
    from ganforge.models.base import Capability, check_psi

    if not generator.model.can(Capability.TRUNCATION):
        raise UserError(f"this {generator.meta['model']} model has no truncation trick (stylegan has): drop --truncation")
    check_psi(psi)


def load(path: Union[str, Path], device: str = "cpu") -> Generator:
    return Generator(path, device)


def save_generator(run: Union[str, Path, Generator], dest: Union[str, Path], *, half: bool = True, name: str = "",
                   figures: Optional[Dict] = None, command: str = "", licence: Optional[str] = None) -> Path:
    """Write the generator(s) a run samples with (the EMA where it kept one) to one safetensors file that carries
    the config, data, step, version, the data's licence and `figures` in its metadata: what `load` needs, and no
    discriminator. half: store floats in fp16 (loaded back as fp32). run: a run folder, checkpoint or Generator."""
    from ganforge.models.base import module_tensors
    from ganforge.training import generator_file

    g = run if isinstance(run, Generator) else load(run)
    nets = {net: getattr(g.model, net) for net in g.model.ema_nets}
    about = {"model": g.meta["model"], "step": g.step, "config": dict(g.cfg), "data": g.info, "averaged": g.averaged,
             "licence": licence if licence is not None else generator_file.data_licence(g.data_spec),
             "figures": figures or {}, "name": name, "command": command}
    return generator_file.write(dest, module_tensors(nets, LIVE), about, half=half)


def project(run_or_generator, images, *, steps: Optional[int] = None, space: Optional[str] = None, seed: int = 0,
            labels: Optional[Sequence[Union[int, str]]] = None, device: str = "cpu", progress: bool = False):
    """The latents whose images match `images` -> (Latents, reconstructions (N, C, H, W) in [-1, 1] on the CPU).

        latents, recon = ganforge.api.project("runs/stylegan", ["a.png", "b.jpg"], steps=200, space="w+", seed=0)
        save_latents("latents.npz", latents, "stylegan")   # ganforge.latent.space

    run_or_generator: a run folder, checkpoint or loaded Generator of a noise-to-image model. images: image files,
    or uint8 (N, C, size, size) in the model's channels and size. space: one of the model's latent_spaces (default
    its first: w+ for stylegan, z for the rest); steps: the optimiser's (default latent/project.py DEFAULT_STEPS);
    labels: class-conditional models only, one class for all or one per image. latents.figures holds psnr and
    ssim (N,), and for files their names (inputs). Every image has its own latent; all are optimised at once
    (latent/project.py says how); the same seed gives the same result."""
    import numpy as np

    from ganforge.latent import project as projection
    from ganforge.latent.space import check_space

    g = run_or_generator if isinstance(run_or_generator, Generator) else load(run_or_generator, device=device)
    model = g.model
    space = check_space(model, space or model.latent_spaces[0])
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    names = None
    if isinstance(images, torch.Tensor):
        expected = (model.channels, model.size, model.size)
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise UserError(f"images to project must be uint8 (N, {', '.join(map(str, expected))}), got "
                            f"{images.dtype} {tuple(images.shape)}")
        targets = images
    else:
        names = [str(p) for p in images]
        if not names:
            raise UserError("no images to project")
        targets = projection.read_targets(names, model.channels, model.size)
    label_tensor = None
    if labels is not None and len(labels):
        idx = [g.label_index(label) for label in labels]
        if len(idx) not in (1, len(targets)):
            raise UserError(f"--label gives {len(idx)} classes for {len(targets)} images: give one for all, or one per image")
        label_tensor = torch.tensor(idx * len(targets) if len(idx) == 1 else idx)
    elif model.conditional:
        raise UserError(f"this {g.meta['model']} model is class-conditional: give the class of the images with --label "
                        f"(one of {', '.join(g.classes)}, or one per image separated by commas)")
    latents, reconstructions = projection.project(
        model, targets, info=g.info, space=space, steps=projection.DEFAULT_STEPS if steps is None else steps, seed=seed,
        labels=label_tensor, progress=progress)
    if names is not None:
        latents.figures["inputs"] = np.array([Path(n).name for n in names])
    return latents, reconstructions


def directions(run_or_generator, *, n: Optional[int] = None, seed: int = 0, device: str = "cpu"):
    """A noise model's editing directions (latent/directions.py: SeFa's sefa0.., and the supervised ones its data
    allows: digit0..digit9 and thick on digits), found once and kept in RUN/directions.npz for these weights.

        found = ganforge.api.directions("runs/stylegan")
        found.names, found.accuracies          # held-out accuracy of each supervised boundary (nan for SeFa)

    n: latents sampled and labelled for the supervised ones (default latent/directions.py SAMPLES)."""
    from ganforge.latent import directions as found

    g = run_or_generator if isinstance(run_or_generator, Generator) else load(run_or_generator, device=device)
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    return found.directions(g, found.SAMPLES if n is None else n, seed)


def edit(run_or_generator, latents, direction: str, strength: float, *, keep: Optional[Sequence[str]] = None,
         hold: Optional[str] = None, device: str = "cpu"):
    """Latents moved `strength` along an editing direction -> (the edited Latents, their images (N, C, H, W) in
    [-1, 1] on the CPU).

        edited, images = ganforge.api.edit("runs/stylegan", "latents.npz", "thick", 2.0)

    latents: a latent file (ganforge project writes them) or a Latents; strength: in standard deviations of the
    model's latents along the direction; keep: directions to stay orthogonal to (default: thick keeps the digits;
    [] none); hold: "digit" holds the digit read at the start along the edit, "none" not (default: for thick on
    digit models). A z latent edited along a w direction comes back in w."""
    import math

    from ganforge.latent import directions as found
    from ganforge.latent.space import Latents, load_latents, render

    g = run_or_generator if isinstance(run_or_generator, Generator) else load(run_or_generator, device=device)
    found.space_of(g)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) or abs(strength) > 100:
        raise UserError(f"--strength must be a number between -100 and 100, got {strength}")
    if not isinstance(latents, Latents):
        latents = load_latents(latents, g.model, g.meta["model"])
    d = found.directions(g)
    d.index(direction)
    edited = found.apply(g.model, g.info, latents, d, direction, float(strength), keep, hold)
    with torch.no_grad():
        images = torch.cat([render(g.model, Latents(edited.space, part.to(g.device), None if edited.labels is None
                                                    else edited.labels[i : i + found.BATCH]))
                            for i, part in zip(range(0, len(edited), found.BATCH), edited.values.split(found.BATCH))])
    return edited, images.clamp(-1, 1).cpu()
