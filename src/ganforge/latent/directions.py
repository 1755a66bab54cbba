"""Editing directions in a trained generator's latent space, found once per run and kept in RUN/directions.npz.

- Unsupervised (`sefa0`, `sefa1`, ...): closed-form factorisation (SeFa, Shen & Zhou 2021): the latent moves
  the image most along the top eigenvectors of A^T A, A the weight that first acts on the latent. StyleGAN's A
  is every style (affine) layer of the synthesis network stacked (their StyleGAN case), a direction in W applied
  to every layer; the others' A is G's first layer on z.
- Supervised (InterFaceGAN, Shen et al. 2020): N latents are sampled, their images read by the shipped
  classifiers, and a linear classifier fitted per property; its unit normal is the direction, and its accuracy
  on held-out samples says how linear the property is there. Grey digits give `digit0`..`digit9` (one class
  against the rest, read by the digit classifier) and `thick` (ink area above its median); colour digits with
  mnist5k-attrs' attributes give the attribute classifier's `red`, `green`, `blue`, `thick`, `grey_bg` and
  the digits read from their ink. A class-conditional model is told its digit, so it gets no digit directions.
- Conditional manipulation (InterFaceGAN section 2.3): a direction projected orthogonal to others moves its
  property while their linear scores stay put. `thick` keeps the digits (orthogonal to every digit normal)
  by default; any direction can be given others to keep. Digits in W are too curved for one global boundary to
  hold them (a random step of the same length changes as many), so an edit of `thick` also holds the digit
  locally: it walks in small steps, each without its part along the classifier's gradient that would weaken
  the digit read at the start (`hold`, held_path).

A strength S moves a latent S standard deviations of the model's own latents along the unit direction (their
covariance is kept beside the directions), so strengths read alike in z and in w.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ganforge.errors import UserError
from ganforge.latent.space import Latents, check_space

Tensor = torch.Tensor
log = logging.getLogger("ganforge")

CACHE = "directions.npz"
FORMAT = "ganforge-directions-1"
SAMPLES = 4000  # latents sampled and labelled for the supervised directions
SEFA = 8  # unsupervised directions kept, the largest eigenvalues first
HELD_OUT = 0.2  # the share of the samples a boundary is scored on, never fitted on
MIN_SIDE = 10  # samples each side of a boundary needs among those it is fitted on
INK = 0.0  # a pixel is ink when brighter than mid-grey ([-1, 1] images)
DIGITS = tuple(f"digit{d}" for d in range(10))
BATCH = 500


@dataclass
class Directions:
    """Unit directions in one latent space, and what editing along them needs."""

    space: str  # "w" (StyleGAN, applied to every layer of w+) or "z"
    names: List[str]
    vectors: Tensor  # (K, D) unit rows, as found (before any conditioning)
    accuracies: Tensor  # (K,) held-out accuracy of a supervised boundary (balanced); nan for SeFa
    keep: List[Tuple[str, ...]]  # the directions each is kept orthogonal to unless told otherwise
    covariance: Tensor  # (D, D) of the model's latents in `space`, for the strengths' unit

    def index(self, name: str) -> int:
        if name not in self.names:
            raise UserError(f"no direction '{name}'; this run's directions: {', '.join(self.names)}")
        return self.names.index(name)

    def vector(self, name: str, keep: Optional[Sequence[str]] = None) -> Tensor:
        """The unit direction (D,), orthogonal to those in `keep` (None: its default, () none)."""
        i = self.index(name)
        others = self.keep[i] if keep is None else tuple(keep)
        others = [self.vectors[self.index(o)] for o in others if o != name]
        return condition(self.vectors[i], torch.stack(others)) if others else self.vectors[i]

    def step(self, name: str, strength: float, keep: Optional[Sequence[str]] = None) -> Tensor:
        """What an edit adds to a latent (D,): `strength` standard deviations of the model's latents along it."""
        v = self.vector(name, keep)
        return float(strength) * spread(self.covariance, v) * v


