"""A tiny Hugging Face-like file server on 127.0.0.1 for download tests.

Serves /{repo}/resolve/{rev}/{name} with the headers huggingface_hub reads (ETag, X-Repo-Commit,
Content-Length), honours Range requests, and can cut a connection after N bytes to simulate a
dropped network.
"""
from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self, files: dict[str, bytes], repo="openai/gpt-oss-20b"):
        self.files = dict(files)
        self.repo = repo
        self.etags = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
        self.cut_after: dict[str, int] = {}      # name -> bytes to send before dropping (once)
        self.requests: list[tuple[str, str, str | None]] = []   # (method, name, Range header)
        self.bytes_sent = 0
        self.delay = 0.0                          # seconds per 64 KiB sent: a slow line
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _name(self):
                prefix = f"/{hub.repo}/resolve/main/"
                return self.path[len(prefix):] if self.path.startswith(prefix) else None

            def _head(self, name, body, start=0):
                status = 206 if start else 200
                self.send_response(status)
                self.send_header("ETag", f'"{hub.etags[name]}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()

            def do_HEAD(self):
                name = self._name()
                hub.requests.append(("HEAD", name, None))
                if name not in hub.files:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._head(name, hub.files[name])

            def do_GET(self):
                name = self._name()
                rng = self.headers.get("Range")
                hub.requests.append(("GET", name, rng))
                if name not in hub.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = hub.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self._head(name, body, start)
                payload = body[start:]
                cut = hub.cut_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(payload[:cut])
                    hub.bytes_sent += min(cut, len(payload))
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                try:
                    for i in range(0, len(payload), 65536):
                        self.wfile.write(payload[i:i + 65536])
                        hub.bytes_sent += len(payload[i:i + 65536])
                        if hub.delay:
                            time.sleep(hub.delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client cancelled

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
