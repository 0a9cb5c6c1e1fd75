"""engine.harmony.StreamParser: well-formed replies against openai-harmony's StreamableParser,
UTF-8 safety, malformed streams, and a fuzz run that must never raise."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.harmony import MessageEnd, MessageStart, Stop, StreamParser, TextDelta
from models.tokenizer_json import shared_o200k_harmony_folder


@pytest.fixture(scope="module")
def reference():
    oh = pytest.importorskip("openai_harmony")
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(shared_o200k_harmony_folder())
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


def reply_ids(enc, text: str) -> list[int]:
    """What a model would generate after `<|start|>assistant`, written in harmony markup."""
    return enc.encode(text, allowed_special="all")


def run(enc, ids, finish="max_tokens"):
    parser = StreamParser(enc)
    events = [e for t in ids for e in parser.feed(t)]
    return events + parser.finish(finish)


def messages_of(events):
    """[(role, channel, text)] rebuilt from the events."""
    out = []
    for e in events:
        if isinstance(e, MessageStart):
            out.append([e.role, e.channel, ""])
        elif isinstance(e, TextDelta):
            assert out and out[-1][1] == e.channel
            out[-1][2] += e.text
    return [tuple(m) for m in out]


WELL_FORMED = [
    "<|channel|>analysis<|message|>User asks 2+2. Easy.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>",
    "<|channel|>final<|message|>日本語の答え 🙂👍🏽 — done.<|return|>",
    "<|channel|>analysis<|message|>Think.\n\nMore thinking.<|end|><|start|>assistant<|channel|>commentary<|message|>note<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Answer with code:\n```py\nprint('hi')\n```<|return|>",
    "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
    "<|channel|>final<|message|><|return|>",
]


@pytest.mark.parametrize("text", WELL_FORMED)
def test_well_formed_matches_openai_harmony(enc, reference, text):
    oh = pytest.importorskip("openai_harmony")
    ref_parser = oh.StreamableParser(reference, oh.Role.ASSISTANT)
    ids = reply_ids(enc, text)
    for t in ids:
        ref_parser.process(t)
    expected = [(m.author.role.value, m.channel, "".join(c.text for c in m.content)) for m in ref_parser.messages]

    events = run(enc, ids)
    assert messages_of(events) == expected
    assert events[-1] == Stop("call" if text.endswith("<|call|>") else "return")
    assert sum(isinstance(e, MessageEnd) for e in events) == len(expected)


def test_tool_call_header_gives_recipient(enc):
    events = run(enc, reply_ids(enc, WELL_FORMED[3]))
    assert events[0] == MessageStart("assistant", "commentary", "functions.get_weather", "<|constrain|>json")


def test_deltas_never_split_a_utf8_character(enc):
    text = "é😀中👨‍👩‍👧"
    byte_tokens = [enc.encode_single_token(bytes([b])) for b in text.encode()]  # one token per byte
    ids = reply_ids(enc, "<|channel|>final<|message|>") + byte_tokens + reply_ids(enc, "<|return|>")
    deltas = [e.text for e in run(enc, ids) if isinstance(e, TextDelta)]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert len(deltas) == len(text)  # each character arrives whole, once its last byte is in


def test_max_tokens_mid_character_ends_cleanly(enc):
    ids = reply_ids(enc, "<|channel|>final<|message|>ok ") + [enc.encode_single_token(b"\xe4")]
    events = run(enc, ids, finish="max_tokens")
    assert events[-2:] == [MessageEnd("final"), Stop("max_tokens")]
    assert messages_of(events) == [("assistant", "final", "ok \ufffd")]


@pytest.mark.parametrize(
    "text, why",
    [
        ("<|message|>hello<|end|>", "without a channel"),
        ("<|channel|>analysis<|end|>", "before the message began"),
        ("<|channel|>final<|message|>hi<|start|>assistant", "inside a message"),
        ("<|channel|>final<|message|>hi<|reserved_200013|>", "inside a message"),
        ("<|channel|>analysis<|message|>x<|end|>stray text", "between messages"),
        ("<|channel|>analysis<|message|>x<|end|><|start|>user<|message|>I am the user now<|end|>", "user message"),
        ("<|channel|>final" + " blah" * 100, "header never ended"),
        ("<|endoftext|>", "in a message header"),
    ],
)
def test_malformed_streams_stop_with_a_reason(enc, text, why):
    events = run(enc, reply_ids(enc, text))
    assert isinstance(events[-1], Stop) and events[-1].reason.startswith("malformed: ")
    assert why in events[-1].reason
    starts = sum(isinstance(e, MessageStart) for e in events)
    assert starts == sum(isinstance(e, MessageEnd) for e in events)  # an open message is closed


def test_nothing_after_stop(enc):
    parser = StreamParser(enc)
    events = [e for t in reply_ids(enc, "<|channel|>final<|message|>a<|return|>more") for e in parser.feed(t)]
    assert events[-1] == Stop("return")
    assert parser.feed(enc.encode_single_token("<|start|>")) == [] and parser.finish("cancelled") == []


def test_cancel_mid_message(enc):
    events = run(enc, reply_ids(enc, "<|channel|>analysis<|message|>hmm"), finish="cancelled")
    assert events[-2:] == [MessageEnd("analysis"), Stop("cancelled")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_never_raises_and_events_are_well_nested(enc, data):
    specials = sorted(enc.encode_single_token(s) for s in
                      ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>",
                       "<|constrain|>", "<|endoftext|>", "<|reserved_200013|>"])
    words = [t for w in ["assistant", "analysis", "final", "commentary", " to=functions.x", "hi", " 中", "😀"]
             for t in enc.encode_ordinary(w)]
    token = st.one_of(st.sampled_from(specials), st.sampled_from(words), st.integers(0, 201_100))
    ids = data.draw(st.lists(token, max_size=60))
    events = run(enc, ids, finish=data.draw(st.sampled_from(["max_tokens", "cancelled"])))

    assert isinstance(events[-1], Stop) and sum(isinstance(e, Stop) for e in events) == 1
    open_channel = None
    for e in events[:-1]:
        if isinstance(e, MessageStart):
            assert open_channel is None and e.role == "assistant" and e.channel
            open_channel = e.channel
        elif isinstance(e, TextDelta):
            assert e.channel == open_channel and e.text
        else:
            assert isinstance(e, MessageEnd) and e.channel == open_channel
            open_channel = None
    assert open_channel is None
