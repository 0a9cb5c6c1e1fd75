"""models/demo_train/evaluate_json.py replays the captured client requests through the real server:
the bodies it posts are the clients' (format and added messages), and it grades on the schema sent."""

from __future__ import annotations

import json

from models.demo_train import evaluate_json as ev
from models.demo_train.conversations import heldout_examples


def rows_of(client, mode):
    return [r for r in ev.load_rows() if (r.client, r.mode) == (client, mode)]


def test_requests_are_the_clients_bodies_with_the_new_question():
    captured = {(r["client"], r["mode"], r["model"]): r for r in json.loads(ev.CAPTURED.read_text())}
    row = next(r for r in rows_of("instructor", "JSON") if r.model == "Sum")
    path, body = ev.request(row, "What is 1 + 2?", "low", 64)
    assert path == "/v1/chat/completions" and body["response_format"] == {"type": "json_object"}
    assert body["messages"][:-1] == captured[("instructor", "JSON", "Sum")]["messages_added"] != []
    assert body["messages"][-1] == {"role": "user", "content": "What is 1 + 2?"}
    assert (body["temperature"], body["reasoning_effort"]) == (0, "low")

    row = next(r for r in rows_of("openai-agents", "output_type") if r.model == "Sum")
    path, body = ev.request(row, "What is 1 + 2?", "high", 64)
    assert path == "/v1/responses"
    assert body["text"]["format"] == captured[("openai-agents", "output_type", "Sum")]["text.format"]
    assert row.schema_sent == body["text"]["format"]["schema"]


def test_requests_name_the_model_the_server_runs():
    """A candidate's folder is served under its own name (not "demo"): the bodies must say it."""
    row = next(r for r in rows_of("openai", "chat.completions.parse") if r.model == "Sum")
    assert ev.request(row, "What is 1 + 2?", "low", 64, model="t1_export")[1]["model"] == "t1_export"
    row = next(r for r in rows_of("openai-agents", "output_type") if r.model == "Sum")
    assert ev.request(row, "What is 1 + 2?", "low", 64, model="t1_export")[1]["model"] == "t1_export"


def test_evaluate_grades_each_reply_on_the_schema_its_client_sent(demo_server):
    seen = []

    def grade(schema, task, text):
        seen.append((schema, task.question, text))
        return True, False

    task = heldout_examples(1)[0].task  # an addition: Sum
    rows = [r for r in ev.load_rows() if r.model == "Sum"]
    results = ev.evaluate(demo_server.url, rows, [task], "low", 48, grade=grade)
    modes = {r.label for r in rows if not r.tools}
    assert {r["label"] for r in results} == modes and len(results) == len(modes)
    assert all(r["status"] == 200 and r["valid"] and not r["right"] for r in results)
    schemas = {r.label: r.schema_sent or ev.model_schema("Sum") for r in rows if not r.tools}
    assert [s for s, _, _ in seen] == [schemas[r["label"]] for r in results]
    assert {q for _, q, _ in seen} == {task.question}
    assert "| **total** |" in ev.table(results)