def spread(covariance: Tensor, v: Tensor) -> float:
    """The standard deviation of latents of that covariance along the unit vector v."""
    return float((v @ covariance @ v).clamp_min(1e-12).sqrt())


def condition(v: Tensor, others: Tensor) -> Tensor:
    """v (D,) with its part in the span of others (M, D) removed, unit length (InterFaceGAN section 2.3)."""
    basis, _ = torch.linalg.qr(others.t())  # (D, M) orthonormal
    rest = v - basis @ (basis.t() @ v)
    if rest.norm() < 1e-6:
        raise UserError("the direction lies within those it is asked to keep: nothing of it is left to move along")
    return rest / rest.norm()


# --- unsupervised: closed-form factorisation --------------------------------------------------------------------

def first_weight(model) -> Tensor:
    """A (M, D): the weight that first acts on the latent of the space directions live in (SeFa section 3)."""
    from ganforge.nn.stylegan import StyleGenerator, SynthesisLayer, ToRGB

    G = model.G
    if isinstance(G, StyleGenerator):
        # every style layer reads the same w; stacking them finds what moves all of them most (SeFa's StyleGAN case)
        return torch.cat([m.affine.weight * m.affine.weight_gain for m in G.synthesis.modules()
                          if isinstance(m, (SynthesisLayer, ToRGB))])
    z_dim = model.z_dim
    for m in G.modules():
        if isinstance(m, nn.Linear) and m.in_features >= z_dim:
            return m.weight[:, :z_dim]  # the columns z feeds; a label's one-hot follows them
        if isinstance(m, nn.ConvTranspose2d) and m.in_channels >= z_dim:
            # from a 1 x 1 input each output pixel is a linear map of z: (in, out, k, k) -> (out k k, in)
            return m.weight.permute(1, 2, 3, 0).reshape(-1, m.in_channels)[:, :z_dim]
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            break
    raise UserError(f"{model.name}: its generator starts with no linear layer on z for closed-form factorisation to read")


@torch.no_grad()
def factorise(model, count: int = SEFA) -> Tensor:
    """The `count` directions (count, D) the first layer stretches most: the top eigenvectors of A^T A (SeFa eq. 5)."""
    A = first_weight(model).detach().double().cpu()
    _, eigenvectors = torch.linalg.eigh(A.t() @ A)  # ascending eigenvalues
    top = eigenvectors.flip(1)[:, :count].t()  # (count, D)
    # an eigenvector's sign is arbitrary: fix it so that a rebuilt cache names the same directions
    largest = top.gather(1, top.abs().argmax(dim=1, keepdim=True))
    return (top * largest.sign()).float()


# --- supervised: linear boundaries (InterFaceGAN) -----------------------------------------------------------

def fit_boundary(x: Tensor, y: Tensor, held_out: float = HELD_OUT, l2: float = 1e-3, seed: int = 0) -> Tuple[Tensor, float]:
    """A logistic-regression boundary between latents x (N, D) with y (N,) true and the rest -> (its unit normal
    (D,) pointing to the true side, balanced accuracy on the held-out share). The two sides are weighted equally,
    as one class against nine others would otherwise be fitted as "never"."""
    n = x.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = order[: int(n * held_out)], order[int(n * held_out) :]
    x = x.detach()
    xt, yt = x[train].double(), y[train].double()
    sides = int(yt.sum()), int((1 - yt).sum())
    if min(sides) < MIN_SIDE:
        raise ValueError(f"{min(sides)} samples on one side")
    mean, scale = xt.mean(dim=0), xt.std().clamp_min(1e-12)  # one scale for every axis keeps the normal's direction
    xs = (xt - mean) / scale
    weight = torch.where(yt > 0, 0.5 / sides[0], 0.5 / sides[1])
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = (weight * nn.functional.binary_cross_entropy_with_logits(xs @ w + b, yt, reduction="none")).sum()
        loss = loss + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    w, b = w.detach(), b.detach()
    predicted = ((x[test].double() - mean) / scale @ w + b) > 0
    truth = y[test].bool()
    accuracy = 0.5 * (predicted[truth].double().mean() + (~predicted[~truth]).double().mean())
    return (w / w.norm().clamp_min(1e-12)).float(), float(accuracy)


