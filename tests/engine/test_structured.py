"""Structured Outputs (engine.structured, llguidance) and the tool loop in the session.

On a random tiny gpt-oss checkpoint with the real o200k_harmony tokenizer: every constrained final
answer parses and validates (jsonschema) for fuzzed schemas; a forced function call carries valid
arguments, and the next step after its result reuses the whole cache (no re-prefill) with the
logits of a fresh prefill. On a scripted model: the chain of thought stays free while the final
answer is bent into the schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import load_model
from engine.answer_format import ANY_JSON_OBJECT, AnswerFormat
from engine.generate import SamplingParams
from engine.events import PrefillProgress
from engine.harmony import MessageStart, Stop, TextDelta
from engine.session import ChatSession, Done
from engine.tools import Tool, ToolCall, ToolChoice, tool_result_message
from tests.engine.test_session import ScriptedModel

DATE = "2026-11-22"


@pytest.fixture(scope="module")
def session(tiny_chat_folder, enc):
    return ChatSession(load_model(tiny_chat_folder, dtype="float32"), enc, context_length=4096)


def U(text):
    return {"role": "user", "content": text}


def json_format(schema):
    return AnswerFormat(schema, name="answer")


def final_text(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "final")


# Bounded schemas (short strings, integer ranges, few items, no extra keys): a random model can't
# ramble forever inside them, so every output must end, parse and validate.
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
leaves = st.one_of(
    st.integers(0, 5).map(lambda n: {"type": "string", "maxLength": n}),
    st.tuples(st.integers(-50, 50), st.integers(0, 100)).map(lambda r: {"type": "integer", "minimum": r[0], "maximum": r[0] + r[1]}),
    st.sampled_from([{"type": "boolean"}, {"type": "null"}, {"const": "fixed"}, {"enum": ["red", "green", 7, None]}]),
    st.lists(st.text("abcxyz é😀\"\\", max_size=4), min_size=1, max_size=3, unique=True).map(lambda e: {"enum": e}),
)


def containers(inner):
    return st.one_of(
        st.tuples(inner, st.integers(0, 2)).map(lambda t: {"type": "array", "items": t[0], "maxItems": t[1]}),
        st.tuples(st.dictionaries(names, inner, min_size=1, max_size=3), st.data()).map(
            lambda pd: {"type": "object", "properties": pd[0], "additionalProperties": False,
                        "required": sorted(pd[0])[: len(pd[0]) // 2 + 1]}),
        st.lists(inner, min_size=2, max_size=3).map(lambda v: {"anyOf": v}),
    )


bounded_schemas = st.recursive(leaves, containers, max_leaves=6).filter(lambda s: "type" in s or "anyOf" in s or "enum" in s or "const" in s)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(schema=bounded_schemas, seed=st.integers(0, 2**16))
def test_constrained_final_answers_always_parse_and_validate(session, schema, seed):
    events = list(session.reply([U("Answer in JSON.")], date=DATE, max_tokens=400, answer_format=json_format(schema),
                                final_only=True, sampling=SamplingParams(temperature=1.0, seed=seed)))
    assert events[-1].stop_reason == "return", events[-3:]
    harmony = [e for e in events if not isinstance(e, PrefillProgress)]  # progress shows on a slow machine
    assert harmony[0] == MessageStart("assistant", "final", content_type="<|constrain|>json")  # the answer's header
    text = final_text(events)
    jsonschema.validate(json.loads(text), schema)


def test_json_object_mode(session):
    events = list(session.reply([U("JSON please")], date=DATE, max_tokens=300, final_only=True,
                                answer_format=ANY_JSON_OBJECT, sampling=SamplingParams(temperature=1.0, seed=3)))
    if events[-1].stop_reason == "return":  # an unbounded object may run out of tokens; if it ends, it's an object
        assert isinstance(json.loads(final_text(events)), dict)
    else:
        assert events[-1].stop_reason == "max_tokens"


ADD = Tool("add", "Adds two small numbers.", {
    "type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99},
                                     "b": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["a", "b"], "additionalProperties": False})
ANSWER = {"type": "object", "properties": {"sum": {"type": "integer", "minimum": 0, "maximum": 198}},
          "required": ["sum"], "additionalProperties": False}


def test_tool_loop_reuses_the_cache_and_ends_in_a_valid_answer(session, enc):
    session.reset()
    chat = [U("What is 12 + 30? Use the tool.")]
    options = dict(date=DATE, max_tokens=60, tools=[ADD], final_only=True, answer_format=json_format(ANSWER),
                   sampling=SamplingParams(temperature=0.0))
    step1 = list(session.reply(chat, tool_choice=ToolChoice("function", "add"), **options))
    call = next(e for e in step1 if isinstance(e, ToolCall))
    assert step1[-2] == Stop("call") and call.recipient == "functions.add" and call.error is None
    jsonschema.validate(call.parsed, ADD.parameters)
    held_after_call = len(session.held)
    assert held_after_call == step1[-1].prompt_tokens + step1[-1].stats.generated_tokens

    chat += [call.message, tool_result_message(call, json.dumps({"sum": call.parsed["a"] + call.parsed["b"]}))]
    step2 = list(session.reply(chat, **options))
    done = step2[-1]
    assert isinstance(done, Done) and done.stop_reason == "return"
    assert done.reused_tokens == held_after_call  # nothing generated in step 1 is prefilled again
    assert done.stats.prompt_tokens == done.prompt_tokens - held_after_call
    answer = final_text(step2)
    jsonschema.validate(json.loads(answer), ANSWER)

    # The carried-on cache decodes exactly as a fresh prefill of the same conversation does.
    fresh = list(ChatSession(session.model, enc, context_length=4096).reply(chat, **options))
    assert fresh[-1].reused_tokens == 0 and final_text(fresh) == answer


def test_chain_of_thought_stays_free_and_the_final_answer_is_bent_into_the_schema(enc):
    reply = ("<|channel|>analysis<|message|>Thinking freely: {not json} ✓<|end|>"
             "<|start|>assistant<|channel|>final<|message|>Sorry, no JSON here.<|return|>")
    model = ScriptedModel(enc.encode(reply, allowed_special="all"), enc.n_vocab)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    events = list(ChatSession(model, enc).reply([U("hi")], date=DATE, answer_format=json_format(schema),
                                               sampling=SamplingParams(temperature=0.0), max_tokens=60))
    analysis = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "analysis")
    assert analysis == "Thinking freely: {not json} ✓"
    assert json.loads(final_text(events)) in ({"ok": True}, {"ok": False})
    assert events[-1].stop_reason == "return"


def test_a_function_call_is_bent_into_its_schema(enc):
    reply = '<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a": "twelve"}<|call|>'
    model = ScriptedModel(enc.encode(reply, allowed_special="all"), enc.n_vocab)
    events = list(ChatSession(model, enc).reply([U("add")], date=DATE, tools=[ADD],
                                               sampling=SamplingParams(temperature=0.0), max_tokens=60))
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.error is None and set(call.parsed) == {"a", "b"}
    jsonschema.validate(call.parsed, ADD.parameters)


def test_bad_requests_are_one_clear_sentence(session):
    with pytest.raises(ValueError, match="JSON Schema object"):
        list(session.reply([U("x")], answer_format=AnswerFormat("not a schema")))
    with pytest.raises(ValueError, match="not one of the tools"):
        list(session.reply([U("x")], tools=[ADD], tool_choice=ToolChoice("function", "mul")))
    with pytest.raises(ValueError, match="needs at least one function"):
        list(session.reply([U("x")], tool_choice=ToolChoice("required")))


@pytest.mark.parametrize("openai_shape", [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    {"type": "text"},
])
def test_the_engine_refuses_openais_response_format_shape(enc, openai_shape):
    """OpenAI's response_format is the server's to read (server/openai_format.py): handed to the
    engine as it is, it is refused in one sentence, never half-understood; the old keyword is gone."""
    session = ChatSession(ScriptedModel(enc.encode("<|channel|>final<|message|>{}<|return|>", allowed_special="all"),
                                        enc.n_vocab), enc)
    with pytest.raises(ValueError, match="AnswerFormat"):
        list(session.reply([U("x")], answer_format=openai_shape, max_tokens=8))
    with pytest.raises(ValueError, match="AnswerFormat"):
        session.render([U("x")], answer_format=openai_shape)
    with pytest.raises(TypeError, match="response_format"):
        list(session.reply([U("x")], response_format=openai_shape, max_tokens=8))


def test_a_shown_answer_format_is_described_as_the_harmony_guide_writes_it(enc):
    """The developer message's `# Response Formats` section (openai/harmony's guide): heading, the
    description as a // comment, the schema in compact JSON. Any JSON object is enforced, not shown."""
    from engine.harmony import developer_text

    shown = AnswerFormat({"type": "object", "properties": {"ok": {"type": "boolean"}}}, "answer", "Yes or no.")
    assert developer_text(None, (), shown) == ('# Response Formats\n\n## answer\n\n// Yes or no.\n'
                                               '{"type":"object","properties":{"ok":{"type":"boolean"}}}')
    assert developer_text(None, (), ANY_JSON_OBJECT) == ""
    plain = ChatSession(ScriptedModel([], enc.n_vocab), enc).render([U("x")], date=DATE).ids
    assert ChatSession(ScriptedModel([], enc.n_vocab), enc).render([U("x")], date=DATE,
                                                                    answer_format=ANY_JSON_OBJECT).ids == plain


