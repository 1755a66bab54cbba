"""The page's projection and editing: a picture projected into a model's latent space (latent/project.py) or a
sample's latent drawn from a seed, then moved along the model's editing directions (latent/directions.py).

A projected latent stays on the server, keyed by a random id the reply gives. A StyleGAN w+ latent is num_ws x
w_dim numbers (thousands at full width): sent back with every slider move it would cost a body that size each
time and a check of every number, where an id is one short string checked by its form. The store keeps the
latest MAX_LATENTS (the least recently used goes first) until the server stops; an id it no longer holds is
answered with one line asking to project again. A sample needs no store: its seed (and class) is its latent.

Projection takes seconds on a CPU. It runs in the one model worker like any model call, at most MAX_PROJECTIONS
waiting or running at once (one more is answered "busy" at once rather than queued behind minutes of work), and
reports its step to GET .../progress?ticket=T, which reads the store without waiting for the worker.
"""
from __future__ import annotations

import math
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ganforge.config import MAX_SEED
from ganforge.latent.space import Latents
from ganforge.web.operations import Entry, Upload, as_model_input, data_uri
from ganforge.web.validation import HTTPError, integer, number

MAX_LATENTS = 64  # projected latents kept per server (a few KB each)
MAX_PROJECTIONS = 2  # projections waiting or running at once
PAGE_STEPS = 100  # the page's default: half the command line's 200 for half the time (README: Projecting pictures)
STRENGTH = 3.0  # sliders run from -3 to 3 standard deviations along a direction, explore's default strengths
LATENT_ID = re.compile(r"[A-Za-z0-9_-]{16}")
TICKET = re.compile(r"[A-Za-z0-9_-]{8,64}")


class LatentStore:
    """Projected latents by id, each model's directions once loaded, and the progress of running projections."""

    def __init__(self, capacity: int = MAX_LATENTS, max_projections: int = MAX_PROJECTIONS):
        self.capacity, self.max_projections = capacity, max_projections
        self.lock = threading.Lock()
        self.latents: "OrderedDict[str, Tuple[int, Latents]]" = OrderedDict()
        self.directions: Dict[int, object] = {}  # model index -> latent.directions.Directions
        self.progress: Dict[str, Dict] = {}  # ticket -> {"state", "step", "steps"}
        self.projecting = 0
        self.stopping = False

    def keep(self, entry: Entry, latents: Latents) -> str:
        key = secrets.token_urlsafe(12)  # 16 characters of [A-Za-z0-9_-]
        with self.lock:
            self.latents[key] = (entry.index, latents)
            while len(self.latents) > self.capacity:
                self.latents.popitem(last=False)
        return key

    def get(self, entry: Entry, key) -> Latents:
        if not isinstance(key, str) or not LATENT_ID.fullmatch(key):
            raise HTTPError(400, f"latent must be the id a projection returned (16 letters, digits, - or _), got {key!r}")
        with self.lock:
            held = self.latents.get(key)
            if held is not None:
                self.latents.move_to_end(key)
        if held is None:
            raise HTTPError(404, f"this server holds no projected latent {key} (it keeps the latest {self.capacity} "
                                 "until it stops): project the picture again")
        index, latents = held
        if index != entry.index:
            raise HTTPError(400, f"latent {key} was projected with model {index}, not with {entry.name}")
        return latents

    @contextmanager
    def projection(self, ticket: Optional[str], steps: int):
        """A place for one projection (refused with "busy" beyond max_projections), its progress under `ticket`."""
        with self.lock:
            if self.projecting >= self.max_projections:
                raise HTTPError(503, f"{self.projecting} projection(s) already waiting or running; try again when one finishes")
            if ticket is not None and ticket in self.progress:
                raise HTTPError(400, f"ticket {ticket} is already in use")
            self.projecting += 1
            if ticket is not None:
                self.progress[ticket] = {"state": "queued", "step": 0, "steps": steps}
        try:
            yield lambda step: self._advance(ticket, step)
        finally:
            with self.lock:
                self.projecting -= 1
                self.progress.pop(ticket, None)

    def _advance(self, ticket: Optional[str], step: int) -> None:
        if self.stopping:  # Ctrl+C on `serve` ends a long projection at its next step
            raise HTTPError(503, "the server is stopping")
        if ticket is not None:
            with self.lock:
                self.progress[ticket].update(state="running", step=step)

    def close(self) -> None:
        self.stopping = True