def ink_area(images: Tensor, threshold: float = INK) -> Tensor:
    """(N,) the share of each grey image's pixels (N, 1, H, W) in [-1, 1] brighter than `threshold`."""
    return (images > threshold).float().flatten(1).mean(dim=1)


def digit_reader(model, info: Dict) -> Optional[Callable[[Tensor], Tensor]]:
    """images (N, C, H, W) in [-1, 1] -> the digit classifier's logits (N, 10), differentiable, for a model whose
    images are digits it reads (grey digits, or colour ones read from their ink); None for the others, and for a
    class-conditional model, whose label says the digit."""
    from ganforge.features import attribute_classifier
    from ganforge.features.digit_classifier import is_digit_data, load_digit_classifier
    from ganforge.metrics.digits import SIZE, ink

    colour = attribute_classifier.applies(info.get("attribute_names") or [], info["channels"])
    if model.conditional or not (colour or is_digit_data(info)):
        return None

    def read(images: Tensor) -> Tensor:
        x = ink(images) if colour else images.clamp(-1, 1)
        if x.shape[-2:] != (SIZE, SIZE):
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
        classifier = load_digit_classifier(x.device)
        return torch.cat([classifier(part.contiguous(memory_format=torch.channels_last)) for part in x.split(64)])

    return read


def read_properties(model, info: Dict, images: Tensor) -> Tuple[Dict[str, Tensor], Dict[str, Tuple[str, ...]]]:
    """What the shipped classifiers read in a model's images (N, C, H, W) -> ({name: (N,) bool}, {name: the
    directions it keeps by default}); ({}, {}) for data no classifier knows."""
    from ganforge.features import attribute_classifier
    from ganforge.features.digit_classifier import is_digit_data

    properties: Dict[str, Tensor] = {}
    colour = attribute_classifier.applies(info.get("attribute_names") or [], images.shape[1])
    if not (colour or is_digit_data(info)):
        return {}, {}
    reader = digit_reader(model, info)
    if reader is not None:
        predicted = torch.cat([reader(part).argmax(dim=1).cpu() for part in images.split(BATCH)])
        properties.update({name: predicted == d for d, name in enumerate(DIGITS)})
    if colour:
        read = attribute_classifier.read_attributes(images).cpu().bool()
        properties.update({name: read[:, i] for i, name in enumerate(info["attribute_names"])})
    else:
        area = ink_area(images).cpu()
        properties["thick"] = area > area.median()
    return properties, ({"thick": DIGITS} if reader is not None else {})


def space_of(generator) -> str:
    """The space a generator's directions live in: w where it has one, else z; one line for a family without."""
    model = generator.model
    return check_space(model, "w" if "w" in model.latent_spaces else "z", generator.meta["model"])