def test_required_tool_choice_lets_the_model_think_then_forces_a_call(enc):
    # After its analysis the model heads for a commentary preamble: the header is bent into a call.
    reply = ("<|channel|>analysis<|message|>No need for tools.<|end|>"
             "<|start|>assistant<|channel|>commentary<|message|>It is 42.<|end|>")
    model = ScriptedModel(enc.encode(reply, allowed_special="all"), enc.n_vocab)
    events = list(ChatSession(model, enc).reply([U("12+30?")], date=DATE, tools=[ADD],
                                               tool_choice=ToolChoice("required"),
                                               sampling=SamplingParams(temperature=0.0), max_tokens=80))
    analysis = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "analysis")
    assert analysis == "No need for tools."
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.recipient == "functions.add" and call.error is None and events[-2] == Stop("call")
    assert [e.channel for e in events if isinstance(e, MessageStart)] == ["analysis", "commentary"]


def test_a_free_chain_of_thought_before_a_forced_call_cannot_open_a_message_inside_itself(enc):
    """Where a call is forced, the analysis before it is free text, but a header token inside it
    (the retrained demo model wrote `<|start|>` without `<|end|>`, and the reply died as malformed)
    can never be well-formed: only `<|end|>` may close it, and then the call's header is forced."""
    from engine.structured import ReplyConstraint

    constraint = ReplyConstraint(enc, tools=[ADD], tool_choice=ToolChoice("function", "add"))
    mask = None
    for t in enc.encode("<|channel|>analysis<|message|>Add them column by column.", allowed_special="all"):
        mask = constraint.next_mask(t)
    allowed = {name: bool(mask[enc.encode_single_token(name)].item()) for name in
               ("<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", "<|return|>", "<|call|>", "<|end|>")}
    assert allowed == {"<|start|>": False, "<|channel|>": False, "<|message|>": False, "<|constrain|>": False,
                       "<|return|>": False, "<|call|>": False, "<|end|>": True}
    assert mask[enc.encode(" 843")[0]].item()          # and text stays free


