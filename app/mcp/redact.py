"""Secrets in mcp.json (env values, HTTP headers, a URL's password or query) never reach the UI or
the logs: every sentence the MCP code shows or logs goes through `Redactor.redact` first."""
from __future__ import annotations

import re

HIDDEN = "•••"
# Bearer tokens and key=value secrets a server may echo in its own error text.
_TOKENS = re.compile(r"(?i)\b(bearer\s+|(?:api[_-]?key|token|secret|password)\s*[=:]\s*)([^\s\"',;]{4,})")


class Redactor:
    """Hides the secret values of the given servers (and bearer-like tokens) in any text."""

    def __init__(self, servers=()):
        secrets = {s for server in servers for s in server.secrets()}
        self._secrets = sorted(secrets, key=len, reverse=True)   # longest first: no partial leftovers

    def redact(self, text: str) -> str:
        text = str(text)
        for secret in self._secrets:
            text = text.replace(secret, HIDDEN)
        return _TOKENS.sub(lambda m: m.group(1) + HIDDEN, text)