@torch.no_grad()
def find_directions(generator, n: int = SAMPLES, seed: int = 0, sefa: int = SEFA) -> Directions:
    """The directions of a loaded generator (ganforge.load): SeFa's, then the supervised ones its data allows."""
    model, device = generator.model, generator.device
    space = space_of(generator)
    if not 2 <= n <= 1_000_000:
        raise UserError(f"directions need between 2 and 1,000,000 samples, got {n}")
    g = torch.Generator(device=device).manual_seed(seed)
    z = torch.cat([model.latent(min(BATCH, n - i), g, device) for i in range(0, n, BATCH)])  # (n, z_dim)
    labels = torch.arange(n, device=device) % model.n_classes if model.conditional else None
    latents = torch.cat([model.to_space(part, space) for part in z.split(BATCH)]).cpu()  # (n, D)
    covariance = torch.cov(latents.double().t()).float()

    vectors = factorise(model, sefa)
    names = [f"sefa{i}" for i in range(vectors.shape[0])]
    accuracies = [float("nan")] * len(names)
    keep: List[Tuple[str, ...]] = [()] * len(names)
    images = torch.cat([model.generate(part, "z", None if labels is None else labels[i * BATCH : (i + 1) * BATCH]).cpu()
                        for i, part in enumerate(z.split(BATCH))])
    properties, defaults = read_properties(model, generator.info, images)
    found = []
    for name, y in properties.items():
        try:
            normal, accuracy = fit_boundary(latents, y, seed=seed)
        except ValueError as e:  # a class the model hardly draws, a property its samples hardly vary in
            log.info("no '%s' direction: %s of %d, too few to fit a boundary", name, e, n)
            continue
        found.append(name)
        vectors = torch.cat([vectors, normal[None]])
        names.append(name)
        accuracies.append(accuracy)
    keep += [tuple(o for o in defaults.get(name, ()) if o in found) for name in found]
    return Directions(space, names, vectors, torch.tensor(accuracies), keep, covariance)


# --- the cache: RUN/directions.npz ----------------------------------------------------------------------------

def cache_files(generator) -> Tuple[Path, Path]:
    """(where a loaded generator's directions are kept, the weights file they are made from): RUN/directions.npz
    for a run's checkpoint, NAME.directions.npz beside a generator-only file."""
    file = Path(generator.file)
    if generator.generator_only:
        return file.with_name(f"{file.stem}.{CACHE}"), file
    folder = file.parent.parent if file.parent.name == "checkpoints" else file.parent
    return folder / CACHE, file.with_suffix(".safetensors")


