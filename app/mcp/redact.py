"""Secrets in mcp.json (env values, HTTP headers, a URL's password or query) never reach the UI or
the logs: every sentence the MCP code shows or logs goes through `Redactor.redact` first."""
from __future__ import annotations

import logging
import re
import weakref

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


# Every log path MCP text can take: our code, the SDK and its HTTP stack (a URL, a server's words).
LOGGERS = ("app.mcp", "mcp", "mcp_types", "httpx", "httpx2", "httpcore", "httpcore2")
_sources: "weakref.WeakSet" = weakref.WeakSet()      # objects with a .redactor (live managers)
_installed = False


def redact_logs(source) -> None:
    """Hide `source.redactor`'s secrets in every log record of LOGGERS (and their children), from
    now on while `source` lives. A record factory, because a logger's filters don't apply to the
    records of its child loggers ("mcp.client.stdio")."""
    global _installed
    _sources.add(source)
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        if record.name.startswith(LOGGERS) and _sources:
            try:
                message = record.getMessage()
            except Exception:       # args that don't fit the format: logging reports it as usual
                return record
            for src in list(_sources):
                message = src.redactor.redact(message)
            record.msg, record.args = message, None
        return record
    logging.setLogRecordFactory(factory)
