"""python -m server --model FOLDER [--port 8000] [--host 127.0.0.1] [--api-key KEY] [--context N]
[--prompt-cache FOLDER]"""

from __future__ import annotations

import argparse
import ipaddress
import os
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
    ap.add_argument("--max-waiting", type=int, default=16,
                    help="requests that may wait for the model before new ones get 429 (busy)")
    ap.add_argument("--prompt-cache", default=None, metavar="FOLDER",
                    help="keep conversations' caches in FOLDER across restarts (default: in memory only)")
    return ap.parse_args(argv)


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
    import uvicorn

    from server.app import create_app
    from server.model import model_id_for, open_model
    from server.runner import EngineRunner

    runner = EngineRunner(lambda: open_model(model, args.context, args.prompt_cache),
                          max_waiting=args.max_waiting).start()
    app = create_app(runner, model_id_for(model), args.api_key)
    print(f"Serving {model_id_for(model)} at http://{args.host}:{args.port}/v1 (loading the model…)",
          file=sys.stderr)
    # uvicorn re-raises SIGTERM once it has shut down: exit through `finally`, so the engine thread
    # gets to write the prompt cache instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
