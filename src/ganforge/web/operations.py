"""What the page can ask a model: sample grids, interpolation, style mixing, translation and D's verdict
(projection and editing are in web/latent_ops.py).

Each operation takes an Entry (a model named on the command line) and the request's parameters, checks them, and
returns the JSON the page shows. What the page offers for a model comes from the model's own declaration: its
kind (`translates`, `needs`) and its capabilities (`GANModel.capabilities`: truncation, style mixing, a mask,
target attributes, D's verdict and its head), plus `directions` and `scale`; nothing here probes for methods.
Image-to-image families run through `ganforge.translate.translate_image`, as `ganforge translate` does.
"""
from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ganforge.config import MAX_SEED
from ganforge.errors import UserError
from ganforge.explore import LEVELS, slerp  # the page's interpolation and mixing are `ganforge explore`'s
from ganforge.models.base import Capability
from ganforge.web.report import run_folder
from ganforge.web.validation import HTTPError, integer, number

INTERPOLATION_PAIRS = 8
MIX_PAIRS = 6
FAKES_JUDGED = 64  # D's average over this many samples is shown beside its verdict on the image
MAX_FULL_RES_PIXELS = 2048 * 2048  # full-resolution translation upsamples to the input's size: this far
DISPLAY_SIDE = 768  # inputs are shown (not processed) at most this large

# The input image of a request for a side ("a" or "b") of the model's data: an upload or one of its examples.
Upload = Callable[[str], np.ndarray]


def page_capabilities(model, discriminator: bool = True) -> Dict:
    """What the page may offer for a model, from its declared kind and capabilities; discriminator: whether the file
    loaded holds D (a generator-only file does not, so nothing that asks D is offered)."""
    translates = model.translates
    generative = not translates
    judges = generative and discriminator
    attributes = translates and model.can(Capability.ATTRIBUTES)
    return {
        "generate": generative,
        "classes": generative and model.conditional and model.n_classes > 0,
        "truncation": generative and model.can(Capability.TRUNCATION),
        "interpolate": generative,
        "mix": generative and model.can(Capability.STYLE_MIXING),
        "image_to_image": translates,
        "translate": translates,
        "directions": [str(d) for d in model.directions] if translates else [],
        "full_res": translates and model.scale == 1,  # super-resolution already outputs scale x the input
        "scale": int(model.scale),
        "mask": translates and model.can(Capability.MASK),  # inpainting: the centre is filled in
        # StarGAN: target attributes in place of a direction; exclusive groups allow one member at a time
        "attributes": list(model.attribute_names) if attributes else [],
        "attribute_groups": [list(g) for g in model.attribute_groups] if attributes else [],
        "discriminate": judges and model.can(Capability.JUDGE),
        "judge_as_class": judges and model.can(Capability.JUDGE_AS_CLASS),  # D takes the class (CGAN)
        "predicts_class": judges and model.can(Capability.CLASSIFY),  # D names the class (ACGAN)
        # project a picture, edit along directions (web/latent_ops.py): G alone, so generator files too
        "latent": generative and model.can(Capability.LATENT),
    }


@dataclass
class Entry:
    """A model loaded from the command line."""

    index: int
    name: str
    source: str
    generator: object  # ganforge.api.Generator
    run: Optional[Path]
    caps: Dict
    examples: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict, repr=False)  # side -> uint8 (N, C, H, W)

    @property
    def model(self):
        return self.generator.model

    @property
    def device(self) -> torch.device:
        return self.generator.device

    def describe(self) -> Dict:
        g, model = self.generator, self.model
        return {
            "index": self.index, "name": self.name, "model": g.meta["model"], "needs": model.needs.value,
            "step": g.step, "data": g.info.get("name"), "size": model.size, "channels": model.channels,
            "size_b": model.size_b if model.translates else model.size,
            "channels_b": model.channels_b if model.translates else model.channels,
            "classes": g.classes if self.caps["classes"] else [], "loss": g.cfg.get("loss"), "capabilities": self.caps,
            "report": self.run is not None,
        }


