"""`ganforge serve`: one local web page to explore trained models.

Standard library only (http.server): `pip install ganforge` stays light, the page works offline, and the
page itself is three static files (static/) with no build step and nothing fetched from elsewhere.

The browser names models by their place on the command line, never by a path, so only the checkpoints
given there can be loaded. Routes (I = a model's index):

    GET  /  and  /static/{app.js,style.css}   the page
    GET  /api/models                           the models and what each can do
    POST /api/models/I/generate                JSON {seed, label, rows, truncation} -> a sample grid
    POST /api/models/I/interpolate             JSON {seed_a, seed_b, t, label, truncation} -> a row of slerps
    POST /api/models/I/mix                     JSON {seed_a, seed_b, levels, label} -> A, B and mixed rows
    POST /api/models/I/translate?direction=D&full_res=1&example=K&attrs=red=1,thick=0   body: the image file
    POST /api/models/I/discriminate?label=L&example=K                 body: the image file
    GET  /api/models/I/examples?direction=D    example inputs from the model's own (embedded) held-out data
    GET  /api/models/I/report                  loss and quality series, latest metrics, sample steps
    GET  /api/models/I/samples/STEP.png        a sample grid the run saved at STEP

Every model run goes through one worker thread (torch already uses the cores within a run), so requests
queue instead of running in parallel; uploads are limited in bytes and pixels and decoded by read_image.

Image-to-image families (`translates = True`: pix2pix, CycleGAN, SRGAN, inpainting) run through
`ganforge.translate.translate_image`, as `ganforge translate` does; their `directions`, `scale` and
`takes_mask` shape the panel. What a noise-to-image family can offer beyond `latent()` and `G(z, labels)`
(optional; the page shows a control only when the model has it, see `capabilities`):

    truncate(z, psi, labels=None) -> images      generation with the truncation trick, psi in (0, 1]
    mix(z_a, z_b, levels, labels=None) -> images styles at `levels` (coarse, middle, fine) taken from z_b
"""
from __future__ import annotations

import base64
import io
import ipaddress
import json
import logging
import math
import re
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np
import torch
from PIL import Image

from ganforge.config import MAX_SEED
from ganforge.errors import UserError
from ganforge.explore import slerp  # the page's interpolation is `ganforge explore`'s

log = logging.getLogger("ganforge.web")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
MAX_UPLOAD_BYTES = 10 * 2**20
# A phone photo is ~12 MP; anything far larger is refused from its header before it is decoded.
MAX_UPLOAD_PIXELS = 25_000_000
MAX_JSON_BYTES = 64 * 2**10
MAX_PENDING = 32  # queued model runs beyond which the server answers "busy"
GENERATIVE = ("images", "labels")
IMAGE_TO_IMAGE = ("paired", "unpaired", "attributes")
MAX_FULL_RES_PIXELS = 2048 * 2048  # full-resolution translation upsamples to the input's size: this far
DISPLAY_SIDE = 768  # inputs are shown (not processed) at most this large
LEVELS = ("coarse", "middle", "fine")
INTERPOLATION_PAIRS = 8
MIX_PAIRS = 6
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
# Losses whose discriminator output is a logit of "real" (its sigmoid a probability).
LOGIT_LOSSES = ("minimax", "nonsaturating")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def capabilities(model) -> Dict:
    """What the page may offer for a model, from its kind (`needs`) and the optional hooks it defines."""
    translates = bool(getattr(model, "translates", False))
    generative = model.needs in GENERATIVE and not translates
    has = lambda name: callable(getattr(model, name, None))  # noqa: E731
    D = getattr(model, "D", None)
    scale = int(getattr(model, "scale", 1))
    return {
        "generate": generative,
        "classes": generative and model.needs == "labels" and model.n_classes > 0,
        "truncation": generative and has("truncate"),
        "interpolate": generative,
        "mix": generative and has("mix"),
        "image_to_image": translates or model.needs in IMAGE_TO_IMAGE,
        "translate": translates,
        "directions": [str(d) for d in getattr(model, "directions", ())] if translates else [],
        "full_res": translates and scale == 1,  # super-resolution already outputs scale x the input
        "scale": scale,
        "mask": translates and bool(getattr(model, "takes_mask", False)),  # inpainting: the centre is filled in
        # StarGAN: target attributes in place of a direction; exclusive groups allow one member at a time
        "attributes": list(getattr(model, "attribute_names", [])) if translates and model.needs == "attributes" else [],
        "attribute_groups": [list(g) for g in getattr(model, "attribute_groups", [])] if translates and model.needs == "attributes" else [],
        "discriminate": generative and isinstance(D, torch.nn.Module),
        "judge_as_class": generative and getattr(D, "n_classes", 0) > 0,  # D takes the class (CGAN)
        "predicts_class": generative and getattr(D, "aux_classes", 0) > 0,  # D names the class (ACGAN)
    }


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_warning(host: str) -> Optional[str]:
    """The warning `serve` prints when the page would be reachable from other machines."""
    if is_loopback(host):
        return None
    return (f"warning: --host {host} makes this page reachable from other machines; it has no login, and anyone "
            "who reaches it can use this machine's CPU. Use it on a trusted network only.")


