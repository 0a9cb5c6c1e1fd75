"""The demo's JSON-answer training conversations and their grader (models/demo_train/json_answers.py).

References: jsonschema (validity), the engine's own llguidance grammar for a schema (what the model
may write token by token), engine.harmony.render_prompt and the harmony guide's `# Response Formats`
text (what the session renders), plain Python arithmetic (the facts).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import jsonschema
import pytest

from models.demo_train.conversations import TRAIN_SEED, examples, heldout_examples
from models.demo_train.dialog import encode_dialog
from models.demo_train.json_answers import (CLIENT_MODELS, FREE_KEYS, SHAPES, answer_json, client_schema, expected_values,
                                            grade_json, heldout_json, json_dialog, json_dialogs)
from models.demo_train.tasks import DAYS, EFFORTS, GENERATORS

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo"

# sha256 of the held-out questions and of the training stream, computed on main before Task.facts
# existed: filling the facts must not move a single random draw.
HELDOUT_300 = "217cabadf76d495b8698390d409e46e4db4b4aef249f3b4cee1fb4085b82ff43"
TRAIN_300 = "55aee81538e77ff9b6167dd8c868f8c0df0597f36071d97873e7783c0180a8c5"


@pytest.fixture(scope="module")
def enc():
    from models.demo_train.bpe import tiktoken_encoding

    return tiktoken_encoding(DEMO / "tokenizer.json")


@pytest.fixture(scope="module")
def stream():
    """(task, dialog) pairs as training draws them, at every effort, with and without python."""
    rng = random.Random(7)
    out = []
    for i in range(900):
        kind, effort = sorted(GENERATORS)[i % 6], EFFORTS[i % 3]
        task = GENERATORS[kind](rng, effort)
        out.append((task, json_dialog(rng, task, effort, "2026-12-07", python=i % 4 == 0)))
    return out


def _digest(rows) -> str:
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_heldout_questions_and_training_stream_unchanged_by_facts():
    held = heldout_examples(300)
    assert _digest([[e.task.kind, e.task.question, e.task.answer, e.task.final, e.task.analysis, e.date]
                    for e in held]) == HELDOUT_300
    train = examples(1, 300)
    assert _digest([[e.task.kind, e.task.question, e.task.answer, e.effort, e.date, e.turns] for e in train]) == TRAIN_300


def test_facts_agree_with_the_answer_worked_out_again():
    for ex in heldout_examples(120):
        t, f = ex.task, dict(ex.task.facts)
        {"addition": lambda: f["sum"] == f["a"] + f["b"] and str(f["sum"]) == t.answer,
         "multiplication": lambda: f["product"] == f["number"] * f["factor"] and str(f["product"]) == t.answer,
         "letters": lambda: f["count"] == f["word"].count(f["letter"]) and f["present"] == (f["count"] > 0),
         "sorting": lambda: list(f["sorted"]) == sorted(f["numbers"]) and ", ".join(map(str, f["sorted"])) == t.answer,
         "weekday": lambda: DAYS[(DAYS.index(f["start"]) + f["days_later"]) % 7] == f["day"] == t.answer,
         "units": lambda: str(f["result"]) == t.answer and f"{f['value']} {f['from_unit']}" in t.question,
         }[t.kind]() or pytest.fail(f"{t.kind} facts wrong: {t.facts} for {t.question!r}")


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _flat(value):
    """Every leaf as text (a list as "3, 5, 9"), lower case."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _flat(v)
    elif isinstance(value, list):
        yield ", ".join(map(str, value))
    elif not isinstance(value, bool):
        yield str(value).lower()


def test_every_generated_final_is_valid_right_and_short(stream):
    for task, d in stream + [(None, d) for d in heldout_json(60)]:
        final = d.turn[-1][0]
        assert final["content_type"] == "<|constrain|>json" and final["content"] == d.answer
        value = json.loads(d.answer)
        jsonschema.validate(value, d.answer_format.schema)
        assert grade_json(d, d.answer) == (True, True)
        if task is not None:
            assert grade_json((d.answer_format.schema, task), d.answer) == (True, True)
            assert d.turn[0][0]["content"] == task.analysis  # the same analysis as without a format
            # The canonical answer tasks.py grades by is among the values (every schema asks for it).
            assert task.answer.lower() in set(_flat(value)), (task.question, d.answer)
        assert all(len(s) < 40 for s in _strings(value)), d.answer
        assert d.answer == json.dumps(value, ensure_ascii=False)  # json.dumps's separators, nothing else


def test_low_effort_analysis_is_one_line(stream):
    lows = [d for _, d in stream if d.effort == "low"]
    assert lows and all("\n" not in d.turn[0][0]["content"] for d in lows)


