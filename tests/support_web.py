"""Shared by the web tests: two small trained runs (made once per session) and a live page on 127.0.0.1."""
from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from PIL import Image

import ganforge
from ganforge.web.server import App, make_server

# Short real runs that leave everything a report shows: losses every 5 steps, sample grids every 10.
RUN_SETTINGS = ["eval.metrics=none", "sample.every=10", "log.every=5"]
# The image-to-image families, narrow and brief: the page's path through them, not their quality, is tested.
TRANSLATORS = ("cyclegan", "srgan", "inpaint")
# StarGAN and StyleGAN, as narrow and brief
BRIEF = {"stargan": ["width=8", "n_blocks=1"], "stylegan": ["width=8", "max_width=16"]}


def trained_runs(tmp_path_factory, models=("dcgan", "cgan")) -> Dict[str, Path]:
    """Real runs of `models` on their default data; each trained once per session and shared by the files:
    DCGAN and CGAN 30 steps at full width, the others 4 steps at width 8."""
    base = tmp_path_factory.getbasetemp() / "web-runs"
    runs = {}
    for model in models:
        out = base / model
        if not (out / "checkpoints").is_dir():
            if model in TRANSLATORS or model in BRIEF:
                brief = BRIEF.get(model, ["width=8"])
                ganforge.train(model, steps=4, batch_size=4, out=str(out), set=[*RUN_SETTINGS, *brief], progress=False)
            else:
                ganforge.train(model, steps=30, batch_size=16, out=str(out), set=RUN_SETTINGS, progress=False)
        runs[model] = out
    return runs


@contextmanager
def serving(sources, prepare=None, **options) -> Iterator[Tuple[str, App]]:
    """A real server for `sources` on a free 127.0.0.1 port; `prepare(app)` runs before it starts."""
    app = App([str(s) for s in sources], **options)
    if prepare:
        prepare(app)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        app.close()


def request(url: str, body: Optional[bytes] = None, payload: Optional[dict] = None, headers: Optional[dict] = None,
            method: Optional[str] = None) -> Tuple[int, dict, bytes]:
    """(status, headers, body) of one HTTP request; JSON `payload` or raw `body` make it a POST."""
    if payload is not None:
        body = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def call(url: str, payload: Optional[dict] = None, body: Optional[bytes] = None) -> Tuple[int, dict]:
    status, _, data = request(url, body=body, payload=payload)
    return status, json.loads(data)


def decode(uri: str) -> np.ndarray:
    """A data: URI PNG -> uint8 (H, W) or (H, W, C)."""
    import base64

    head, data = uri.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def png_file(path: Path, image: np.ndarray) -> Path:
    """Write uint8 (H, W) or (H, W, 3) as a PNG file."""
    Image.fromarray(image).save(path)
    return path


def digit(index: int = 0) -> np.ndarray:
    """A real held-out MNIST digit, uint8 (28, 28)."""
    from ganforge.data.mnist5k import mnist5k

    return mnist5k("test").images[index, 0].numpy()


def zscale_truncation(model):
    """The truncation trick with the prior's mean (0) as the centre: psi * z, as StyleGAN does in W."""
    return lambda z, psi, labels=None: model.G(psi * z, labels)


def grid_of(images: torch.Tensor, nrow: int) -> np.ndarray:
    from ganforge.imaging.grid import make_grid

    return make_grid(images, nrow=nrow)[0].numpy()