OK_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}


def _reply_to_schema(enc, reply, **options):
    model = ScriptedModel(enc.encode(reply, allowed_special="all"), enc.n_vocab)
    return list(ChatSession(model, enc).reply([U("hi")], date=DATE, answer_format=json_format(OK_SCHEMA),
                                              sampling=SamplingParams(temperature=0.0), max_tokens=120, **options))


def test_a_header_that_never_ends_is_bent_into_the_json_answer(enc):
    """The probe's demo reply: with a schema demanded, the model wrote a header that never closed and
    the reply died as malformed. The header is forced now: the answer's, with <|constrain|>json."""
    events = _reply_to_schema(enc, "<|channel|>final" + " and the user wants" * 40 + "<|message|>{}<|return|>")
    assert events[-1].stop_reason == "return"
    assert json.loads(final_text(events)) in ({"ok": True}, {"ok": False})
    starts = [e for e in events if isinstance(e, MessageStart)]
    assert [(s.channel, s.content_type) for s in starts] == [("final", "<|constrain|>json")]


def test_after_one_analysis_message_only_the_answer_may_follow(enc):
    reply = ("<|channel|>analysis<|message|>First thought.<|end|>"
             "<|start|>assistant<|channel|>analysis<|message|>Second thought.<|end|>" * 3)
    events = _reply_to_schema(enc, reply)
    assert [e.channel for e in events if isinstance(e, MessageStart)] == ["analysis", "final"]
    assert json.loads(final_text(events)) in ({"ok": True}, {"ok": False})


def test_with_a_schema_the_offered_functions_stay_callable(enc):
    reply = '<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a": 1, "b": 2}<|call|>'
    events = _reply_to_schema(enc, reply, tools=[ADD])
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.recipient == "functions.add" and call.parsed == {"a": 1, "b": 2}
