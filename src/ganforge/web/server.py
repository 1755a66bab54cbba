"""`ganforge serve`'s HTTP side: routing, limits, security headers and the one worker that runs models.

Standard library only (http.server): `pip install ganforge` stays light, the page works offline, and the
page itself is three static files (static/) with no build step and nothing fetched from elsewhere.

The browser names models by their place on the command line, never by a path, so only the checkpoints
given there can be loaded. Routes (I = a model's index; what each does is in web/operations.py):

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
    POST /api/models/I/project?steps=N&label=L&ticket=T&example=K    body: the image file -> its latent's id
    GET  /api/models/I/progress?ticket=T       the step a projection is at (does not wait for the worker)
    GET  /api/models/I/directions              the model's editing directions (web/latent_ops.py)
    POST /api/models/I/edit                    JSON {latent: ID | seed, label, strengths: {name: S}} -> the image
    POST /api/models/I/latents                 the same JSON -> the edited latent as a .npz latent file

Every model run goes through one worker thread (torch already uses the cores within a run), so requests
queue instead of running in parallel; uploads are limited in bytes and pixels and decoded by read_image; a
loopback server answers only to its own host names, so a page elsewhere cannot reach it by DNS rebinding.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable, Dict, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ganforge.errors import UserError
from ganforge.web import latent_ops, operations, report
from ganforge.web.operations import Entry
from ganforge.web.validation import HTTPError, decode_upload, integer, json_body

log = logging.getLogger("ganforge.web")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
MAX_UPLOAD_BYTES = 10 * 2**20
# A phone photo is ~12 MP; anything far larger is refused from its header before it is decoded.
MAX_UPLOAD_PIXELS = 25_000_000
MAX_JSON_BYTES = 64 * 2**10
MAX_PENDING = 32  # queued model runs beyond which the server answers "busy"
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
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
    """The models named on the command line; `handle` maps one request to (status, type, body)."""

    def __init__(self, sources: Sequence[str], device: str = "cpu", max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 max_upload_pixels: int = MAX_UPLOAD_PIXELS):
        self.max_upload_bytes, self.max_upload_pixels = max_upload_bytes, max_upload_pixels
        self.entries = operations.load_entries(sources, device)
        self.worker = Worker()
        self.latents = latent_ops.LatentStore()

    def _entry(self, index: str) -> Entry:
        if not index.isdigit() or int(index) >= len(self.entries):
            raise HTTPError(404, f"no model {index}: this server has models 0..{len(self.entries) - 1}")
        return self.entries[int(index)]

    def _upload(self, entry: Entry, body: bytes, query: Dict[str, str]) -> operations.Upload:
        """The request's input image for a side of the model's data: example K, or the uploaded file."""
        def image(side: str) -> np.ndarray:
            if "example" in query:
                examples = operations.example_images(entry, side)
                if examples is None:
                    raise HTTPError(400, f"{entry.name} has no example images")
                k = integer(query["example"], "example", 0, len(examples) - 1)
                return examples[k].permute(1, 2, 0).numpy()
            return decode_upload(body, query.get("name") or "the upload", self.max_upload_pixels)
        return image

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
        params = lambda: json_body(read_body(MAX_JSON_BYTES))  # noqa: E731
        upload = lambda: self._upload(entry, read_body(self.max_upload_bytes), query)  # noqa: E731
        run = self.worker.call
        routes = {
            ("POST", "generate"): lambda: run(operations.generate, entry, params()),
            ("POST", "interpolate"): lambda: run(operations.interpolate, entry, params()),
            ("POST", "mix"): lambda: run(operations.mix, entry, params()),
            ("POST", "translate"): lambda: run(operations.translate, entry, upload(), query),
            ("POST", "discriminate"): lambda: run(operations.judge, entry, upload(), query),
            ("GET", "examples"): lambda: run(operations.examples, entry, query),
            ("GET", "report"): lambda: report.report(entry),
            ("POST", "project"): lambda: latent_ops.project(self.latents, run, entry, upload(), query),
            ("GET", "progress"): lambda: latent_ops.progress(self.latents, entry, query),
            ("GET", "directions"): lambda: run(latent_ops.directions, self.latents, entry),
            ("POST", "edit"): lambda: run(latent_ops.edit, self.latents, entry, params()),
            ("POST", "latents"): lambda: run(latent_ops.latent_file, self.latents, entry, params()),
        }
        if action == "samples" and step is not None and method == "GET":
            return 200, "image/png", report.sample_png(entry, step)
        if step is not None or (method, action) not in routes:
            allowed = [m for m, a in routes if a == action]
            if allowed:
                raise HTTPError(405, f"{path} takes {' or '.join(allowed)}, not {method}")
            raise HTTPError(404, f"no page {path}")
        result = routes[(method, action)]()
        return result if isinstance(result, tuple) else json_reply(result)  # a tuple: a file, as it is

    def close(self) -> None:
        self.latents.close()
        self.worker.shutdown()


def json_reply(payload: Dict) -> Tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(payload).encode()


def static_file(name: str) -> bytes:
    return resources.files("ganforge.web").joinpath("static", name).read_bytes()


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