def _walk(schema):
    yield schema
    for v in schema.values():
        if isinstance(v, dict):
            yield from _walk(v)
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, dict):
                    yield from _walk(x)


def test_training_mix_covers_the_shapes_and_the_client_schemas(stream):
    schemas = [d.answer_format.schema for _, d in stream]
    nodes = [n for s in schemas for n in _walk(s)]
    types = {n.get("type") for n in nodes}
    assert {"object", "string", "integer", "number", "boolean", "array"} <= types
    for word in ("enum", "maxLength", "minimum", "maximum", "maxItems", "title", "description", "$ref", "anyOf"):
        assert any(word in n for n in nodes), word
    assert any(s.get("additionalProperties") is False for s in schemas)
    assert any("additionalProperties" not in s for s in schemas)
    assert any(p.get("type") == "object" for s in schemas for p in s.get("properties", {}).values())  # nested inline
    assert any("$defs" in s for s in schemas)
    assert any(set(s.get("required", ())) != set(s.get("properties", ())) for s in schemas)  # optional fields
    for kind, models in CLIENT_MODELS.items():
        for model in models:
            for shape in SHAPES:
                assert client_schema(model, shape) in schemas, (model.__name__, shape)
    assert len({json.dumps(s, sort_keys=True) for s in schemas}) > 300  # the model must read the schema


def test_grade_json_rejects_wrong_values_and_invalid_json():
    held = heldout_json(60)
    for d in held:
        value = json.loads(d.answer)
        assert grade_json(d, d.answer[:-1]) == (False, False)  # never closed
        assert grade_json(d, "") == (False, False)
        key = next(k for k in value if k not in FREE_KEYS)  # the first graded field
        wrong = dict(value)
        v = value[key]
        if isinstance(v, dict):
            inner = next(iter(v))
            wrong[key] = {**v, inner: v[inner] + 1}
        elif isinstance(v, list):
            wrong[key] = list(reversed(v))
        elif isinstance(v, str) and v in DAYS:
            wrong[key] = DAYS[(DAYS.index(v) + 1) % 7]
        elif isinstance(v, str):
            wrong[key] = v + "x"
        else:
            wrong[key] = v + 1
        assert grade_json(d, json.dumps(wrong)) == (True, False), (d.answer, wrong)
        missing = {k: x for k, x in value.items() if k != key}
        assert grade_json(d, json.dumps(missing))[0] is False  # every client field is required
        typed = {**value, key: 12 if isinstance(v, str) else "many"}  # the wrong type
        assert grade_json(d, json.dumps(typed))[0] is False
        # Case (outside enums, which the schema holds to their spelling) and the free explanation are not graded.
        loud = {k: (x.upper() if isinstance(x, str) and k not in FREE_KEYS and x not in DAYS else x)
                for k, x in value.items()}
        assert grade_json(d, json.dumps(loud)) == (True, True)
        if "explanation" in value:
            assert grade_json(d, json.dumps({**value, "explanation": "no idea"})) == (True, True)
    closed = next(d for d in held if d.answer_format.schema.get("additionalProperties") is False)
    assert grade_json(closed, json.dumps({**json.loads(closed.answer), "extra": 1}))[0] is False


def test_expected_values_for_a_client_schema():
    ex = heldout_examples(1)[0]
    assert ex.task.kind == "addition"
    f = dict(ex.task.facts)
    for shape in SHAPES:
        schema = client_schema(CLIENT_MODELS["addition"][1], shape)
        assert expected_values(ex.task, schema) == {"operands": {"a": f["a"], "b": f["b"]}, "sum": f["a"] + f["b"]}
        assert json.loads(answer_json(ex.task, schema))["explanation"] == f"{f['a']} + {f['b']} = {f['sum']}"


def test_finals_are_accepted_token_by_token_by_the_engines_grammar(enc, stream):
    from engine.structured import _matcher, json_grammar
    from engine.tokenizer import encode_text, special_id

    end = special_id(enc, "<|return|>")
    seen = set()
    dialogs = [d for _, d in stream] + heldout_json(60)
    for d in dialogs:
        key = json.dumps(d.answer_format.schema, sort_keys=True)
        if key in seen and len(seen) > 40:
            continue
        seen.add(key)
        m = _matcher(enc, json_grammar(d.answer_format.schema, "<|return|>"))
        for token in encode_text(enc, d.answer) + [end]:
            assert m.consume_token(token), (d.answer, enc.decode([token]), d.answer_format.schema)
        assert m.is_stopped() or m.is_accepting()
    assert len(seen) > 200


def _turn_ids(enc, d):
    from engine.harmony import render_prompt

    system, ids, trained = encode_dialog(enc, d)
    prompt = render_prompt(list(d.history), enc, d.effort, d.date, python=d.python, answer_format=d.answer_format,
                           developer=d.developer)
    return system + ids, len(prompt), trained


