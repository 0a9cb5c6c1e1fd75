"""engine.prompt_cache: several conversations' caches at once, on a real tiny checkpoint.

Each reply's `reused_tokens` says how much of its prompt came from a cache; the logits after a
resume equal a fresh prefill's. Against the session as it was (one cache, rewound for every
prompt), the window and two API clients alternating evicted each other: every turn prefilled its
whole conversation.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.generate import SamplingParams
from engine.harmony import render_prompt
from engine.prompt_cache import PromptCache
from engine.session import ChatSession, Done

GREEDY = SamplingParams(temperature=0.0)
DATE = "2026-11-22"


@pytest.fixture(scope="module")
def model(tiny_chat_folder):
    return load_model(tiny_chat_folder, dtype="float32")


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text, "channel": "final"}


def turn(session, chat, owner=None):
    """One reply; the chat gets the answer as the app would store it. Returns the Done event."""
    events = list(session.reply(chat, sampling=GREEDY, max_tokens=4, date=DATE, owner=owner))
    done = events[-1]
    assert isinstance(done, Done)
    chat.append(A(f"answer {len(chat)}"))
    return done


def test_window_and_two_api_clients_alternating_each_prefill_only_their_new_message(model, enc):
    session = ChatSession(model, enc, context_length=8192)
    chats = {who: [U(f"{who} opens with a question about topic {i} " * 3)] for i, who in
             enumerate(("window", "api", "api2"))}
    last_prompt = {}
    for round_ in range(4):
        for who, chat in chats.items():
            done = turn(session, chat, owner=who)
            if round_:
                # everything up to the last prompt's `<|start|>assistant` (minus its last token) was reused
                assert done.reused_tokens == last_prompt[who] - 1, (who, round_)
            else:  # at most the system message they share (forked from the first chat)
                system = len(render_prompt([], enc, date=DATE)) - 2  # without `<|start|>assistant`
                assert done.reused_tokens == (0 if who == "window" else system)
            last_prompt[who] = done.prompt_tokens
            chat.append(U(f"{who} follow-up {round_}"))
    assert len(session.prompt_cache.conversations) == 3


def test_a_resumed_conversation_gives_the_logits_of_a_fresh_prefill(model, enc):
    session = ChatSession(model, enc, context_length=8192)
    a, b = [U("first chat, about rivers " * 4)], [U("second chat, about mountains " * 4)]
    turn(session, a)
    turn(session, b)
    a.append(U("and lakes?"))
    ids = render_prompt(a, enc, date=DATE)
    reused = session.prepare(ids)
    assert reused > 30
    got = np.array(model(mx.array([ids[-1:]]), cache=session.cache)[0, -1])
    want = np.array(model(mx.array([ids]), cache=model.make_cache())[0, -1])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_an_edit_forks_and_the_original_conversation_stays(model, enc):
    session = ChatSession(model, enc, context_length=8192)
    chat = [U("a question " * 10)]
    turn(session, chat)
    chat.append(U("the second message"))
    first = turn(session, chat)
    edited = chat[:-2] + [U("the second message, edited")]
    done_edit = turn(session, edited)
    assert 0 < done_edit.reused_tokens < first.prompt_tokens - 1  # up to where the last message starts
    assert len(session.prompt_cache.conversations) == 2  # the original was copied, not rewound
    chat.append(U("back on the original branch"))
    back = turn(session, chat)
    assert back.reused_tokens == first.prompt_tokens - 1  # nothing of it was lost


def test_memory_budget_evicts_the_least_recently_used_and_each_owners_newest_last(model, enc):
    probe = ChatSession(model, enc)
    turn(probe, [U("x " * 40)])
    one = probe.conversation.nbytes()
    session = ChatSession(model, enc, prompt_cache=PromptCache(model.make_cache, budget_bytes=int(2.5 * one)))
    chats = [[U(f"chat {i} " + "y " * 40)] for i in range(4)]
    for i, chat in enumerate(chats):
        turn(session, chat, owner="window" if i == 0 else "api")
    # In use: chat 3; budget for two more: chat 0 (the window's newest) and chat 2 (the API's newest).
    # Chat 1 was the least recently used of the rest.
    held = [c.held[:12] for c in session.prompt_cache.conversations]
    ids = [render_prompt(c[:1], enc, date=DATE)[:12] for c in chats]
    assert sorted(map(tuple, held)) == sorted(map(tuple, (ids[0], ids[2], ids[3])))
    assert session.prompt_cache.memory_bytes() <= int(2.5 * one)


def test_reset_forgets_every_conversation(model, enc):
    session = ChatSession(model, enc)
    chat = [U("hello there " * 5)]
    turn(session, chat)
    session.reset()
    chat.append(U("again"))
    assert turn(session, chat).reused_tokens == 0
