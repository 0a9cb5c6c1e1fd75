"""python -m server --model FOLDER [--port 8000] [--host 127.0.0.1] [--api-key KEY] [--context N]
                    [--allow-origin ORIGIN ...] [--max-body BYTES]
                    [--library FOLDER ...] [--zim FILE ...]   (the built-in web_search tool: docs/browser.md)
                   [--prompt-cache FOLDER]   (conversations' caches kept across restarts)
                   [--log-requests]   (one line per request on stderr; never bodies or the key)

The port is taken and the model loaded before "Serving ..." is printed; when either fails, the
server says why in one sentence and exits with status 1.

Across Macs: `mlx.launch … -m server --model FOLDER --distributed` (docs/distributed.md): every
rank loads its share of the layers; rank 0 serves the API, the others serve rank 0.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import signal
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
    ap.add_argument("--distributed", action="store_true",
                    help="serve a pipeline across Macs, as one rank under mlx.launch (rank 0 listens)")
    ap.add_argument("--max-waiting", type=int, default=16,
                    help="requests that may wait for the model before new ones get 429 (busy)")
    ap.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="a web page origin (e.g. http://localhost:3000) allowed to call the API from a browser; "
                         "repeat for more (default: none, so no web page can use the model)")
    ap.add_argument("--max-body", type=_size, default=None, metavar="BYTES",
                    help="largest request body accepted, e.g. 8M (default: 64 bytes per token of context, "
                         "at least 4M)")
    ap.add_argument("--prompt-cache", default=None, metavar="FOLDER",
                    help="keep conversations' caches in FOLDER across restarts (default: in memory only)")
    ap.add_argument("--log-requests", action="store_true",
                    help="print one line per request answered on stderr: time, client, method, path, model, "
                         "status, tokens, duration (never what was sent, nor the key)")
    ap.add_argument("--library", action="append", default=[], metavar="FOLDER",
                    help="a folder of documents the built-in web_search tool searches (repeatable; nothing goes to the web)")
    ap.add_argument("--zim", action="append", default=[], metavar="FILE",
                    help="an offline encyclopedia (Kiwix .zim) for web_search (repeatable)")
    ap.add_argument("--index", default=None, metavar="FOLDER",
                    help="where the library's search index is kept (default: under ~/.cache/gpt-oss-chat)")
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
        from models.locations import models_dir  # where the desktop app downloads models
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
    sources = None
    if args.library or args.zim:  # indexed before serving: a search never waits for it
        from engine.browser.sources import open_sources
        from server.web_search import Sources

        try:
            sources = Sources(open_sources(args.library, args.zim, args.index, _index_progress))
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return 1
    import uvicorn

    from engine import open_chat
    from engine.front_door import model_name
    from server.app import create_app
    from server.gate import default_max_body
    from server.names import aliases_for
    from server.runner import EngineRunner

    opener, closing = (lambda: open_chat(model, context_length=args.context, cache_folder=args.prompt_cache)), None
    if args.distributed:
        from engine.distributed import init_group, open_pipeline_chat
        from engine.errors import ModelError

        group = init_group()
        if group.rank() != 0:  # serve rank 0's layers requests until it closes the pipeline
            try:
                open_pipeline_chat(model, args.context, group=group)
            except ModelError:
                return 1  # rank 0 says why
            return 0
        say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
        opener = lambda: open_pipeline_chat(model, args.context, group=group, say=say)  # noqa: E731
        closing = lambda: runner.session and runner.session.model.close()  # noqa: E731 (the other ranks exit)
    try:
        sock = listen(args.host, args.port)
    except OSError as e:
        print(e.strerror, file=sys.stderr)
        return 1
    name = model_name(model)
    print(f"Loading {name}…", file=sys.stderr)
    runner = EngineRunner(opener, max_waiting=args.max_waiting).start()
    runner.loaded.wait()
    if runner.load_error:
        print(f"The model could not be loaded: {runner.load_error}", file=sys.stderr)
        sock.close()
        runner.stop(closing=closing)
        return 1
    app = create_app(runner, name, args.api_key, sources, aliases=aliases_for(model), allowed_origins=args.allow_origin,
                     max_body=args.max_body or default_max_body(args.context), loopback_only=is_loopback(args.host),
                     on_request=_print_request if args.log_requests else None)
    print(f"Serving {name} at http://{args.host}:{args.port}/v1", file=sys.stderr)
    # uvicorn re-raises SIGTERM once it has shut down: exit through `finally`, so the engine thread
    # gets to write the prompt cache instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        runner.stop(closing=closing)
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


def _print_request(record) -> None:
    from server.request_log import log_line

    print(log_line(record), file=sys.stderr, flush=True)


def _index_progress(done: int, total: int, path) -> None:
    if done == total or done % 500 == 0:
        print(f"Indexing the library: {done}/{total} files", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