def run_folder(sidecar: Path) -> Optional[Path]:
    """The run folder a checkpoint belongs to (RUN/checkpoints/step_N.json), when it has a report."""
    if sidecar.parent.name != "checkpoints":
        return None
    run = sidecar.parent.parent
    return run if (run / "metrics.jsonl").is_file() or (run / "samples").is_dir() else None


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

    def describe(self) -> Dict:
        g = self.generator
        return {
            "index": self.index, "name": self.name, "model": g.meta["model"], "needs": self.model.needs,
            "step": g.step, "data": g.info.get("name"), "size": self.model.size, "channels": self.model.channels,
            "size_b": getattr(self.model, "size_b", self.model.size), "channels_b": getattr(self.model, "channels_b", self.model.channels),
            "classes": g.classes if self.caps["classes"] else [], "loss": g.cfg.get("loss"), "capabilities": self.caps, "report": self.run is not None,
        }


class Worker:
    """One model run at a time, first come first served; a full queue answers "busy" instead of growing."""

    def __init__(self, max_pending: int = MAX_PENDING):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganforge-model")
        self.max_pending, self.pending = max_pending, 0
        self.lock = threading.Lock()

    def call(self, fn: Callable, *args):
        with self.lock:
            if self.pending >= self.max_pending:
                raise HTTPError(503, "the server is busy with other requests; try again in a moment")
            self.pending += 1
        try:
            return self.pool.submit(fn, *args).result()
        finally:
            with self.lock:
                self.pending -= 1

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class App:
    """The models and what the page asks of them; `handle` maps one request to (status, type, body)."""

    def __init__(self, sources: Sequence[str], device: str = "cpu", max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 max_upload_pixels: int = MAX_UPLOAD_PIXELS):
        from ganforge import api
        from ganforge.training import checkpoint

        if not sources:
            raise UserError("serve: give at least one run folder or checkpoint")
        self.device = torch.device(device)
        self.max_upload_bytes, self.max_upload_pixels = max_upload_bytes, max_upload_pixels
        self.worker = Worker()
        self.entries: List[Entry] = []
        names: Dict[str, int] = {}
        for index, source in enumerate(sources):
            sidecar = checkpoint.resolve(source)
            generator = api.load(source, device=device)
            run = run_folder(sidecar)
            name = run.name if run else sidecar.stem
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name} ({names[name]})"
            self.entries.append(Entry(index, name, str(source), generator, run, capabilities(generator.model)))

    # --- the model work, run on the worker thread -------------------------------------------------
    def _entry(self, index: str) -> Entry:
        if not index.isdigit() or int(index) >= len(self.entries):
            raise HTTPError(404, f"no model {index}: this server has models 0..{len(self.entries) - 1}")
        return self.entries[int(index)]

    def _labels(self, entry: Entry, label, n: int) -> Optional[torch.Tensor]:
        """One class for all n, or (for a conditional model given none) the classes in turn."""
        if not entry.caps["classes"]:
            if label not in (None, ""):
                raise HTTPError(400, f"{entry.name} is not class-conditional: it takes no class")
            return None
        if label in (None, ""):
            return torch.arange(n, device=self.device) % entry.model.n_classes
        return torch.full((n,), entry.generator.label_index(label), device=self.device, dtype=torch.long)

    def _render(self, entry: Entry, z: torch.Tensor, labels, psi: Optional[float]) -> torch.Tensor:
        if psi is not None:
            return entry.model.truncate(z, psi, labels)
        return entry.model.G(z, labels)

    def _psi(self, entry: Entry, params: Dict) -> Optional[float]:
        psi = params.get("truncation")
        if psi is None:
            return None
        if not entry.caps["truncation"]:
            raise HTTPError(400, f"{entry.name} has no truncation trick")
        psi = number(psi, "truncation", 0.0, 1.0)
        if psi == 0:  # as `ganforge sample --truncation`: (0, 1], 0 would draw the average image only
            raise HTTPError(400, "truncation must be above 0 (1 = none, 0.7 is typical)")
        return psi

    @torch.no_grad()
    def generate(self, entry: Entry, params: Dict) -> Dict:
        if not entry.caps["generate"]:
            raise HTTPError(400, f"{entry.name} does not generate from noise")
        seed = integer(params.get("seed", 0), "seed", 0, MAX_SEED)
        rows = integer(params.get("rows", 4), "rows", 1, 8)
        psi = self._psi(entry, params)
        label = params.get("label")
        # Without a chosen class a conditional model shows one column per class.
        per_class = entry.caps["classes"] and label in (None, "")
        nrow = entry.model.n_classes if per_class else rows
        n = rows * nrow
        labels = self._labels(entry, label, n)
        g = torch.Generator(device=self.device).manual_seed(seed)
        start = time.perf_counter()
        if psi is None:  # the family's own sampling: the same images as `ganforge sample --seed`
            images = entry.model.sample(n, labels, generator=g)
        else:
            images = self._render(entry, entry.model.latent(n, g, self.device), labels, psi)
        from ganforge.imaging.grid import make_grid

        grid = make_grid(images.cpu(), nrow=nrow)
        ms = (time.perf_counter() - start) * 1000
        return {"image": data_uri(grid), "ms": round(ms, 1), "n": n, "nrow": nrow}

    @torch.no_grad()
    def interpolate(self, entry: Entry, params: Dict) -> Dict:
        if not entry.caps["interpolate"]:
            raise HTTPError(400, f"{entry.name} does not generate from noise")
        seeds = [integer(params.get(k, d), k, 0, MAX_SEED) for k, d in (("seed_a", 0), ("seed_b", 1))]
        t = number(params.get("t", 0.5), "t", 0.0, 1.0)
        psi = self._psi(entry, params)
        n = INTERPOLATION_PAIRS
        z_a, z_b = (entry.model.latent(n, torch.Generator(device=self.device).manual_seed(s), self.device) for s in seeds)
        labels = self._labels(entry, params.get("label"), n)  # fixed along the path: only z moves
        images = self._render(entry, slerp(z_a, z_b, t), labels, psi)
        from ganforge.imaging.grid import make_grid

        return {"image": data_uri(make_grid(images.cpu(), nrow=n)), "t": t}

    @torch.no_grad()
    def mix(self, entry: Entry, params: Dict) -> Dict:
        if not entry.caps["mix"]:
            raise HTTPError(400, f"style mixing is not available for {entry.name}")
        seeds = [integer(params.get(k, d), k, 0, MAX_SEED) for k, d in (("seed_a", 0), ("seed_b", 1))]
        levels = params.get("levels") or []
        if not isinstance(levels, list) or any(level not in LEVELS for level in levels):
            raise HTTPError(400, f"levels must be a list of {', '.join(LEVELS)}")
        n = MIX_PAIRS
        z_a, z_b = (entry.model.latent(n, torch.Generator(device=self.device).manual_seed(s), self.device) for s in seeds)
        labels = self._labels(entry, params.get("label"), n)
        rows = [self._render(entry, z_a, labels, None), self._render(entry, z_b, labels, None),
                entry.model.mix(z_a, z_b, list(levels), labels)]
        from ganforge.imaging.grid import make_grid

        return {"image": data_uri(make_grid(torch.cat([r.cpu() for r in rows]), nrow=n))}

    def _upload(self, entry: Entry, body: bytes, query: Dict[str, str], side: str = "a") -> np.ndarray:
        """The uploaded image, or example K of the model's data (`side` a or b), as uint8 (H, W, C)."""
        from ganforge.imaging.io import read_image

        if "example" in query:
            examples = self._examples(entry, side)
            if examples is None:
                raise HTTPError(400, f"{entry.name} has no example images")
            k = integer(query["example"], "example", 0, len(examples) - 1)
            return examples[k].permute(1, 2, 0).numpy()
        if not body:
            raise HTTPError(400, "no image received: choose an image file to upload")
        name = query.get("name") or "the upload"
        self._check_pixels(body, name)
        return read_image(body, name=name)

    def _as_model_input(self, entry: Entry, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, C) -> (1, C', size, size) uint8 in the model's channels and size."""
        from ganforge.imaging.transforms import match_channels, resize_center_crop

        x = match_channels(torch.tensor(image).permute(2, 0, 1)[None], entry.model.channels)
        return resize_center_crop(x, entry.model.size).contiguous()

    def _check_pixels(self, body: bytes, name: str) -> None:
        """Refuse a huge image from its header alone; read_image then decodes (and judges) the rest."""
        from ganforge.imaging.io import ImageError

        try:
            with Image.open(io.BytesIO(body)) as probe:
                width, height = probe.size
        except Exception:  # noqa: BLE001 - not parseable here: read_image reports why, in its words
            return
        if width * height > self.max_upload_pixels:
            raise ImageError(name, f"{width} x {height} = {width * height:,} pixels is over this page's limit of "
                                   f"{self.max_upload_pixels:,}; resize it first")

    def _direction(self, entry: Entry, query: Dict[str, str]) -> str:
        directions = entry.caps["directions"]
        direction = query.get("direction") or directions[0]
        if direction not in directions:
            raise HTTPError(400, f"direction must be {' or '.join(directions)}, got {direction!r}")
        return direction

    def translate(self, entry: Entry, body: bytes, query: Dict[str, str]) -> Dict:
        """An image through an image-to-image model: at the model's training size, or (full_res=1) there and
        brought back to the input's resolution by joint bilateral upsampling, as `ganforge translate --full-res`."""
        if not entry.caps["translate"]:
            raise HTTPError(400, f"image-to-image translation is not available for {entry.name}")
        from ganforge.translate import translate_image

        direction = self._direction(entry, query)
        full_res = query.get("full_res") == "1"
        if full_res and not entry.caps["full_res"]:
            raise HTTPError(400, f"{entry.name} has no full-resolution mode (its output is already {entry.caps['scale']}x its input)")
        # An inpainting model is shown whole images: it fills their centre, the hole `ganforge translate --mask center` makes.
        image = self._upload(entry, body, query, side="b" if entry.caps["mask"] else direction[0])
        height, width = image.shape[:2]
        if full_res and height * width > MAX_FULL_RES_PIXELS:
            raise HTTPError(400, f"{width} x {height} px is too large for full resolution here (at most "
                                 f"{MAX_FULL_RES_PIXELS / 1e6:.1f} MP): turn full resolution off or resize the image")
        attrs, read = self._attribute_targets(entry, image, query)
        hole = None
        if entry.caps["mask"]:
            hole = np.zeros((height, width), dtype=bool)
            hole[height // 4 : height // 4 + max(1, height // 2), width // 4 : width // 4 + max(1, width // 2)] = True
        start = time.perf_counter()
        out = translate_image(entry.generator, image, direction=direction, size=None if full_res else entry.model.size,
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

    def _attribute_targets(self, entry: Entry, image: np.ndarray, query: Dict[str, str]):
        """StarGAN: ({name: 0 or 1} from `attrs=red=1,thick=0`, the attributes the model reads in the input), as
        `ganforge translate --attrs`: attributes not named keep the input's. (None, None) for other models."""
        if not entry.caps["attributes"]:
            if query.get("attrs"):
                raise HTTPError(400, f"{entry.name} has no attributes to set")
            return None, None
        from ganforge.data.base import to_float
        from ganforge.models.stargan import parse_attrs

        attrs = parse_attrs(query["attrs"]) if query.get("attrs") else {}
        entry.model.check_settings(attrs)
        x = to_float(self._as_model_input(entry, image)).to(entry.generator.device)
        seen = entry.model.read_attributes(x)[0].tolist()
        return attrs, {name: int(v) for name, v in zip(entry.caps["attributes"], seen)}

    @torch.no_grad()
    def discriminate(self, entry: Entry, body: bytes, query: Dict[str, str]) -> Dict:
        """D's verdict on an image: its score, the probability of "real" where D is a logit, and per class."""
        if not entry.caps["discriminate"]:
            raise HTTPError(400, f"{entry.name} has no discriminator to ask")
        from ganforge import losses
        from ganforge.data.base import to_float

        image = self._as_model_input(entry, self._upload(entry, body, query))
        D, model = entry.model.D, entry.model
        conditional_d = getattr(D, "n_classes", 0) > 0  # the label is an input of D (CGAN)
        aux = getattr(D, "aux_classes", 0)  # D predicts the class (ACGAN)

        def score(x, labels=None):
            out = D(x, labels)
            return losses.split_scores(out, aux) if aux else (out, None)

        x = to_float(image).to(self.device)
        result: Dict = {"input": data_uri(image[0])}
        if conditional_d:
            # The same image judged as each class: D answers "is this a real 3?", not "is this real?".
            per_class, _ = score(x.expand(model.n_classes, -1, -1, -1), torch.arange(model.n_classes, device=self.device))
            per_class = per_class.reshape(-1)
            label = query.get("label")
            chosen = entry.generator.label_index(label) if label not in (None, "") else int(per_class.argmax())
            adv = per_class[chosen : chosen + 1]
            result["per_class"] = [round(float(v), 4) for v in per_class]
            result["label"] = chosen
        else:
            adv, logits = score(x)
            if logits is not None:
                probs = torch.softmax(logits[0], dim=0)
                result["per_class"] = [round(float(p), 4) for p in probs]
                result["label"] = int(probs.argmax())
        g = torch.Generator(device=self.device).manual_seed(0)
        fake_labels = torch.arange(64, device=self.device) % model.n_classes if conditional_d else None
        fakes = model.sample(64, fake_labels, generator=g)
        fake_scores, _ = score(fakes, fake_labels)
        result["score"] = round(float(adv.reshape(-1)[0]), 4)
        result["fake_mean"] = round(float(fake_scores.mean()), 4)
        if entry.generator.cfg.get("loss") in LOGIT_LOSSES:
            result["p_real"] = round(float(torch.sigmoid(adv.reshape(-1)[0])), 4)
        return result

    def _examples(self, entry: Entry, side: str = "a") -> Optional[torch.Tensor]:
        """A few held-out images of the model's data when it ships with ganforge; side b = the second domain."""
        if side not in entry.examples:
            from ganforge.data.derived import DERIVED, load
            from ganforge.data.embedded import EMBEDDED

            spec, data = str(entry.generator.data_spec), None
            if spec in DERIVED:
                data = load(spec, "test")
            elif f"{spec}-test" in EMBEDDED or spec in EMBEDDED:
                data = EMBEDDED[f"{spec}-test" if f"{spec}-test" in EMBEDDED else spec][0]()
            images = None if data is None else (data.images_b if side == "b" and data.images_b is not None else data.images)
            if images is not None and images.shape[1] in (1, 3):  # not a hole + mask pair: not a picture
                if data.labels is not None and len(data.labels) == len(images):  # one per class, in class order
                    first = [int((data.labels == c).nonzero()[0]) for c in range(len(data.classes)) if (data.labels == c).any()]
                    images = images[first[:10]]
                entry.examples[side] = images[:10].clone()
            else:
                entry.examples[side] = None
        return entry.examples[side]

    def examples(self, entry: Entry, query: Dict[str, str]) -> Dict:
        side = "a"
        if entry.caps["translate"]:
            side = "b" if entry.caps["mask"] else self._direction(entry, query)[0]
        examples = self._examples(entry, side)
        return {"images": [] if examples is None else [data_uri(x) for x in examples]}

    # --- the run's report (files only, no model run) ----------------------------------------------
    def report(self, entry: Entry) -> Dict:
        if entry.run is None:
            raise HTTPError(404, f"{entry.name} was loaded from a lone checkpoint: no run folder, no report")
        records = read_jsonl(entry.run / "metrics.jsonl")
        train = [r for r in records if r.get("kind") == "train"]
        evals = [r for r in records if r.get("kind") == "eval"]
        loss_keys = sorted({k for r in train for k in r if "/" in k})
        eval_keys = [k for k in ("cfd", "fid", "kid", "acc", "score") if any(k in r for r in evals)]
        cfg = entry.generator.cfg
        return {
            "name": entry.name,
            "losses": {k: thin([[r["step"], r[k]] for r in train if isinstance(r.get(k), (int, float))]) for k in loss_keys},
            "quality": {k: [[r["step"], r[k]] for r in evals if isinstance(r.get(k), (int, float))] for k in eval_keys},
            "latest": {"train": train[-1] if train else None, "eval": evals[-1] if evals else None},
            "samples": sample_steps(entry.run),
            "config": {"model": entry.generator.meta["model"], "data": cfg.get("data"), "batch_size": cfg.get("batch_size"),
                       "loss": cfg.get("loss"), "checkpoint_step": entry.generator.step},
        }

    def sample_png(self, entry: Entry, step: str) -> bytes:
        if entry.run is None or not step.isdigit():
            raise HTTPError(404, "no such sample grid")
        path = entry.run / "samples" / f"step_{int(step):06d}.png"
        if not path.is_file():
            raise HTTPError(404, f"{entry.name} saved no samples at step {int(step)}")
        return path.read_bytes()

    # --- routing ------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: Dict[str, str], read_body: Callable[[int], bytes]) -> Tuple[int, str, bytes]:
        if method == "GET" and path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", static_file("index.html")
        if method == "GET" and path.startswith("/static/") and path[len("/static/"):] in STATIC:
            name = path[len("/static/"):]
            return 200, STATIC[name], static_file(name)
        if path == "/api/models" and method == "GET":
            limits = {"upload_bytes": self.max_upload_bytes, "upload_pixels": self.max_upload_pixels}
            return json_reply({"models": [e.describe() for e in self.entries], "limits": limits})
        match = re.fullmatch(r"/api/models/([^/]+)/([a-z]+)(?:/(\d+)\.png)?", path)
        if not match:
            raise HTTPError(404, f"no page {path}")
        entry, action, step = self._entry(match.group(1)), match.group(2), match.group(3)
        routes = {
            ("POST", "generate"): lambda: self.worker.call(self.generate, entry, json_body(read_body(MAX_JSON_BYTES))),
            ("POST", "interpolate"): lambda: self.worker.call(self.interpolate, entry, json_body(read_body(MAX_JSON_BYTES))),
            ("POST", "mix"): lambda: self.worker.call(self.mix, entry, json_body(read_body(MAX_JSON_BYTES))),
            ("POST", "translate"): lambda: self.worker.call(self.translate, entry, read_body(self.max_upload_bytes), query),
            ("POST", "discriminate"): lambda: self.worker.call(self.discriminate, entry, read_body(self.max_upload_bytes), query),
            ("GET", "examples"): lambda: self.worker.call(self.examples, entry, query),
            ("GET", "report"): lambda: self.report(entry),
        }
        if action == "samples" and step is not None and method == "GET":
            return 200, "image/png", self.sample_png(entry, step)
        if step is not None or (method, action) not in routes:
            allowed = [m for m, a in routes if a == action]
            if allowed:
                raise HTTPError(405, f"{path} takes {' or '.join(allowed)}, not {method}")
            raise HTTPError(404, f"no page {path}")
        return json_reply(routes[(method, action)]())

    def close(self) -> None:
        self.worker.shutdown()


# --- small helpers ----------------------------------------------------------------------------------
def integer(value, name: str, low: int, high: int) -> int:
    try:
        number_ = int(value)
        if isinstance(value, float) and value != number_:
            raise ValueError
    except (TypeError, ValueError):
        raise HTTPError(400, f"{name} must be a whole number, got {value!r}") from None
    if not low <= number_ <= high:
        raise HTTPError(400, f"{name} must be between {low} and {high}, got {number_}")
    return number_


def number(value, name: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise HTTPError(400, f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and low <= x <= high):
        raise HTTPError(400, f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return x


def json_body(body: bytes) -> Dict:
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "the request body is not JSON") from None
    if not isinstance(params, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return params


def json_reply(payload: Dict) -> Tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(payload).encode()


def static_file(name: str) -> bytes:
    return resources.files("ganforge.web").joinpath("static", name).read_bytes()


def read_jsonl(path: Path) -> List[Dict]:
    """The records of a metrics.jsonl; a line a running trainer is still writing is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def thin(points: List, most: int = 400) -> List:
    """At most `most` points, evenly spaced, the last one kept: a long run still draws quickly."""
    if len(points) <= most:
        return points
    stride = math.ceil(len(points) / most)
    kept = points[::stride]
    return kept if kept[-1] is points[-1] else kept + [points[-1]]


def sample_steps(run: Path) -> List[int]:
    folder = run / "samples"
    if not folder.is_dir():
        return []
    steps = [int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"step_(\d+)\.png", p.name))]
    return sorted(steps)


# --- HTTP -----------------------------------------------------------------------------------------------
def make_handler(app: App, allowed_hosts: Optional[Sequence[str]]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ganforge"
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def _serve(self, method: str) -> None:
            self._body_read = False
            try:
                if allowed_hosts is not None and self.headers.get("Host", "") not in allowed_hosts:
                    # A page elsewhere that rebinds its name to 127.0.0.1 sends its own Host: refuse it.
                    raise HTTPError(403, "this server answers only to " + ", ".join(f"http://{h}/" for h in allowed_hosts))
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, kind, body = app.handle(method, url.path, query, self._read_body)
            except HTTPError as e:
                status, kind, body = e.status, "application/json", json.dumps({"error": str(e)}).encode()
            except UserError as e:  # a bad image, an unknown class: the user's to fix, shown on the page
                status, kind, body = 400, "application/json", json.dumps({"error": str(e)}).encode()
            except Exception as e:  # noqa: BLE001 - one failed request must not stop the server
                log.error("error in %s %s:\n%s", method, self.path, traceback.format_exc())
                status, kind, body = 500, "application/json", json.dumps({"error": f"internal error: {e}"}).encode()
            if method == "POST" and not self._body_read:
                self._discard_body()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in _SECURITY_HEADERS.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _length(self) -> int:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                raise HTTPError(400, "bad Content-Length")
            return length

        def _read_body(self, limit: int) -> bytes:
            length = self._length()
            if length > limit:
                raise HTTPError(413, f"the upload is {length / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB")
            self._body_read = True
            return self.rfile.read(length)

        def _discard_body(self) -> None:
            """Read an unwanted body so the browser sees the answer; one far too large ends the connection."""
            try:
                length = self._length()
            except HTTPError:
                return
            if length > 8 * app.max_upload_bytes:
                self.close_connection = True
                return
            while length > 0:
                chunk = self.rfile.read(min(length, 2**20))
                if not chunk:
                    break
                length -= len(chunk)

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):  # the browser left (a closed tab, a reload)
            return
        super().handle_error(request, client_address)


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(app: App, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Server:
    """A server for `app` on host:port (port 0 picks a free one); start it with serve_forever()."""
    server_class = Server6 if ":" in host else Server
    try:
        server = server_class((host, port), make_handler(app, None))
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e} (choose another --port)") from None
    bound = server.server_address[1]
    if is_loopback(host):
        names = ("127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]")
        server.RequestHandlerClass = make_handler(app, sorted({f"{n}:{bound}" for n in names}))
    return server


def add_arguments(parser) -> None:
    parser.description = "Serve a page to explore trained models: samples, classes, interpolation, translation, reports."
    parser.add_argument("models", nargs="+", metavar="RUN_OR_CKPT", help="run folders or checkpoint files to load")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--device", default="cpu", help="device the models run on (default cpu)")
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_BYTES / 2**20, help="largest image upload in MB (default 10)")


def run(args) -> int:
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise UserError(f"--max-upload-mb must be greater than 0, got {args.max_upload_mb}")
    warning = host_warning(args.host)
    if warning:
        print(f"ganforge: {warning}", file=sys.stderr)
    app = App(args.models, device=args.device, max_upload_bytes=int(args.max_upload_mb * 2**20))
    server = make_server(app, args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    for entry in app.entries:
        print(f"  [{entry.index}] {entry.name}: {entry.generator.meta['model']} at step {entry.generator.step}")
    print(f"serving {len(app.entries)} model(s) on http://{host}:{server.server_address[1]}/  (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
        app.close()
    return 0
