"""A real HTTP server on 127.0.0.1 for download tests: serves bytes from a dict, honours Range unless told not to."""
from __future__ import annotations

import re
from contextlib import contextmanager
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Optional


class FileServer:
    """``files`` maps a URL path ("/mnist/x.gz") to its bytes; ``requests`` records (path, Range header)."""

    def __init__(self, files: Dict[str, bytes], *, honour_range: bool = True, cut_after: Optional[int] = None):
        self.files = files
        self.honour_range = honour_range
        self.cut_after = cut_after  # when set, each body stops after this many bytes and the connection closes
        self.requests: List[tuple] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                wanted = self.headers.get("Range")
                server.requests.append((self.path, wanted))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body = body[: server.cut_after]
                    self.close_connection = True
                self.wfile.write(body)
                server.bytes_sent += len(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@contextmanager
def refused_url(path: str = "/file") -> Iterator[str]:
    """A URL on a 127.0.0.1 port that is bound but not listening: connecting to it is refused at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}{path}"
