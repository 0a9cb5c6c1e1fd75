"""A real server process on a free port, and the official openai client pointed at it."""

from __future__ import annotations

import httpx

from server.process import ROOT, ServerProcess, free_port

__all__ = ["ROOT", "Server", "free_port"]


class Server(ServerProcess):
    """`python -m server ...` as a user starts it (server/process.py), with the test's helpers."""

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=5).json()

    def client(self, **kw):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=kw.pop("api_key", "unused"), max_retries=0, **kw)
