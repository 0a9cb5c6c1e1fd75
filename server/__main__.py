"""python -m server --model FOLDER [--port 8000] [--host 127.0.0.1] [--api-key KEY] [--context N]
                    [--allow-origin ORIGIN ...] [--max-body BYTES]

The port is taken and the model loaded before "Serving ..." is printed; when either fails, the
server says why in one sentence and exits with status 1."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m server",
                                 description="A local OpenAI-compatible API for gpt-oss (reasoning kept apart).")
    ap.add_argument("--model", default=None, help="model folder (default: gpt-oss-20b if installed, else the demo)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this computer only)")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--api-key", default=os.environ.get("GPT_OSS_API_KEY"),
                    help="require 'Authorization: Bearer KEY' (required when --host is not loopback)")
    ap.add_argument("--context", type=int, default=8192, help="context length in tokens")
    ap.add_argument("--max-waiting", type=int, default=16,
                    help="requests that may wait for the model before new ones get 429 (busy)")
    ap.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="a web page origin (e.g. http://localhost:3000) allowed to call the API from a browser; "
                         "repeat for more (default: none, so no web page can use the model)")
    ap.add_argument("--max-body", type=_size, default=None, metavar="BYTES",
                    help="largest request body accepted, e.g. 8M (default: 64 bytes per token of context, "
                         "at least 4M)")
    return ap.parse_args(argv)


def _size(text: str) -> int:
    """'8M', '512K', '1G' or a number of bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    try:
        value = int(float(text[:-1]) * units[text[-1]]) if text and text[-1] in units else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; give bytes or a number with K, M or G") from None
    if value < 1024:
        raise argparse.ArgumentTypeError("the body limit must be at least 1K")
    return value


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_model() -> str:
    """The installed gpt-oss-20b if the app downloaded one, else the bundled demo model."""
    from models.registry import demo_folder

    try:
        from app.paths import models_dir  # no Qt import: the app's folder layout only
        for folder in sorted(Path(models_dir()).glob("*gpt-oss-20b*")):
            if (folder / "config.json").is_file():
                return str(folder)
    except Exception:
        pass
    return str(demo_folder())


def main(argv=None) -> int:
    args = parse_args(argv)
    if not is_loopback(args.host) and not args.api_key:
        print(f"Listening on {args.host} lets other computers use the model; pass --api-key KEY (or set "
              "GPT_OSS_API_KEY) so only clients with the key can.", file=sys.stderr)
        return 2
    model = args.model or default_model()
    if not Path(model).is_dir():
        print(f"The model folder {model} does not exist; pass --model the folder that holds config.json, "
              "tokenizer.json and the weights.", file=sys.stderr)
        return 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        sock = listen(args.host, args.port)
    except OSError as e:
        print(e.strerror, file=sys.stderr)
        return 1
    import uvicorn

    from server.app import create_app
    from server.gate import default_max_body
    from server.model import model_id_for, open_model
    from server.names import aliases_for
    from server.runner import EngineRunner

    model_id = model_id_for(model)
    print(f"Loading {model_id}…", file=sys.stderr)
    runner = EngineRunner(lambda: open_model(model, args.context), max_waiting=args.max_waiting).start()
    runner.loaded.wait()
    if runner.load_error:
        print(f"The model could not be loaded: {runner.load_error}", file=sys.stderr)
        sock.close()
        runner.stop()
        return 1
    app = create_app(runner, model_id, args.api_key, aliases=aliases_for(model), allowed_origins=args.allow_origin,
                     max_body=args.max_body or default_max_body(args.context), loopback_only=is_loopback(args.host))
    print(f"Serving {model_id} at http://{args.host}:{args.port}/v1", file=sys.stderr)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        runner.stop()
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port; OSError with a one-sentence strerror when that can't be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # our own last run's connections in TIME_WAIT don't hold the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            why = f"Port {port} is already in use by another program; pass --port with a free port, or stop that program."
        elif e.errno in (errno.EACCES, errno.EPERM):
            why = f"This user may not listen on port {port}; pass --port 1024 or higher."
        else:
            why = f"The server can't listen on {host}:{port} ({e.strerror or e}); check --host and --port."
        raise OSError(e.errno, why) from None
    return sock


if __name__ == "__main__":
    sys.exit(main())
