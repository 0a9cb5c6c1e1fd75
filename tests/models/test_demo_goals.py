"""The demo model's third version (issue 27): the shipped weights against each goal, greedy, on
held-out sets with fixed seeds, through the engine (and the server for JSON) as the app uses them.

Sizes here are smaller than the model card's full evaluations (models/demo/README.md) so the suite
stays quick; the bars are the issue's. The neighbours in test_demo_model.py keep the six kinds and
the python tool from regressing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo"
shipped = pytest.mark.skipif(not (DEMO / "config.json").is_file(), reason="models/demo not exported yet")
# The weights in models/demo are the second version until the third meets these bars; a miss is an
# AssertionError (any other error still fails the test).
before_v3 = pytest.mark.xfail(strict=False, raises=AssertionError, reason="needs the demo model v3 (issue 27)")


@pytest.fixture(scope="module")
def session():
    pytest.importorskip("mlx.core")
    from engine import open_chat

    return open_chat(DEMO, context_length=4096)


@shipped
@before_v3
@pytest.mark.parametrize("effort", ["medium", "high"])
def test_documents_questions_get_the_right_value_and_cited_line(session, effort):
    """Goal 1: a search, the right note opened, the value and a citation of its line: >= 80%."""
    from models.demo_train.browse import heldout_documents
    from models.demo_train.evaluate_browse import ask, grade

    results = []
    for d, notes in heldout_documents(20, effort=effort):
        import json

        answer = json.loads(d.answer)
        final, steps, tool = ask(session, d.question, notes, effort)
        g = grade(answer, final, tool)
        results.append((g["value"] and g["cited"], d.question, final, [s.call.arguments for s in steps]))
    right = sum(r[0] for r in results)
    assert right >= 16, f"{right}/20 right at {effort}; misses: {[r[1:] for r in results if not r[0]][:3]}"


@shipped
@before_v3
def test_json_answers_through_the_server_with_the_clients_schemas():
    """Goal 2: the request bodies the six clients send (captured in tests/server/test_client_schemas.py)
    with held-out questions: >= 98% schema-valid and >= 80% right values."""
    from models.demo_train.conversations import heldout_examples
    from models.demo_train.evaluate_json import Server, evaluate, load_rows

    tasks = [ex.task for ex in heldout_examples(12)]
    server = Server(DEMO)
    try:
        results = [r for r in evaluate(server.url, load_rows(), tasks, "medium", 400) if r["schema_sent"]]
    finally:
        server.stop()
    valid = sum(r["valid"] for r in results)
    right = sum(r["right"] for r in results)
    misses = [(r["label"], r["question"], r["text"][:120]) for r in results if not r["right"]][:3]
    assert valid >= 0.98 * len(results), f"{valid}/{len(results)} schema-valid; e.g. {misses}"
    assert right >= 0.80 * len(results), f"{right}/{len(results)} right values; e.g. {misses}"


@shipped
@before_v3
def test_the_fifth_question_of_a_chat_is_as_right_as_the_first(session, tmp_path):
    """Goal 3: chats of five questions with python calls in between (the 2nd and 4th); every
    held-out question is asked once first and once fifth. The 5th is within 3 points of the 1st."""
    from engine.python_tool import PythonTool, sandbox_problem
    from models.demo_train.evaluate_long_chat import chat_rows

    if sandbox_problem():
        pytest.skip(f"the sandbox can't run here: {sandbox_problem()}")
    with PythonTool(tmp_path / "work") as python:
        rows = chat_rows(session, python, 30, "medium")
    first = sum(r["right"] for r in rows if r["position"] == 1)
    fifth = sum(r["right"] for r in rows if r["position"] == 5)
    assert fifth >= first - 0.03 * 30, f"1st question right {first}/30, 5th {fifth}/30"
    assert first >= 24, f"1st question right {first}/30"


@shipped
@before_v3
def test_low_effort_writes_one_line_with_or_without_tools(session):
    """Goal 4: at low effort the chain of thought is one line, whether no tool, python or the
    browser is offered (and the question is answered in the head, with no call)."""
    from models.demo_train.evaluate_long_chat import low_effort_rows

    rows = low_effort_rows(session, 12)
    for offered in ("none", "python", "browser"):
        sel = [r for r in rows if r["tools"] == offered]
        one = sum(r["one_line"] for r in sel)
        assert one >= 0.95 * len(sel), f"{offered}: {one}/{len(sel)} one line; e.g. {[r for r in sel if not r['one_line']][:2]}"


def test_heldout_documents_are_reproducible_and_answerable():
    """The held-out documents set is fixed by its seed, and each answer's line holds its fact."""
    import json

    from models.demo_train.browse import heldout_documents

    first = [(d.question, d.answer.split('"file"')[0]) for d, _ in heldout_documents(5)]
    again = [(d.question, d.answer.split('"file"')[0]) for d, _ in heldout_documents(5)]
    assert first == again
    for d, notes in heldout_documents(5):
        answer = json.loads(d.answer)
        lines = Path(answer["file"]).read_text().splitlines()
        assert answer["fact"] in lines and answer["value"] in answer["fact"]
        assert Path(answer["file"]).parent == notes


def test_documents_training_chats_are_what_the_engine_renders():
    """A documents chat's ids are the engine's render of its messages (history then turn), every
    page is the real tool's, and only the model's messages are trained on."""
    import random

    from engine.harmony import render_prompt
    from models.demo_train import bpe
    from models.demo_train.browse import documents_dialogs
    from models.demo_train.dialog import encode_dialog, system_ids

    enc = bpe.tiktoken_encoding(DEMO / "tokenizer.json")
    with tempfile.TemporaryDirectory() as tmp:
        for d in documents_dialogs(random.Random(4), "medium", "2026-11-22", Path(tmp), 4):
            system, ids, trained = encode_dialog(enc, d)
            assert system == system_ids(enc, d)
            whole = [m for m, _ in d.turn]
            # The whole chat rendered as the next turn's prompt starts with what was trained on
            # (the final's <|return|> is <|end|> once the turn is over).
            later = render_prompt(list(d.history) + whole[:-1], enc, d.effort, d.date, browser=list(d.browser))
            assert later[len(system):] == ids[:len(later) - len(system)]
            text = enc.decode([t for t, w in zip(ids, trained) if w])
            assert "browser.search" in text and "browser.open" in text and "【" in text
            assert "**viewing lines" not in text  # pages are the tool's, never trained on
