"""`ganforge serve RUN_OR_CKPT...`: its flags, and starting the page (web/server.py) for the models named."""
from __future__ import annotations

import sys

from ganforge.errors import UserError
from ganforge.web.server import DEFAULT_HOST, DEFAULT_PORT, MAX_UPLOAD_BYTES, App, host_warning, make_server


def add_arguments(parser) -> None:
    parser.description = "Serve a page to explore trained models: samples, classes, interpolation, translation, projection and editing, reports."
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
