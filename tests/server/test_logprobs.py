"""Log-probabilities, when asked (Chat `logprobs`/`top_logprobs`; Responses `include:
["message.output_text.logprobs"]`/`top_logprobs`): each answer token's log-probability under the
model and its top alternatives, checked against a full forward pass of the same model over the same
tokens (the reference), through the official openai client and a real server on the demo model."""

from __future__ import annotations

import mlx.core as mx
import pytest

from models.registry import demo_folder

QUESTION = "What is 486 + 357?"


@pytest.fixture(scope="module")
def reference():
    """token ids of the prompt and answer -> log-softmax of the model at each answer position."""
    from engine import open_chat
    from engine.generate import model_ids

    session = open_chat(demo_folder(), context_length=2048)
    model, enc = session.model, session.enc

    def log_softmax_at(messages, answer_ids, effort="medium"):
        prompt = session.render(messages, effort=effort).ids
        ids = prompt + answer_ids
        logits = model(model_ids(model, ids[:-1]), cache=model.make_cache())[0].astype(mx.float32)  # [L, V]
        logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return logp[len(prompt) - 1:]  # row i: the distribution answer token i was drawn from

    return log_softmax_at, enc, session


def _ids(enc, entries):
    return [enc.encode_single_token(bytes(e["bytes"])) for e in entries]


def test_chat_logprobs_match_a_full_forward_pass(demo_server, reference):
    log_softmax_at, enc, session = reference
    got = demo_server.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": QUESTION}], logprobs=True, top_logprobs=3)
    choice = got.choices[0]
    entries = [e.model_dump() for e in choice.logprobs.content]
    assert "".join(e["token"] for e in entries) == choice.message.content
    assert all(len(e["top_logprobs"]) == 3 for e in entries)
    # the answer's tokens sit at the end of the whole reply (analysis, then the final header)
    whole = got.usage.completion_tokens
    assert whole > len(entries)
    answer_ids = _ids(enc, entries)
    # the whole reply's ids, from the engine directly (the demo decodes greedily: the same tokens)
    from engine.events import TokenLogprobs
    from engine.generate import SamplingParams

    events = list(session.reply([{"role": "user", "content": QUESTION}],
                                     sampling=SamplingParams(temperature=0.0, logprobs=3), max_tokens=1024))
    reply_ids = [e.token for e in events if isinstance(e, TokenLogprobs)]
    assert len(reply_ids) == whole
    start = next(i for i in range(len(reply_ids)) if reply_ids[i:i + len(answer_ids)] == answer_ids)
    logp = log_softmax_at([{"role": "user", "content": QUESTION}], reply_ids)
    for i, (entry, token) in enumerate(zip(entries, answer_ids)):
        row = logp[start + i]
        assert abs(entry["logprob"] - row[token].item()) < 1e-3
        for alt in entry["top_logprobs"]:
            assert abs(alt["logprob"] - row[enc.encode_single_token(bytes(alt["bytes"]))].item()) < 1e-3
        best = sorted(row.tolist(), reverse=True)[:3]
        assert [round(a["logprob"], 3) for a in entry["top_logprobs"]] == [round(b, 3) for b in best]


def test_streamed_chat_logprobs_add_up_to_the_answer(demo_server):
    stream = demo_server.client().chat.completions.create(
        model="demo", messages=[{"role": "user", "content": QUESTION}], logprobs=True, stream=True)
    text, tokens = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.logprobs and choice.logprobs.content:
                tokens += "".join(e.token for e in choice.logprobs.content)
                assert all(e.top_logprobs == [] for e in choice.logprobs.content)
    assert text and tokens == text


def test_responses_logprobs(demo_server):
    client = demo_server.client()
    got = client.responses.create(model="demo", input=QUESTION, include=["message.output_text.logprobs"],
                                  top_logprobs=2)
    part = next(item for item in got.output if item.type == "message").content[0]
    assert "".join(e.token for e in part.logprobs) == got.output_text
    assert all(len(e.top_logprobs) == 2 for e in part.logprobs)
    plain = client.responses.create(model="demo", input=QUESTION)
    assert not getattr(next(i for i in plain.output if i.type == "message").content[0], "logprobs", None)


def test_without_logprobs_nothing_is_computed(demo_server):
    got = demo_server.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}])
    assert got.choices[0].logprobs is None


def test_the_engine_does_the_extra_work_only_when_asked(reference):
    from engine.events import TokenLogprobs
    from engine.generate import Generation, SamplingParams

    _, enc, session = reference
    events = list(session.reply([{"role": "user", "content": QUESTION}], sampling=SamplingParams(temperature=0.0),
                                max_tokens=50))
    assert not any(isinstance(e, TokenLogprobs) for e in events)
    gen = Generation(session.model, [1, 2, 3], session.model.make_cache(), SamplingParams(temperature=0.0), max_tokens=5)
    assert len(list(gen)) == 5 and gen.token_logprobs is None and not gen.sampler.pending
