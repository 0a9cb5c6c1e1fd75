"""Fixtures: a demo-model server shared by a test module."""

import pytest

from models.registry import demo_folder
from served import Server


@pytest.fixture(scope="module")
def demo_server():
    server = Server("--model", str(demo_folder()), "--context", "2048")
    yield server
    server.stop()
