"""Who may use the app's local API: its key, this computer or the network, and the address clients use.

No Qt and no server here: Settings' Local API section and app.api_server both read these.
"""
from __future__ import annotations

import re
import secrets
import socket

LOOPBACK = "127.0.0.1"     # this computer only
EVERYWHERE = "0.0.0.0"     # every network interface: other devices too (only with a key)
KEY_PREFIX = "sk-local-"   # says where a key came from when it turns up in a client's config
NEEDS_KEY = ("Other devices can reach the server only with an API key, so that nobody else on the network "
             "can use the model: generate a key first.")


def new_api_key() -> str:
    """A random key: 32 bytes from the OS's generator, URL-safe (it goes in an HTTP header)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_problem(key: str) -> str:
    """One sentence when `key` can't be a key ("" when it can, or when there is none)."""
    if key and not re.fullmatch(r"[\x21-\x7e]{8,200}", key):
        return ("An API key is 8 to 200 letters, digits or symbols, without spaces; "
                "press Generate for a good one.")
    return ""


def lan_address() -> str:
    """This computer's address on its network, as other devices reach it (e.g. 192.168.1.20); its
    host name when it has no network route (nothing is sent: a UDP socket only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            address = ""
    if address and not address.startswith("127."):
        return address
    return socket.gethostname() or LOOPBACK


def base_url(host: str, port: int) -> str:
    """The base URL a client uses (OpenAI's base_url) for a server listening on host:port."""
    where = lan_address() if host == EVERYWHERE else LOOPBACK
    return f"http://{where}:{port}/v1"