def check_latent(entry: Entry) -> None:
    if not entry.caps["latent"]:
        what = "translates images: it " if entry.model.translates else ""
        raise HTTPError(400, f"{entry.name} {what}has no latent space to project into or edit in")


def _label(entry: Entry, label) -> Optional[torch.Tensor]:
    """The class of a projected picture or a sample, as one label (1,): needed by class-conditional models only."""
    if not entry.model.conditional:
        if label not in (None, ""):
            raise HTTPError(400, f"{entry.name} is not class-conditional: it takes no class")
        return None
    if label in (None, ""):
        raise HTTPError(400, f"{entry.name} is class-conditional: give the class (label)")
    return torch.tensor([entry.generator.label_index(label)])


# --- projection ----------------------------------------------------------------------------------------
def project(store: LatentStore, run: Callable, entry: Entry, upload: Upload, query: Dict[str, str]) -> Dict:
    """Runs in the request's thread: checks, takes a projection's place, then projects in the worker (`run`)."""
    from ganforge.latent.project import DEFAULT_STEPS

    check_latent(entry)
    steps = integer(query.get("steps", PAGE_STEPS), "steps", 1, DEFAULT_STEPS)
    ticket = query.get("ticket")
    if ticket is not None and not TICKET.fullmatch(ticket):
        raise HTTPError(400, "ticket must be 8 to 64 letters, digits, - or _")
    labels = _label(entry, query.get("label"))
    with store.projection(ticket, steps) as on_step:
        return run(_project, store, entry, upload, steps, labels, on_step)


def _project(store: LatentStore, entry: Entry, upload: Upload, steps: int, labels, on_step) -> Dict:
    from ganforge.imaging.transforms import to_uint8
    from ganforge.latent import project as projection

    target = as_model_input(entry, upload("a"))  # (1, C, size, size) uint8
    start = time.perf_counter()
    found, images = projection.project(entry.model, target, info=entry.generator.info, steps=steps, seed=0,
                                       labels=labels, on_step=on_step)
    ms = (time.perf_counter() - start) * 1000
    figure = lambda name: float(found.figures[name][0])  # noqa: E731
    return {"latent": store.keep(entry, found), "space": found.space, "steps": steps, "ms": round(ms, 1),
            "input": data_uri(target[0]), "reconstruction": data_uri(to_uint8(images)[0]),
            # identical images have an infinite PSNR, which JSON cannot carry
            "psnr": round(figure("psnr"), 2) if math.isfinite(figure("psnr")) else None, "ssim": round(figure("ssim"), 4)}


def progress(store: LatentStore, entry: Entry, query: Dict[str, str]) -> Dict:
    """The state of the projection under `ticket`: queued, running (step of steps) or unknown (done, or never sent)."""
    check_latent(entry)
    ticket = query.get("ticket") or ""
    if not TICKET.fullmatch(ticket):
        raise HTTPError(400, "ticket must be 8 to 64 letters, digits, - or _")
    with store.lock:
        return dict(store.progress.get(ticket) or {"state": "unknown"})


# --- directions and edits ------------------------------------------------------------------------------
def _directions_of(store: LatentStore, entry: Entry):
    """The model's directions, as `ganforge edit` finds them (kept in RUN/directions.npz), read once per server."""
    if entry.index not in store.directions:
        from ganforge.latent import directions as found

        store.directions[entry.index] = found.directions(entry.generator)
    return store.directions[entry.index]


