"""The server's built-in web_search over --library/--zim, with the official openai client: a
scripted model (real renderer and parser) in a real uvicorn server in this process, so the
browsing loop, the web_search_call items, the url_citation annotations and the errors are checked
on the wire; and the real `python -m server --library` process with the demo model."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn

from engine.browser.sources import open_sources
from scripted import ScriptedSession
from server.app import create_app
from server.runner import EngineRunner
from server.web_search import Sources
from test_browser_turn import FINAL, OPEN, SEARCH

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from served import Server, free_port  # noqa: E402

from models.registry import demo_folder  # noqa: E402


class LiveServer:
    """create_app over a scripted model, served by uvicorn on a thread of this process."""

    def __init__(self, enc, replies, sources):
        self.session = ScriptedSession(enc, replies)
        self.runner = EngineRunner(lambda: self.session).start()
        self.port = free_port()
        config = uvicorn.Config(create_app(self.runner, "scripted", None, sources), port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started

    def client(self):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="x", max_retries=0)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.runner.stop()


@pytest.fixture
def sources(notes, tmp_path):
    return Sources(open_sources([str(notes)], [], tmp_path / "index"))


@pytest.fixture
def live(enc, sources):
    servers = []

    def make(replies, with_sources=True):
        servers.append(LiveServer(enc, replies, sources if with_sources else None))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_responses_web_search_returns_calls_and_cited_answer(live, notes):
    server = live([SEARCH, OPEN, FINAL])
    r = server.client().responses.create(model="scripted", input="How high is the spring tide at Brest?",
                                         tools=[{"type": "web_search"}])
    kinds = [item.type for item in r.output]
    assert kinds == ["reasoning", "web_search_call", "web_search_call", "message"]
    search, opened = r.output[1], r.output[2]
    assert search.action.type == "search" and search.action.query == "spring tide Brest"
    assert opened.action.type == "open_page" and opened.action.url == (notes / "tides.md").as_uri()
    text = r.output[3].content[0]
    assert text.text == "The spring tide at Brest peaks at 7.9 metres 【1†L2】."
    (note,) = text.annotations
    assert note.type == "url_citation" and note.url == (notes / "tides.md").as_uri() + "#L2-L2"
    assert text.text[note.start_index:note.end_index] == "【1†L2】" and note.title == "Tide tables"
    assert r.status == "completed" and r.usage.output_tokens > 0
    # the model saw the page: the third prompt holds the opened document
    assert b"7.9 metres" in bytes(server.session.enc.decode_bytes(server.session.prompts[2]))


def test_responses_streaming_sends_web_search_events(live):
    server = live([SEARCH, OPEN, FINAL])
    with server.client().responses.stream(model="scripted", input="tides?", tools=[{"type": "web_search"}]) as s:
        kinds = [ev.type for ev in s]
        final = s.get_final_response()
    assert kinds.count("response.web_search_call.completed") == 2
    assert "response.output_text.annotation.added" in kinds
    assert final.output[-1].content[0].annotations[0].url.endswith("tides.md#L2-L2")


def test_a_follow_up_keeps_the_pages_open(live):
    follow = '<|channel|>analysis to=browser.find code<|message|>{"pattern": "Filler line 3 ", "cursor": 1}<|call|>'
    server = live([SEARCH, OPEN, FINAL, follow, FINAL.replace("【1†L2】", "【2†L0】")])
    client = server.client()
    first = client.responses.create(model="scripted", input="tides?", tools=[{"type": "web_search"}])
    second = client.responses.create(model="scripted", input="and line 3?", tools=[{"type": "web_search"}],
                                     previous_response_id=first.id)
    assert second.output[0].type == "web_search_call" and second.output[0].action.type == "find"
    # the second turn's prompt carries on from the first's pages: cursor 1 still exists
    assert "match at L" in server.session.enc.decode(server.session.prompts[-1])


def test_chat_completions_web_search_options(live, notes):
    server = live([SEARCH, OPEN, FINAL])
    r = server.client().chat.completions.create(model="scripted", messages=[{"role": "user", "content": "tides?"}],
                                                web_search_options={})
    message = r.choices[0].message
    assert message.content == "The spring tide at Brest peaks at 7.9 metres 【1†L2】."
    assert message.annotations[0].url_citation.url == (notes / "tides.md").as_uri() + "#L2-L2"
    assert r.choices[0].finish_reason == "stop"


def test_web_search_without_sources_is_a_400(live):
    server = live([FINAL], with_sources=False)
    with pytest.raises(openai.BadRequestError) as e:
        server.client().responses.create(model="scripted", input="x", tools=[{"type": "web_search"}])
    assert e.value.status_code == 400 and "--library FOLDER or --zim FILE" in str(e.value)


def test_the_real_server_with_a_library_and_the_demo_model(notes, tmp_path):
    """python -m server --library: indexes, then serves; the demo model (not trained on the browser)
    answers a web_search request; a missing folder is one sentence."""
    server = Server("--model", str(demo_folder()), "--context", "2048", "--library", str(notes),
                    "--index", str(tmp_path / "index"))
    try:
        r = server.client().responses.create(model=demo_folder().name, input="What is 2+3?",
                                             tools=[{"type": "web_search"}], max_output_tokens=64)
        assert r.status in ("completed", "incomplete") and r.output
    finally:
        server.stop()
    assert (tmp_path / "index" / "library.sqlite3").is_file()
    run = subprocess.run([sys.executable, "-m", "server", "--library", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1 and "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_a_real_checkpoint_forced_to_search(notes, tmp_path):
    """The demo model (a real gpt-oss-architecture checkpoint, not trained on the browser) forced by
    tool_choice web_search: constrained decoding writes a well-formed browser.search call, the server
    runs it over the library and the model goes on reading the results page."""
    server = Server("--model", str(demo_folder()), "--context", "2048", "--library", str(notes),
                    "--index", str(tmp_path / "index"))
    try:
        r = server.client().responses.create(model=demo_folder().name, input="How high is the tide at Brest?",
                                             tools=[{"type": "web_search"}], tool_choice={"type": "web_search"},
                                             max_output_tokens=400)
    finally:
        server.stop()
    calls = [item for item in r.output if item.type == "web_search_call"]
    assert calls and calls[0].action.type == "search" and calls[0].status == "completed"
    assert isinstance(calls[0].action.query, str) and len(calls[0].action.query) <= 200


def test_chat_completions_streaming_sends_the_annotations_before_the_end(live, notes):
    server = live([SEARCH, OPEN, FINAL])
    stream = server.client().chat.completions.create(model="scripted", stream=True, web_search_options={},
                                                     messages=[{"role": "user", "content": "tides?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    notes_ = [a for c in chunks if c.choices for a in (c.choices[0].delta.model_extra or {}).get("annotations") or []]
    assert text == "The spring tide at Brest peaks at 7.9 metres 【1†L2】."
    assert notes_ and notes_[0]["url_citation"]["url"] == (notes / "tides.md").as_uri() + "#L2-L2"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_output_items_sent_back_as_input_are_accepted(live):
    server = live([SEARCH, OPEN, FINAL, FINAL])
    client = server.client()
    first = client.responses.create(model="scripted", input="tides?", tools=[{"type": "web_search"}])
    items = [{"role": "user", "content": "tides?"}] + [i.model_dump(exclude_none=True) for i in first.output] + \
        [{"role": "user", "content": "thanks, and again?"}]
    again = client.responses.create(model="scripted", input=items, tools=[{"type": "web_search"}])
    assert again.output[-1].type == "message"
