"""Pictures of a trained generator's latent space (`ganforge explore`, whose flags are in explore/command.py).

- the style-mixing grid of StyleGAN figure 3: the top row holds the source-B images, the left column the
  source-A images; each cell is A with the styles of one level (coarse, middle or fine; one block of rows per
  level) taken from B. Needs a model that declares style mixing (Capability.STYLE_MIXING: stylegan).
- interpolation strips, one per consecutive pair of seeds, from one image to the next: lerp in W (StyleGAN
  section 4: W is the disentangled space, so straight lines in it stay among images) or slerp in Z (White
  2016: Gaussian latents live near a sphere, which straight lines leave). Z works for every noise model.
- a GIF: the same walk through all the seeds and back to the first.
- editing directions (latent/directions.py): one row per direction, one seed's image at each strength.
- the codes grid of InfoGAN figure 2 (Chen et al. 2016): one row per value of the categorical code, the columns
  sweeping one continuous code from -2 to 2 (twice its prior's reach); one noise vector, seed S's, for the whole
  picture and the other continuous codes at 0, so that the codes alone change. Needs Capability.CODES (infogan).

The grids of a model trained with alpha (4 channels) are RGBA PNGs; the GIF composites them on white, since GIF
has one transparent palette entry rather than an alpha channel.

Seed S names the latent `ganforge sample --seed S` draws first, so a picture can be matched to a sample.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import torch

from ganforge.config import MAX_SEED
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.imaging.grid import make_grid
from ganforge.imaging.io import check_writable
from ganforge.models.base import Capability

Tensor = torch.Tensor
LEVELS = ("coarse", "middle", "fine")
SPACES = ("w", "z")


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation of latents (N, D) (White 2016); linear where a and b are (anti)parallel."""
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((a_unit * b_unit).sum(dim=1, keepdim=True).clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega.clamp_min(1e-12)
    return torch.where(sin_omega.abs() < 1e-6, torch.lerp(a, b, t), spherical)


class Explorer:
    """A loaded generator (ganforge.load) and the latent-space pictures it can make."""

    def __init__(self, generator, label=None):
        self.g, self.model, self.device = generator, generator.model, generator.device
        if self.model.translates or self.model.needs not in (Kind.IMAGES, Kind.LABELS):
            raise UserError(f"{self.g.meta['model']} translates images; explore needs a model that generates from noise")
        self.label = None
        if self.model.conditional:  # a conditional model keeps one class along every path
            self.label = generator.label_index(0 if label is None else label)
        elif label is not None:
            generator.label_index(label)  # raises the not-conditional error

    @property
    def has_styles(self) -> bool:
        """A style space: a W to walk in, and styles to mix."""
        return self.model.can(Capability.STYLE_MIXING)

    def latents(self, seeds: Sequence[int]) -> Tensor:
        """(len(seeds), z_dim): seed s's latent is the first of `ganforge sample --seed s`."""
        return torch.cat([self.model.latent(1, torch.Generator(device=self.device).manual_seed(s), self.device) for s in seeds])

    def _labels(self, n: int) -> Optional[Tensor]:
        return None if self.label is None else torch.full((n,), self.label, device=self.device, dtype=torch.long)

    @torch.no_grad()
    def render(self, z: Tensor, psi: float = 1.0) -> Tensor:
        if psi != 1.0:
            return self.model.truncate(z, psi, self._labels(z.shape[0]))
        return self.model.G(z, self._labels(z.shape[0])).clamp(-1, 1)

    @torch.no_grad()
    def mixing_grid(self, rows: int = 3, cols: int = 5, seed: int = 0, psi: float = 1.0,
                    levels: Sequence[str] = LEVELS) -> Tensor:
        """The style-mixing grid as one uint8 image (C, H', W'): a blank corner, then B across the top;
        per level, `rows` rows of A followed by A with that level's styles from B."""
        if not self.has_styles:
            raise UserError(f"{self.g.meta['model']} has no styles to mix; style mixing needs a stylegan run")
        _check_count(rows, "--rows", 1, 16)
        _check_count(cols, "--cols", 1, 16)
        _check_count(seed, "--seed", 0, MAX_SEED - rows - cols)
        z_a = self.latents(range(seed, seed + rows))
        z_b = self.latents(range(seed + rows, seed + rows + cols))
        a, b = self.render(z_a, psi), self.render(z_b, psi)
        cells = [torch.full_like(b[:1], -1.0), b]
        for level in levels:
            for i in range(rows):
                mixed = self.model.mix(z_a[i : i + 1].expand(cols, -1), z_b, [level], self._labels(cols), psi=psi)
                cells += [a[i : i + 1], mixed]
        return make_grid(torch.cat(cells).cpu(), nrow=cols + 1)

    @torch.no_grad()
    def path(self, seeds: Sequence[int], steps: int, space: str = "w", psi: float = 1.0, closed: bool = False) -> List[Tensor]:
        """Images (steps, C, H, W) along each leg between consecutive seeds (and back to the first if
        `closed`); each leg includes its start and its end."""
        if space not in SPACES:
            raise UserError(f"--space must be w or z, got '{space}'")
        if space == "w" and not self.has_styles:
            raise UserError(f"{self.g.meta['model']} has no W space; use --space z")
        _check_count(steps, "--steps", 2, 256)
        if len(seeds) < 2:
            raise UserError("give at least two --seeds to interpolate between, e.g. --seeds 0,1")
        z = self.latents(seeds)
        ends = list(range(len(seeds))) + ([0] if closed else [])
        ts = torch.linspace(0, 1, steps).tolist()
        legs = []
        for i, j in zip(ends, ends[1:]):
            if space == "z":
                legs.append(self.render(torch.cat([slerp(z[i : i + 1], z[j : j + 1], t) for t in ts]), psi))
            else:
                w = self.model.styles(z[[i, j]], psi)  # (2, num_ws, w_dim)
                ws = torch.stack([torch.lerp(w[0], w[1], t) for t in ts])
                legs.append(self.model.synthesize(ws))
        return [leg.cpu() for leg in legs]

    @torch.no_grad()
    def code_grid(self, code: Optional[str] = None, steps: int = 8, seed: int = 0) -> Tensor:
        """The codes grid as one uint8 image: n_cat rows (the categorical code's values), `steps` columns
        (the continuous code `code`, default the first, from -2 to 2)."""
        if not self.model.can(Capability.CODES):
            raise UserError(f"{self.g.meta['model']} has no latent codes; the codes picture needs an infogan run")
        _check_count(steps, "--steps", 2, 64)
        _check_count(seed, "--seed", 0, MAX_SEED)
        categorical, *continuous = self.model.code_names
        if not continuous:
            raise UserError(f"this {self.g.meta['model']} has no continuous code to sweep (n_cont=0)")
        code = continuous[0] if code is None else code
        if code not in continuous:
            raise UserError(f"--code must be one of the continuous codes {', '.join(continuous)}, got '{code}'")
        z = self.model.with_codes(self.latents([seed]), {c: 0.0 for c in continuous})
        cells = [self.model.with_codes(z, {categorical: k, code: float(v)})
                 for k in range(self.model.n_cat) for v in torch.linspace(-2.0, 2.0, steps)]
        return make_grid(self.render(torch.cat(cells)).cpu(), nrow=steps)

    def strip(self, seeds: Sequence[int], steps: int = 8, space: str = "w", psi: float = 1.0) -> Tensor:
        """The interpolation strips as one uint8 image: one row per consecutive pair of seeds."""
        legs = self.path(seeds, steps, space, psi)
        return make_grid(torch.cat(legs), nrow=steps)

    def gif(self, path, seeds: Sequence[int], steps: int = 16, space: str = "w", psi: float = 1.0, fps: float = 12.0,
            scale: Optional[int] = None) -> Path:
        """An animated GIF of the closed walk through the seeds, each frame enlarged `scale` times
        (default: to at least 128 px); RGBA frames are composited on white."""
        from PIL import Image

        from ganforge.data.base import on_white, to_uint8

        if not 0 < fps <= 100:
            raise UserError(f"--fps must be in (0, 100], got {fps}")
        legs = self.path(seeds, steps, space, psi, closed=True)
        frames = torch.cat([leg[:-1] for leg in legs])  # a leg's end is the next one's start
        side = frames.shape[-1]
        scale = scale or max(1, -(-128 // side))
        pixels = to_uint8(frames)
        if pixels.shape[1] == 4:
            pixels = on_white(pixels)
        pixels = pixels.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        pixels = pixels.permute(0, 2, 3, 1).numpy()  # (frames, H, W, C)
        images = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
        out = Path(path)
        check_writable(out)
        try:
            images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        except OSError as e:  # a folder of that name, a full disk
            raise UserError(f"cannot write '{out}': {e.strerror or e}") from None
        return out

    def directions_grid(self, found, names: Sequence[str], strengths: Sequence[float], seed: int = 0,
                        keep: Optional[Sequence[str]] = None, hold: Optional[str] = None) -> Tensor:
        """One uint8 image (C, H', W'): a row per direction of `found` (latent/directions.py), seed's image
        moved by each of `strengths` along it, as `ganforge edit` moves a latent."""
        from ganforge.latent.directions import apply
        from ganforge.latent.space import Latents

        _check_count(seed, "--seed", 0, MAX_SEED)
        z = self.latents([seed])
        labels = self._labels(1)
        start = Latents("z", z.cpu(), None if labels is None else labels.cpu())
        rows = []
        for name in names:
            for s in strengths:
                edited = apply(self.model, self.g.info, start, found, name, s, keep, hold)
                with torch.no_grad():
                    rows.append(self.model.generate(edited.values.to(self.device), edited.space, labels).clamp(-1, 1).cpu())
        return make_grid(torch.cat(rows), nrow=len(strengths))


def _check_count(value: int, name: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {value}")
