"""Projection: the latent whose image matches a given picture, found by gradient descent through the generator.

StyleGAN in W+ (the default) and W follows the StyleGAN2 projector (Karras et al. 2020, appendix D): start at the
tracked average w, Adam with a learning rate that ramps up over the first 5% of the steps and down along a cosine
over the last 25%, and Gaussian noise on the latent, w's spread times 0.05 and fading to zero by 75% of the steps,
so that early steps look around before they settle. That appendix also optimises the per-layer noise maps under a
regulariser that keeps them noise; nn/stylegan.py's generator does have noise inputs, but sampling uses their fixed
buffers and a latent file holds the latent only, so the maps stay fixed and the regulariser has nothing to act on:
what is projected is reproduced from the latent alone by `edit`, `explore` and the web page.

Every space named "z" (the noise families' only one, and StyleGAN's z) starts from the best of a few random z per
image rather than from z = 0: in d dimensions the prior's mass lies near the sphere of radius sqrt(d), so 0 is a
point the generator never saw in training, and z's non-convex landscape rewards a start already near the picture.

The distance between a reconstruction and its target is a feature distance plus a pixel MSE. Features: the
shipped digit classifier's for grey digit models, the Inception network's first blocks for the rest
(features/maps.py), each map normalised over its channels as LPIPS does (Zhang et al. 2018) without learned
weights; where the Inception weights are not installed, a multi-scale SSIM term instead.

PSNR and SSIM (imaging/similarity.py) score the results on images in [0, 1].
"""
from __future__ import annotations

import logging
import math
import sys
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.imaging.similarity import multiscale_ssim, psnr, ssim
from ganforge.latent.space import Latents, check_space

log = logging.getLogger("ganforge")
Tensor = torch.Tensor

# StyleGAN2 projector (Karras et al. 2020, appendix D): peak learning rate, ramps, latent noise
LEARNING_RATE = 0.1
RAMP_UP = 0.05
RAMP_DOWN = 0.25
NOISE_FACTOR = 0.05
NOISE_RAMP = 0.75
W_SAMPLES = 10_000  # z drawn to measure w's spread, as that projector does
Z_CANDIDATES = 16  # random starts per image in z; the closest one is optimised
DEFAULT_STEPS = 200  # on a CPU: twice the steps add little for twice the time (the README's table, bench_project.py --steps)
PIXEL_WEIGHT = 1.0  # the pixel MSE (images in [-1, 1]) beside the feature distance
DISTANCES = ("auto", "digits", "inception", "ssim")


# --- the distance optimised -----------------------------------------------------------------------
def choose_distance(info: Dict, channels: int, distance: str = "auto") -> str:
    """The distance for a model's images: digits (the digit classifier's features), inception (its first blocks)
    or ssim (multi-scale SSIM, no network); "auto" takes the features that describe the data, and SSIM where
    the Inception weights are not installed."""
    from ganforge.features.maps import feature_network_for

    if distance not in DISTANCES:
        raise UserError(f"unknown projection distance '{distance}'; choose from {', '.join(DISTANCES)}")
    network = feature_network_for(info, channels)
    if distance == "digits" and network != "digits":
        raise UserError("the digit classifier's features describe grey digits only; this model's images are not")
    if distance != "auto":
        return distance
    if network == "inception":
        from ganforge.features.inception_weights import resolve_weights

        try:
            resolve_weights(download=False)
        except UserError as e:
            log.info("projecting with pixels and multi-scale SSIM: %s", e)
            return "ssim"
    return network


def _normalised(maps: List[Tensor]) -> List[Tensor]:
    """Each feature map (N, C, H, W) as unit vectors over its channels, as LPIPS compares them."""
    return [m / (m.square().sum(1, keepdim=True).sqrt() + 1e-8) for m in maps]


class Distance:
    """Per-image distance (N,) between images and fixed targets (N, C, H, W) in [-1, 1]."""

    def __init__(self, kind: str, targets: Tensor):
        self.kind, self.targets = kind, targets
        if kind in ("digits", "inception"):
            from ganforge.features.maps import feature_maps

            self.maps = lambda x: _normalised(feature_maps(x, kind))  # noqa: E731
            with torch.no_grad():
                self.target_maps = self.maps(targets)

    def __call__(self, images: Tensor, index: Optional[Tensor] = None) -> Tensor:
        """images (M, C, H, W) against the targets `index` (M,) picks (all of them, in order, by default)."""
        targets = self.targets if index is None else self.targets[index]
        pixels = (images - targets).square().flatten(1).mean(1)
        if self.kind == "ssim":
            return PIXEL_WEIGHT * pixels + 1 - multiscale_ssim((images + 1) / 2, (targets + 1) / 2)
        maps = self.maps(images)
        wanted = self.target_maps if index is None else [t[index] for t in self.target_maps]
        features = sum((m - t).square().sum(1).flatten(1).mean(1) for m, t in zip(maps, wanted))
        return PIXEL_WEIGHT * pixels + features