def test_whole_turn_passes_the_reply_constraint_the_session_uses(enc, stream):
    """Every token the model is trained to write is one the session's ReplyConstraint allows:
    the forced final header (or free headers with python) and the JSON body, then <|return|>."""
    from engine.structured import reply_setup

    picked = [d for _, d in stream if not d.python][:6] + [d for _, d in stream if d.python][:4]
    for d in picked:
        _, constraint, _ = reply_setup(enc, python=d.python, answer_format=d.answer_format)
        ids, start, _ = _turn_ids(enc, d)
        fed, held = None, 0
        for token in ids[start:]:
            mask = constraint.next_mask(fed)
            assert mask is None or bool(mask[token]), (enc.decode(ids[start:]), enc.decode([token]))
            held += mask is not None
            fed = token
        assert held > len(enc.encode(d.answer))  # the JSON body at least was constrained
        assert enc.decode([ids[-1]]) == "<|return|>"


def test_encoded_dialog_holds_the_sessions_final_header_and_response_formats(enc):
    from engine.harmony import render_prompt

    header = enc.encode("<|start|>assistant<|channel|>final <|constrain|>json<|message|>", allowed_special="all")
    for d in heldout_json(12):
        ids, start, trained = _turn_ids(enc, d)
        at = next(i for i in range(len(ids) - len(header)) if ids[i:i + len(header)] == header)
        system_len = len(ids) - len(trained)
        assert at >= start and all(trained[at - system_len:])  # the model writes it all
        assert enc.decode(ids[at + len(header):-1]) == d.answer and enc.decode([ids[-1]]) == "<|return|>"
        # When the chat goes on, the session renders this final in the history with the same tokens.
        later = render_prompt([*d.history, d.turn[-1][0], {"role": "user", "content": "Thanks"}], enc, d.effort,
                              d.date, answer_format=d.answer_format)
        sent_back = ids[at:-1] + enc.encode("<|end|>", allowed_special="all")
        assert any(later[i:i + len(sent_back)] == sent_back for i in range(len(later)))
        # The developer message describes the format as the harmony guide writes it.
        schema = json.dumps(d.answer_format.schema, separators=(",", ":"), ensure_ascii=False)
        section = f"# Response Formats\n\n## {d.answer_format.name}\n\n{schema}"
        assert section in enc.decode(ids[:start]) and "<|start|>developer" in enc.decode(ids[:start])


def test_heldout_json_is_the_heldout_questions_never_trained_on():
    held = heldout_json(60)
    assert [d.question for d in held] == [e.task.question for e in heldout_examples(60)]
    pairs = {(d.answer_format.name, "additionalProperties" in d.answer_format.schema) for d in held}
    assert pairs == {(m.__name__, shape == "strict") for ms in CLIENT_MODELS.values() for m in ms for shape in SHAPES}
    training = {d.question for d in json_dialogs(TRAIN_SEED, 3000)}
    assert not training & {e.task.question for e in heldout_examples()}
    low = heldout_json(12, effort="low")
    assert [d.question for d in low] == [d.question for d in held[:12]]
    assert all("\n" not in d.turn[0][0]["content"] for d in low)


def test_captured_client_schemas_join_the_mix_when_the_file_exists(tmp_path, monkeypatch):
    """models/demo_train/client_schemas.json (another test's capture of what the clients send) is read
    tolerantly: OpenAI's json_schema wrapper or a bare schema, placed by kind, name or title."""
    from models.demo_train import json_answers
    from models.demo_train.json_answers import Sum, Weekday, client_formats

    odd = {**Sum.model_json_schema(), "description": "as some client wrote it"}
    captured = [
        {"client": "llm", "json_schema": {"name": "Sum", "schema": odd, "strict": True}},
        {"client": "instructor", "schema": {**Weekday.model_json_schema(), "title": "Weekday"}},
        {"client": "x", "kind": "sorting", "name": "nums", "schema": {"type": "object", "properties": {
            "sorted": {"type": "array", "items": {"type": "integer"}}}, "required": ["sorted"]}},
        {"client": "y", "schema": {"type": "object", "title": "Unknown"}},  # can't be placed: skipped
    ]
    path = tmp_path / "client_schemas.json"
    path.write_text(json.dumps(captured))
    monkeypatch.setattr(json_answers, "CLIENT_SCHEMAS_FILE", path)
    assert odd in [f.schema for f in client_formats("addition")]
    assert any(f.name == "nums" for f in client_formats("sorting"))
    assert sum(len(v) for v in json_answers.captured_formats().values()) == 3
    rng = random.Random(3)
    task = GENERATORS["sorting"](rng, "low")
    ds = [json_dialog(rng, task, "low", "2026-12-07") for _ in range(200)]
    assert any(d.answer_format.name == "nums" for d in ds)
    assert all(grade_json(d, d.answer) == (True, True) for d in ds)