def directions(store: LatentStore, entry: Entry) -> Dict:
    check_latent(entry)
    d = _directions_of(store, entry)
    rows = [{"name": name, "accuracy": None if math.isnan(float(a)) else round(float(a), 3), "keeps": list(keep)}
            for name, a, keep in zip(d.names, d.accuracies, d.keep)]
    return {"space": d.space, "strength": STRENGTH, "directions": rows}


def _source(store: LatentStore, entry: Entry, params: Dict) -> Tuple[Latents, bool]:
    """(the latent an edit starts from, whether it is a sample's): a projected one by id, or a seed's z."""
    if ("latent" in params) == ("seed" in params):
        raise HTTPError(400, "give either latent (the id a projection returned) or seed (a sample's)")
    if "latent" in params:
        if params.get("label") not in (None, ""):
            raise HTTPError(400, "a projected latent keeps the class it was projected with: drop label")
        return store.get(entry, params["latent"]), False
    seed = integer(params["seed"], "seed", 0, MAX_SEED)
    z = entry.model.latent(1, torch.Generator(device=entry.device).manual_seed(seed), entry.device)  # (1, z_dim)
    return Latents("z", z.cpu(), _label(entry, params.get("label"))), True


def _strengths(d, given) -> List[Tuple[str, float]]:
    """(direction, strength) for each non-zero strength asked, in the directions' own order."""
    if not isinstance(given, dict):
        raise HTTPError(400, "strengths must be an object {direction: strength}")
    unknown = [name for name in given if name not in d.names]
    if unknown:
        raise HTTPError(400, f"no direction {unknown[0]!r}; this model's directions: {', '.join(d.names)}")
    values = {name: number(v, f"the strength of {name}", -STRENGTH, STRENGTH) for name, v in given.items()}
    return [(name, values[name]) for name in d.names if values.get(name)]


def _edited(store: LatentStore, entry: Entry, params: Dict) -> Tuple[Latents, Latents, bool]:
    """(the start, the start moved along each direction in turn by its strength, whether the start is a sample)."""
    from ganforge.latent.directions import apply

    check_latent(entry)
    start, sample = _source(store, entry, params)
    given = params.get("strengths")
    if given is None or given == {}:  # the start itself: no need to find the directions first
        return start, start, sample
    d = _directions_of(store, entry)
    edited = start
    for name, strength in _strengths(d, given):
        # each with its default keep and hold, as `ganforge edit --direction NAME` (thick holds the digit)
        edited = apply(entry.model, entry.generator.info, edited, d, name, strength)
    return start, edited, sample


@torch.no_grad()
def _picture(entry: Entry, latents: Latents) -> str:
    from ganforge.imaging.transforms import to_uint8
    from ganforge.latent.space import render

    images = render(entry.model, Latents(latents.space, latents.values.to(entry.device), latents.labels))
    return data_uri(to_uint8(images.clamp(-1, 1).cpu())[0])


def edit(store: LatentStore, entry: Entry, params: Dict) -> Dict:
    """The image of a projected latent (or a sample's) moved along the directions given: {direction: strength}."""
    begin = time.perf_counter()
    start, edited, sample = _edited(store, entry, params)
    reply = {"image": _picture(entry, edited), "space": edited.space}
    if sample:
        reply["original"] = _picture(entry, start)
    reply["ms"] = round((time.perf_counter() - begin) * 1000, 1)
    return reply


def latent_file(store: LatentStore, entry: Entry, params: Dict) -> Tuple[int, str, bytes]:
    """The edited latent (the start where no strength is given) as a latent file: what `ganforge edit` reads."""
    from ganforge.latent.space import save_latents

    _, edited, _ = _edited(store, entry, params)
    with tempfile.TemporaryDirectory(prefix="ganforge-latent-") as folder:
        path = save_latents(Path(folder) / "latents.npz", edited, entry.generator.meta["model"])
        body = path.read_bytes()
    return 200, "application/octet-stream", body

