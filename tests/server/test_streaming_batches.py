"""Events cross from the engine thread to the event loop in batches, and a batch that waited goes
out as one chunk: the text a client puts together must stay exactly the engine's."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import pytest

from engine.harmony import MessageEnd, MessageStart, TextDelta
from models.registry import demo_folder
from server.app import _pieces
from server.chat_api import ChatCompletion
from server.reply import Piece, ReplyReader, merge
from server.runner import END, Job

QUESTION = "What is 486 + 357?"


def _job(loop) -> Job:
    job = Job(messages=[])
    job.loop, job._ready = loop, asyncio.Event()
    return job


def test_take_gets_every_item_in_order_and_never_misses_a_wake_up():
    """The producer thread puts bursts, then waits until the consumer has them: a lost wake-up
    leaves the last put unseen and both sides stuck (the timeout fails the test). A tiny switch
    interval makes the threads interleave between any two bytecodes, where such races live."""
    n, burst = 20000, 2

    async def consume():
        job = _job(asyncio.get_running_loop())
        seen = threading.Semaphore(0)

        def produce():
            for i in range(0, n, burst):
                for j in range(i, min(i + burst, n)):
                    job.put(j)
                seen.acquire()  # the consumer has everything so far
            job.put(END)

        threading.Thread(target=produce, daemon=True).start()
        got, batches = [], 0
        while not got or got[-1] is not END:
            items = await job.take()
            batches += bool(items)
            got += items
            if items and items[-1] is not END and (items[-1] + 1) % burst == 0:
                seen.release()
        return got, batches

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        got, batches = asyncio.run(asyncio.wait_for(consume(), 30))
    finally:
        sys.setswitchinterval(switch)
    assert got == list(range(n)) + [END]
    assert batches < n  # puts that came while the loop was busy were taken together


@pytest.fixture(scope="module")
def engine_events():
    """The demo model's own events for one answer (it decodes greedily)."""
    from engine import open_chat

    chat = open_chat(demo_folder(), context_length=2048)
    return list(chat.reply([{"role": "user", "content": QUESTION}], effort="high",
                            sampling=chat.sampling(0.0), max_tokens=1024))


def _texts(pieces) -> dict:
    out: dict = {}
    for p in pieces:
        out[p.kind] = out.get(p.kind, "") + p.text
    return out


def test_a_batch_that_waited_is_merged_and_keeps_the_engine_text(engine_events):
    want = {"reasoning": "".join(e.text for e in engine_events if isinstance(e, TextDelta) and e.channel == "analysis"),
            "content": "".join(e.text for e in engine_events if isinstance(e, TextDelta) and e.channel == "final")}
    deltas = sum(isinstance(e, TextDelta) for e in engine_events)
    assert want["reasoning"] and want["content"] and deltas > 20

    async def stream(batched: bool):
        job = _job(asyncio.get_running_loop())
        reader = ReplyReader()
        if batched:  # everything arrived while the loop was busy: one batch
            for ev in engine_events:
                job.put(ev)
            job.put(END)
            first = await job.take()
        else:  # the loop kept up: one event per batch
            first = [engine_events[0]]
            for ev in engine_events[1:]:
                job.put(ev)
            job.put(END)
            job.take = _one_at_a_time(job._inbox)
        return [pieces async for pieces in _pieces(job, reader, first)], reader

    batches, reader = asyncio.run(stream(batched=True))
    assert len(batches) == 1
    merged = batches[0]
    assert _texts(merged) == want and (reader.reasoning, reader.content) == (want["reasoning"], want["content"])
    assert [p.kind for p in merged] == ["reasoning", "content"]  # one piece per channel, not one per token

    one_by_one, _ = asyncio.run(stream(batched=False))
    assert len(one_by_one) > 20 and _texts(p for b in one_by_one for p in b) == want


def _one_at_a_time(inbox):
    async def take():
        return [inbox.popleft()]
    return take


def test_merge_joins_only_neighbours_of_the_same_kind_and_call():
    pieces = [Piece("reasoning", "a"), Piece("reasoning", "b"), Piece("content", "c"), Piece("call", call=0),
              Piece("arguments", '{"a"', 0), Piece("arguments", ": 1}", 0), Piece("call", call=1),
              Piece("arguments", "{}", 1), Piece("content", "d"), Piece("content", "e")]
    assert merge(pieces) == [Piece("reasoning", "ab"), Piece("content", "c"), Piece("call", call=0),
                             Piece("arguments", '{"a": 1}', 0), Piece("call", call=1), Piece("arguments", "{}", 1),
                             Piece("content", "de")]


@pytest.mark.parametrize("text", ["843", 'say "hi"\n', "naïve — 日本語 \\ \t", "</script>\u2028"])
def test_piece_frames_are_the_chunks_json(text):
    reader = ReplyReader()
    reader.feed(MessageStart("assistant", "commentary", "functions.add"))
    completion = ChatCompletion('demo "model"', reader, lambda _: 0)
    for piece in (Piece("content", text), Piece("reasoning", text), Piece("call", call=0),
                  Piece("arguments", text, 0)):
        frame = completion.piece_frame(piece)
        assert frame.startswith("data: ") and frame.endswith("\n\n")
        assert json.loads(frame[6:]) == json.loads(completion.chunk(completion.delta(piece)))
    reader.feed(MessageEnd("commentary"))