# --- the optimisation -----------------------------------------------------------------------------
def learning_rate(t: float) -> float:
    """The StyleGAN2 projector's rate at fraction t of the steps: linear up over RAMP_UP, cosine down over RAMP_DOWN."""
    ramp = min(1.0, (1.0 - t) / RAMP_DOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return LEARNING_RATE * ramp * min(1.0, t / RAMP_UP)


def noise_scale(t: float, spread: float) -> float:
    """The latent noise's standard deviation at fraction t of the steps: spread * 0.05, fading quadratically to 0."""
    return spread * NOISE_FACTOR * max(0.0, 1.0 - t / NOISE_RAMP) ** 2


@torch.no_grad()
def _spread(model, space: str, rng: torch.Generator, device) -> float:
    """The latents' typical distance from their centre per coordinate: 1 for z; for w, the RMS distance of mapped
    samples from the tracked average over sqrt(w_dim), so that the noise and the rate are in w's own units."""
    if space == "z":
        return 1.0
    z = torch.randn(W_SAMPLES, model.z_dim, generator=rng).to(device)
    w = model.to_space(z, "w")
    centre = model.latent_start("w", device)
    return float((w - centre).square().sum(1).mean().sqrt() / math.sqrt(w.shape[1]))


@torch.no_grad()
def _best_random_z(model, distance: Distance, labels: Optional[Tensor], rng: torch.Generator, device) -> Tensor:
    """For each target, the closest of Z_CANDIDATES random z (N, z_dim)."""
    n = distance.targets.shape[0]
    z = torch.randn(n, Z_CANDIDATES, model.z_dim, generator=rng).to(device)
    scores = []
    for k in range(Z_CANDIDATES):
        images = model.generate(z[:, k], "z", labels)
        scores.append(distance(images))
    best = torch.stack(scores, 1).argmin(1)  # (N,)
    return z[torch.arange(n, device=device), best].clone()


def project(model, targets: Tensor, *, info: Dict, space: Optional[str] = None, steps: int = 200, seed: int = 0,
            labels: Optional[Tensor] = None, distance: str = "auto", progress: bool = False,
            on_step: Optional[Callable[[int], None]] = None) -> Tuple[Latents, Tensor]:
    """Latents of `model` whose images match `targets` uint8 (N, C, size, size) in the model's channels and size,
    each with its own latent, all optimised at once -> (Latents with figures psnr and ssim, the reconstructions
    (N, C, H, W) in [-1, 1] on the CPU). `info` is the data's description (which features apply); the same seed
    gives the same result. on_step(k) is called after each step k = 1..steps (the web page's progress)."""
    from tqdm import tqdm

    space = check_space(model, space or model.latent_spaces[0])
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if model.conditional and labels is None:
        raise UserError(f"{model.name} is class-conditional: give the class of the pictures (--label)")
    if not model.conditional and labels is not None:
        raise UserError(f"{model.name} is not class-conditional: drop --label")
    device = next(model.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    target = targets.to(device).float().div(127.5).sub(1.0)  # (N, C, H, W) in [-1, 1]
    labels = None if labels is None else labels.to(device)
    kind = choose_distance(info, model.channels, distance)
    dist = Distance(kind, target)
    spread = _spread(model, space, rng, device)
    if space == "z":
        start = _best_random_z(model, dist, labels, rng, device)
    else:
        start = model.latent_start(space, device).expand(target.shape[0], *[-1] * (model.latent_start(space).dim() - 1))
    latent = start.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=LEARNING_RATE, betas=(0.9, 0.999))
    with tqdm(range(steps), desc="project", unit="step", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        for step in bar:
            t = step / steps
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(t) * spread
            noise = torch.randn(latent.shape, generator=rng).to(device) * noise_scale(t, spread)
            loss = dist(model.generate(latent + noise, space, labels)).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if on_step is not None:
                on_step(step + 1)
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss.item() / target.shape[0]:.4f}", refresh=False)
    with torch.no_grad():
        images = model.generate(latent, space, labels).clamp(-1, 1).cpu()
    found = Latents(space, latent.detach().cpu(), None if labels is None else labels.cpu())
    found.figures.update(score(images, targets))
    return found, images


def score(images: Tensor, targets: Tensor) -> Dict[str, np.ndarray]:
    """psnr and ssim (N,) of reconstructions in [-1, 1] against uint8 targets, both as the saved uint8 images."""
    from ganforge.imaging.transforms import to_uint8

    a = to_uint8(images.detach().float().cpu()).float() / 255
    b = targets.cpu().float() / 255
    return {"psnr": psnr(a, b).numpy(), "ssim": ssim(a, b).numpy()}


# --- inputs ----------------------------------------------------------------------------------------
def read_targets(paths, channels: int, size: int) -> Tensor:
    """Image files -> uint8 (N, channels, size, size) as the web page prepares an upload (web/operations.py
    as_model_input): any transparency composited on white unless the model draws alpha, colour to the model's
    channels, the short side scaled to `size` and the centre cut out. A bad file is one line naming it."""
    from ganforge.data.base import resize, to_channels
    from ganforge.imaging.io import read_image

    out = []
    for path in paths:
        array = read_image(path, alpha=channels == 4)  # (H, W, C)
        x = to_channels(torch.from_numpy(np.array(array)).permute(2, 0, 1)[None], channels)
        out.append(resize(x, size))
    return torch.cat(out).contiguous()


def write_results(out, names: List[str], targets: Tensor, images: Tensor, latents: Latents, model_name: str):
    """NAME_projected.png per picture (the target beside its reconstruction, enlarged to at least 64 px) and
    latents.npz with the input file names -> (the pictures, the latent file)."""
    from pathlib import Path

    from ganforge.imaging.grid import make_grid
    from ganforge.imaging.io import write_png
    from ganforge.latent.space import save_latents
    from ganforge.imaging.transforms import to_uint8

    out = Path(out)
    scale = max(1, 64 // targets.shape[-1])
    pictures = []
    for name, target, image in zip(names, targets, to_uint8(images.float())):
        grid = make_grid(torch.stack([target, image]), nrow=2)
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        pictures.append(write_png(out / f"{Path(name).stem}_projected.png", grid.permute(1, 2, 0).numpy()))
    latents.figures["inputs"] = np.array([Path(name).name for name in names])
    return pictures, save_latents(out / "latents.npz", latents, model_name)