def fingerprint(tensors: Path) -> str:
    """The checkpoint's content digest: a cache made from other weights is never read as this one's."""
    digest = hashlib.sha256()
    with open(tensors, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_directions(path: Path, d: Directions, key: Dict[str, str]) -> None:
    arrays = {"format": np.array(FORMAT), "space": np.array(d.space), "names": np.array(d.names),
              "vectors": d.vectors.numpy(), "accuracies": d.accuracies.numpy(),
              "keep": np.array([",".join(k) for k in d.keep]), "covariance": d.covariance.numpy(),
              **{k: np.array(v) for k, v in key.items()}}
    descriptor, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def load_directions(path: Path, key: Dict[str, str]) -> Optional[Directions]:
    """The cached directions if `path` holds them for this checkpoint and these settings, else None."""
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
        if str(a.get("format")) != FORMAT or any(str(a.get(k)) != v for k, v in key.items()):
            return None
        return Directions(str(a["space"]), [str(n) for n in a["names"]], torch.from_numpy(a["vectors"]),
                          torch.from_numpy(a["accuracies"]), [tuple(k.split(",")) if k else () for k in map(str, a["keep"])],
                          torch.from_numpy(a["covariance"]))
    except (OSError, ValueError, KeyError):  # missing or damaged: it is only a cache, made again
        return None


def directions(generator, n: int = SAMPLES, seed: int = 0, sefa: int = SEFA) -> Directions:
    """A loaded generator's directions (ganforge.load): from its cache where that was made from these weights with
    these settings, else found now and kept there."""
    space_of(generator)  # a family without latents is refused before its weights are read
    path, weights = cache_files(generator)
    key = {"checkpoint": fingerprint(weights), "settings": f"n={n} seed={seed} sefa={sefa}"}
    cached = load_directions(path, key)
    if cached is not None:
        return cached
    found = find_directions(generator, n, seed, sefa)
    try:
        save_directions(path, found, key)
    except OSError as e:  # a read-only run folder: the directions still serve this call
        log.warning("could not keep the directions in %s: %s", path, e.strerror or e)
    return found


# --- editing ----------------------------------------------------------------------------------------------

HOLD_STEPS = 8  # small steps of a held edit, each re-reading the classifier's gradient
HOLDS = ("digit", "none")
HELD_BY_DEFAULT = ("thick",)  # "make it thicker, keep the digit"


def hold_for(model, info: Dict, name: str, hold: Optional[str]) -> Optional[Callable[[Tensor], Tensor]]:
    """The digit reader an edit along `name` holds to: hold "digit", "none", or None (the default: the digit for
    `thick` where the digit classifier reads the model's images)."""
    if hold is None:
        return digit_reader(model, info) if name in HELD_BY_DEFAULT else None
    if hold not in HOLDS:
        raise UserError(f"--hold takes {' or '.join(HOLDS)}, got '{hold}'")
    if hold == "none":
        return None
    reader = digit_reader(model, info)
    if reader is None:
        why = "its label says the digit" if model.conditional else "the digit classifier does not read its images"
        raise UserError(f"--hold digit does not apply to this {model.name}: {why}")
    return reader


def held_path(model, values: Tensor, space: str, step: Tensor, reader, labels: Optional[Tensor],
              steps: int = HOLD_STEPS) -> Tensor:
    """values + step, walked in `steps` parts, each without its share that would lower the log-probability of the
    digit read at the start: the conditional manipulation of InterFaceGAN section 2.3 with local normals (the
    classifier's gradient at each point) in place of one global boundary, which digits in W are too curved for."""
    current, digit = values, None
    for _ in range(steps):
        current = current.detach().requires_grad_(True)
        with torch.enable_grad():  # the caller may hold gradients off; the walk needs the classifier's
            logits = reader(model.generate(current, space, labels))
            if digit is None:
                digit = logits.argmax(dim=1).detach()
            held = torch.log_softmax(logits, dim=1).gather(1, digit[:, None]).sum()
            (gradient,) = torch.autograd.grad(held, current)
        part = (step / steps).expand_as(current)
        dims = tuple(range(1, current.dim()))
        towards = (part * gradient).sum(dim=dims, keepdim=True)  # < 0: this part would weaken the digit
        drop = towards / gradient.square().sum(dim=dims, keepdim=True).clamp_min(1e-12) * gradient
        current = current.detach() + torch.where(towards < 0, part - drop, part)
    return current.detach()


def apply(model, info: Dict, latents: Latents, d: Directions, name: str, strength: float,
          keep: Optional[Sequence[str]] = None, hold: Optional[str] = None, steps: int = HOLD_STEPS) -> Latents:
    """Latents moved `strength` along direction `name`: in its space, or in w+ (every layer) for a w direction;
    latents in z are first carried into a w direction's space (to_space). `keep`: the directions to stay
    orthogonal to (None: the direction's default); `hold`: see hold_for."""
    step = d.step(name, strength, keep)
    reader = hold_for(model, info, name, hold)
    device = next(model.G.parameters()).device
    values, space = latents.values.to(device), latents.space
    if space != d.space and not (space == "w+" and d.space == "w"):
        if space != "z":
            raise UserError(f"a {space} latent cannot take a direction in {d.space}: there is no way back from {space} "
                            f"to {d.space}")
        with torch.no_grad():
            values, space = model.to_space(values, d.space), d.space
    step = step.to(device)
    if reader is None or strength == 0:
        edited = values + step
    else:
        labels = None if latents.labels is None else latents.labels.to(device)
        edited = torch.cat([held_path(model, part, space, step, reader, None if labels is None else labels[i : i + BATCH], steps)
                            for i, part in zip(range(0, len(values), BATCH), values.split(BATCH))])
    names = {k: v for k, v in latents.figures.items() if k == "inputs"}  # what each was projected from still holds
    return Latents(space, edited.detach().cpu(), latents.labels, names)