def test_schema_given_in_the_instructions_with_a_json_object_format(enc, stream):
    """instructor's JSON mode: response_format json_object (any object, not shown) and the schema in
    a system message, which the server renders as the developer message's # Instructions."""
    from engine.answer_format import ANY_JSON_OBJECT
    from engine.structured import reply_setup

    given = [d for _, d in stream if d.developer]
    assert len(given) > 30
    for d in given:
        assert d.answer_format == ANY_JSON_OBJECT
        text = d.developer
        schema = json.loads(text[text.index("{"):text.rindex("}") + 1])
        jsonschema.validate(json.loads(d.answer), schema)
        ids, start, _ = _turn_ids(enc, d)
        prompt = enc.decode(ids[:start])
        assert f"<|start|>developer<|message|># Instructions\n\n{text}<|end|>" in prompt
        assert "# Response Formats" not in prompt
    d = given[0]
    _, constraint, _ = reply_setup(enc, python=d.python, answer_format=d.answer_format)
    ids, start, _ = _turn_ids(enc, d)
    fed = None
    for token in ids[start:]:
        mask = constraint.next_mask(fed)
        assert mask is None or bool(mask[token])
        fed = token


def test_every_captured_client_schema_is_answered_right_and_allowed_by_the_grammar(enc):
    """The real capture (tests/server/test_client_schemas.py writes it): every schema a client sends
    for one of the answer models is placed by kind, filled right, and allowed by the engine's grammar."""
    from engine.structured import _matcher, json_grammar
    from engine.tokenizer import encode_text, special_id
    from models.demo_train.json_answers import CLIENT_SCHEMAS_FILE, _captured_items, _specs, captured_formats, \
        captured_instructions

    if not CLIENT_SCHEMAS_FILE.exists():
        pytest.skip("models/demo_train/client_schemas.json is not captured yet (tests/server/test_client_schemas.py)")
    items = _captured_items()
    formats = captured_formats()
    placed = [f.schema for fs in formats.values() for f in fs]
    assert all(spec["schema"] in placed for item in items for spec in _specs(item))
    assert any(captured_instructions().values())  # instructor's JSON mode: the schema in a system message
    task_of = {ex.task.kind: ex.task for ex in heldout_examples(6)}
    for kind, fmts in formats.items():
        for fmt in fmts:
            text = answer_json(task_of[kind], fmt.schema)
            assert grade_json((fmt.schema, task_of[kind]), text) == (True, True)
            m = _matcher(enc, json_grammar(fmt.schema, "<|return|>"))
            assert all(m.consume_token(t) for t in encode_text(enc, text) + [special_id(enc, "<|return|>")])


def test_answer_as_a_function_call_passes_the_constraint_of_a_required_tool(enc):
    """pydantic-ai's ToolOutput: one function whose parameters are the schema, tool_choice required.
    The analysis then the call (as engine.harmony renders it) is what the session's constraint allows."""
    from engine.harmony import render_chat_message, render_prompt
    from engine.structured import reply_setup
    from engine.tokenizer import encode_text, special_id
    from engine.tools import Tool, ToolChoice
    from models.demo_train.json_answers import json_call_message

    assistant = [special_id(enc, "<|start|>"), *encode_text(enc, "assistant")]
    for ex in heldout_examples(6):
        for shape in SHAPES:
            schema = client_schema(CLIENT_MODELS[ex.task.kind][0], shape)
            tool = Tool("final_result", "The final response which ends this conversation", schema)
            _, constraint, _ = reply_setup(enc, tools=[tool], tool_choice=ToolChoice("required"))
            call = json_call_message(ex.task, schema)
            assert grade_json((schema, ex.task), call["content"]) == (True, True)
            turn = render_chat_message(enc, {"role": "assistant", "channel": "analysis", "content": ex.task.analysis})
            turn = turn[len(assistant):] + render_chat_message(enc, call)
            assert enc.decode(turn[-1:]) == "<|call|>"
            prompt = render_prompt([{"role": "user", "content": ex.task.question}], enc, "high", "2026-12-07",
                                   tools=[tool])
            assert prompt[-len(assistant):] == assistant
            fed, held = None, 0
            for token in turn:
                mask = constraint.next_mask(fed)
                assert mask is None or bool(mask[token]), (enc.decode(turn), enc.decode([token]))
                held += mask is not None
                fed = token
            assert held > len(encode_text(enc, call["content"]))
