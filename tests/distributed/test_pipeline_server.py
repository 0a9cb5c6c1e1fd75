"""The local server serves a pipeline (mlx.launch -n 2 … -m server --distributed): the official
openai client gets the same greedy answer from two local ranks as from the engine in one process,
so a model split across Macs is reachable from every OpenAI client, not only the terminal chat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import openai

from models.registry import demo_folder
from tests.distributed.test_pipeline import LAUNCH, ROOT, _free_ports, pytestmark  # noqa: F401
from tests.server.served import free_port

QUESTION = "What is 486 + 357?"


def direct_answer() -> str:
    from engine import open_chat
    from engine.events import TextDelta

    session = open_chat(demo_folder(), context_length=2048)
    return "".join(ev.text for ev in session.reply([{"role": "user", "content": QUESTION}], max_tokens=1024)
                   if isinstance(ev, TextDelta) and ev.channel == "final")


def test_two_ranks_serve_the_openai_client_what_one_process_answers():
    port = free_port()
    launch = subprocess.Popen([str(LAUNCH), "-n", "2", "--backend", "ring", "-p", str(_free_ports(2)),
                               "--env", f"PYTHONPATH={ROOT}", "--python", sys.executable,
                               "-m", "server", "--model", str(demo_folder()), "--port", str(port),
                               "--context", "2048", "--distributed"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and launch.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        assert launch.poll() is None, launch.stderr.read()[-2000:]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        got = client.chat.completions.create(model=demo_folder().name, messages=[{"role": "user", "content": QUESTION}])
        assert got.choices[0].message.content == direct_answer() and "843" in got.choices[0].message.content
    finally:
        os.killpg(launch.pid, signal.SIGTERM)
        try:
            _, err = launch.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            _, err = launch.communicate()
    assert "rank 1: layers" in err and "Traceback" not in err, err[-2000:]