def load_entries(sources: Sequence[str], device: str) -> List[Entry]:
    """The models named on the command line, each under its run folder's name (or its checkpoint's)."""
    from ganforge import api

    if not sources:
        raise UserError("serve: give at least one run folder or checkpoint")
    entries: List[Entry] = []
    names: Dict[str, int] = {}
    for index, source in enumerate(sources):
        generator = api.load(source, device=device)  # a run, checkpoint, generator file, pretrained:NAME or URL
        run = None if generator.generator_only else run_folder(generator.file)
        name = run.name if run else generator.file.stem
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} ({names[name]})"
        entries.append(Entry(index, name, str(source), generator, run,
                             page_capabilities(generator.model, discriminator=not generator.generator_only)))
    return entries


# --- images for the page ----------------------------------------------------------------------------
def png_bytes(image: torch.Tensor) -> bytes:
    """uint8 (C, H, W) -> PNG bytes."""
    array = image.permute(1, 2, 0).contiguous().numpy()
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # speed over size: these images are tiny
    return buffer.getvalue()


def data_uri(image: torch.Tensor) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def display(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> (C, H, W), shrunk to DISPLAY_SIDE on its long side: what the page shows of an input."""
    picture = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    picture.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    array = np.asarray(picture)
    return torch.from_numpy(array.reshape(*array.shape[:2], -1).copy()).permute(2, 0, 1)


def grid_uri(images: torch.Tensor, nrow: int) -> str:
    from ganforge.imaging.grid import make_grid

    return data_uri(make_grid(images.cpu(), nrow=nrow))


# --- noise to images --------------------------------------------------------------------------------
def _labels(entry: Entry, label, n: int) -> Optional[torch.Tensor]:
    """One class for all n, or (for a conditional model given none) the classes in turn."""
    if not entry.caps["classes"]:
        if label not in (None, ""):
            raise HTTPError(400, f"{entry.name} is not class-conditional: it takes no class")
        return None
    if label in (None, ""):
        return torch.arange(n, device=entry.device) % entry.model.n_classes
    return torch.full((n,), entry.generator.label_index(label), device=entry.device, dtype=torch.long)


def _psi(entry: Entry, params: Dict) -> Optional[float]:
    psi = params.get("truncation")
    if psi is None:
        return None
    if not entry.caps["truncation"]:
        raise HTTPError(400, f"{entry.name} has no truncation trick")
    psi = number(psi, "truncation", 0.0, 1.0)
    if psi == 0:  # as `ganforge sample --truncation`: (0, 1], 0 would draw the average image only
        raise HTTPError(400, "truncation must be above 0 (1 = none, 0.7 is typical)")
    return psi


def _render(entry: Entry, z: torch.Tensor, labels, psi: Optional[float]) -> torch.Tensor:
    if psi is not None:
        return entry.model.truncate(z, psi, labels)
    return entry.model.G(z, labels)


def _latents(entry: Entry, params: Dict, n: int):
    """The latents (n, z_dim) of seed_a and seed_b."""
    seeds = [integer(params.get(k, d), k, 0, MAX_SEED) for k, d in (("seed_a", 0), ("seed_b", 1))]
    return [entry.model.latent(n, torch.Generator(device=entry.device).manual_seed(s), entry.device) for s in seeds]


@torch.no_grad()
def generate(entry: Entry, params: Dict) -> Dict:
    if not entry.caps["generate"]:
        raise HTTPError(400, f"{entry.name} does not generate from noise")
    seed = integer(params.get("seed", 0), "seed", 0, MAX_SEED)
    rows = integer(params.get("rows", 4), "rows", 1, 8)
    psi = _psi(entry, params)
    label = params.get("label")
    # Without a chosen class a conditional model shows one column per class.
    per_class = entry.caps["classes"] and label in (None, "")
    nrow = entry.model.n_classes if per_class else rows
    n = rows * nrow
    labels = _labels(entry, label, n)
    g = torch.Generator(device=entry.device).manual_seed(seed)
    start = time.perf_counter()
    if psi is None:  # the family's own sampling: the same images as `ganforge sample --seed`
        images = entry.model.sample(n, labels, generator=g)
    else:
        images = _render(entry, entry.model.latent(n, g, entry.device), labels, psi)
    from ganforge.imaging.grid import make_grid

    grid = make_grid(images.cpu(), nrow=nrow)
    ms = (time.perf_counter() - start) * 1000
    return {"image": data_uri(grid), "ms": round(ms, 1), "n": n, "nrow": nrow}


@torch.no_grad()
def interpolate(entry: Entry, params: Dict) -> Dict:
    if not entry.caps["interpolate"]:
        raise HTTPError(400, f"{entry.name} does not generate from noise")
    z_a, z_b = _latents(entry, params, INTERPOLATION_PAIRS)
    t = number(params.get("t", 0.5), "t", 0.0, 1.0)
    psi = _psi(entry, params)
    labels = _labels(entry, params.get("label"), INTERPOLATION_PAIRS)  # fixed along the path: only z moves
    return {"image": grid_uri(_render(entry, slerp(z_a, z_b, t), labels, psi), INTERPOLATION_PAIRS), "t": t}


@torch.no_grad()
def mix(entry: Entry, params: Dict) -> Dict:
    if not entry.caps["mix"]:
        raise HTTPError(400, f"style mixing is not available for {entry.name}")
    z_a, z_b = _latents(entry, params, MIX_PAIRS)
    levels = params.get("levels") or []
    if not isinstance(levels, list) or any(level not in LEVELS for level in levels):
        raise HTTPError(400, f"levels must be a list of {', '.join(LEVELS)}")
    labels = _labels(entry, params.get("label"), MIX_PAIRS)
    rows = [_render(entry, z_a, labels, None), _render(entry, z_b, labels, None), entry.model.mix(z_a, z_b, list(levels), labels)]
    return {"image": grid_uri(torch.cat([r.cpu() for r in rows]), MIX_PAIRS)}


# --- images to images and to D ------------------------------------------------------------------------
def as_model_input(entry: Entry, image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> (1, C', size, size) uint8 in the model's channels and size."""
    from ganforge.data.base import to_channels
    from ganforge.imaging.transforms import resize_center_crop

    x = to_channels(torch.tensor(image).permute(2, 0, 1)[None], entry.model.channels)
    return resize_center_crop(x, entry.model.size).contiguous()


def direction(entry: Entry, query: Dict[str, str]) -> str:
    directions = entry.caps["directions"]
    chosen = query.get("direction") or directions[0]
    if chosen not in directions:
        raise HTTPError(400, f"direction must be {' or '.join(directions)}, got {chosen!r}")
    return chosen


def translate(entry: Entry, upload: Upload, query: Dict[str, str]) -> Dict:
    """An image through an image-to-image model: at the model's training size, or (full_res=1) there and
    brought back to the input's resolution by joint bilateral upsampling, as `ganforge translate --full-res`."""
    caps = entry.caps
    if not caps["translate"]:
        raise HTTPError(400, f"image-to-image translation is not available for {entry.name}")
    from ganforge.translate import translate_image

    chosen = direction(entry, query)
    full_res = query.get("full_res") == "1"
    if full_res and not caps["full_res"]:
        raise HTTPError(400, f"{entry.name} has no full-resolution mode (its output is already {caps['scale']}x its input)")
    # An inpainting model is shown whole images: it fills their centre, the hole `ganforge translate --mask center` makes.
    image = upload("b" if caps["mask"] else chosen[0])
    height, width = image.shape[:2]
    if full_res and height * width > MAX_FULL_RES_PIXELS:
        raise HTTPError(400, f"{width} x {height} px is too large for full resolution here (at most "
                             f"{MAX_FULL_RES_PIXELS / 1e6:.1f} MP): turn full resolution off or resize the image")
    attrs, read = _attribute_targets(entry, image, query)
    hole = None
    if caps["mask"]:
        hole = np.zeros((height, width), dtype=bool)
        hole[height // 4 : height // 4 + max(1, height // 2), width // 4 : width // 4 + max(1, width // 2)] = True
    start = time.perf_counter()
    out = translate_image(entry.generator, image, direction=chosen, size=None if full_res else entry.model.size,
                          full_res=full_res, mask=hole, attrs=attrs, name=query.get("name") or "the image")  # (H', W', C') uint8
    ms = (time.perf_counter() - start) * 1000
    shown = image.copy()
    if hole is not None:
        shown[hole] = 128  # the pixels the model does not see
    reply = {"input": data_uri(display(shown)), "output": data_uri(torch.from_numpy(out).permute(2, 0, 1)),
             "ms": round(ms, 1), "size": [int(out.shape[1]), int(out.shape[0])]}
    if read is not None:
        reply["read"] = read
    return reply


def _attribute_targets(entry: Entry, image: np.ndarray, query: Dict[str, str]):
    """StarGAN: ({name: 0 or 1} from `attrs=red=1,thick=0`, the attributes the model reads in the input), as
    `ganforge translate --attrs`: attributes not named keep the input's. (None, None) for other models."""
    if not entry.caps["attributes"]:
        if query.get("attrs"):
            raise HTTPError(400, f"{entry.name} has no attributes to set")
        return None, None
    from ganforge.data.base import to_float
    from ganforge.translate import parse_attrs

    attrs = parse_attrs(query["attrs"]) if query.get("attrs") else {}
    entry.model.check_settings(attrs)
    x = to_float(as_model_input(entry, image)).to(entry.device)
    seen = entry.model.read_attributes(x)[0].tolist()
    return attrs, {name: int(v) for name, v in zip(entry.caps["attributes"], seen)}


@torch.no_grad()
def judge(entry: Entry, upload: Upload, query: Dict[str, str]) -> Dict:
    """D's verdict on an image (GANModel.judge): its score, the probability of "real" where D's output is a
    logit, per class where D takes or names the class, and its average over samples for comparison."""
    caps, model = entry.caps, entry.model
    if not caps["discriminate"]:
        held = " (this file holds the generator only: no discriminator)" if entry.generator.generator_only else ""
        raise HTTPError(400, f"{entry.name} has no discriminator to ask{held}")
    from ganforge.data.base import to_float

    image = as_model_input(entry, upload("a"))
    label = query.get("label")
    labels = None
    if caps["judge_as_class"] and label not in (None, ""):  # "is this a real 7?" rather than the most real class
        labels = torch.tensor([entry.generator.label_index(label)], device=entry.device)
    verdict = model.judge(to_float(image).to(entry.device), labels)
    result: Dict = {"input": data_uri(image[0])}
    per_class = verdict.as_class if verdict.as_class is not None else verdict.class_probabilities
    if per_class is not None:
        result["per_class"] = [round(float(v), 4) for v in per_class[0]]
        result["label"] = int(labels[0]) if labels is not None else int(per_class[0].argmax())
    g = torch.Generator(device=entry.device).manual_seed(0)
    fake_labels = torch.arange(FAKES_JUDGED, device=entry.device) % model.n_classes if caps["judge_as_class"] else None
    fakes = model.sample(FAKES_JUDGED, fake_labels, generator=g)
    result["score"] = round(float(verdict.score[0]), 4)
    result["fake_mean"] = round(float(model.judge(fakes, fake_labels).score.mean()), 4)
    if verdict.probability is not None:
        result["p_real"] = round(float(verdict.probability[0]), 4)
    return result


# --- example inputs ----------------------------------------------------------------------------------
def example_images(entry: Entry, side: str = "a") -> Optional[torch.Tensor]:
    """A few held-out images of the model's data when it ships with ganforge; side b = the second domain."""
    if side not in entry.examples:
        from ganforge.data import held_out

        data = held_out(str(entry.generator.data_spec))  # None where the data has no held-out split at hand
        images = None if data is None else (data.images_b if side == "b" and data.images_b is not None else data.images)
        if images is not None and images.shape[1] in (1, 3):  # not a hole + mask pair: not a picture
            if data.labels is not None and len(data.labels) == len(images):  # one per class, in class order
                first = [int((data.labels == c).nonzero()[0]) for c in range(len(data.classes)) if (data.labels == c).any()]
                images = images[first[:10]]
            entry.examples[side] = images[:10].clone()
        else:
            entry.examples[side] = None
    return entry.examples[side]


def examples(entry: Entry, query: Dict[str, str]) -> Dict:
    side = "a"
    if entry.caps["translate"]:
        side = "b" if entry.caps["mask"] else direction(entry, query)[0]
    images = example_images(entry, side)
    return {"images": [] if images is None else [data_uri(x) for x in images]}
