"""Evaluate JSON answers through the real server, with the request bodies the six clients send.

    python -m models.demo_train.evaluate_json models/demo --count 60 [--effort medium]
    python -m models.demo_train.evaluate_json models/demo --url http://127.0.0.1:8000   # a running server

models/demo_train/client_schemas.json holds what each client (openai, openai-agents, llm,
langchain-openai, pydantic-ai, instructor; in each of its answer-format modes) sent for each answer
model, captured by tests/server/test_client_schemas.py. For each held-out question
(conversations.heldout_examples, never trained on) and each captured client mode, the question is
POSTed as that client posts it: its endpoint (chat completions or responses), its response_format /
text.format exactly as captured, the messages it added (instructor's JSON mode puts the schema in a
system message), greedy, at one effort. The answer model follows the question's kind (addition: Sum,
then Addition, in turn; json_answers.CLIENT_MODELS). A reply is schema-valid when it parses and
jsonschema accepts it under the schema sent (json_object modes: the model's own pydantic schema, which
is what instructor writes into its message and what langchain parses with), and right when every
property that names a fact holds the right value (json_answers.grade_json). Identical request bodies
are sent once (greedy: same body, same reply). Rows whose client sent no schema at all (langchain's
json_mode: the user is meant to describe the fields in the prompt) are shown but left out of the
total; pydantic-ai's default asks through a tool and is listed as not evaluated here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from models.demo_train.conversations import heldout_examples

CAPTURED = Path(__file__).with_name("client_schemas.json")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Row:
    """One captured request: a client mode asking for one answer model."""
    client: str
    mode: str
    model: str
    api: str  # "chat" | "responses"
    fmt: dict | None  # response_format (chat) or text.format (responses) as sent
    added: tuple  # messages the client put around the question
    tools: bool  # asked through a tool instead of an answer format

    @property
    def label(self) -> str:
        return f"{self.client} {self.mode}"

    @property
    def schema_sent(self) -> dict | None:
        """The JSON Schema the request carries, in its format or in a message (None: none)."""
        if self.fmt and self.fmt.get("type") == "json_schema":
            return (self.fmt.get("json_schema") or self.fmt).get("schema")
        return None


def load_rows(path: Path = CAPTURED) -> list[Row]:
    rows = json.loads(path.read_text())
    return [Row(r["client"], r["mode"], r["model"], r["api"], r.get("response_format") or r.get("text.format"),
                tuple(r.get("messages_added") or ()), bool(r.get("tools"))) for r in rows]


def request(row: Row, question: str, effort: str, max_tokens: int, model: str = "demo") -> tuple[str, dict]:
    """(path, body): the question asked as `row`'s client asks it, greedy, of `model` (the server's name)."""
    messages = [*row.added, {"role": "user", "content": question}]
    if row.api == "responses":
        body = {"model": model, "input": messages, "temperature": 0, "max_output_tokens": max_tokens,
                "reasoning": {"effort": effort}}
        if row.fmt:
            body["text"] = {"format": row.fmt}
        return "/v1/responses", body
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": max_tokens,
            "reasoning_effort": effort}
    if row.fmt:
        body["response_format"] = row.fmt
    return "/v1/chat/completions", body


def answer_text(api: str, reply: dict) -> str:
    if api == "responses":
        return "".join(part.get("text", "") for item in reply.get("output", []) if item.get("type") == "message"
                       for part in item.get("content", []) if part.get("type") == "output_text")
    return reply["choices"][0]["message"].get("content") or ""


def model_schema(name: str) -> dict:
    """An answer model's own pydantic schema (json_object modes are judged by it)."""
    from models.demo_train.json_answers import CLIENT_MODELS

    return next(m for ms in CLIENT_MODELS.values() for m in ms if m.__name__ == name).model_json_schema()


def default_grade(schema: dict, task, text: str) -> tuple[bool, bool]:
    from models.demo_train.json_answers import grade_json

    return grade_json((schema, task), text)


def models_for(kind: str) -> list[str]:
    from models.demo_train.json_answers import CLIENT_MODELS

    return [m.__name__ for m in CLIENT_MODELS[kind]]


class Server:
    """`python -m server` on a free port, for this evaluation only. (tests/server/served.py has the
    tests' own: models/ may import neither server/ nor tests/, DESIGN.md's arrows.)"""

    def __init__(self, folder: Path, context: int = 2048, timeout: float = 180.0):
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--model", str(folder),
                                      "--context", str(context)], cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"The server did not start: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("The server did not become healthy in time.")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def evaluate(url: str, rows: list[Row], tasks: list, effort: str, max_tokens: int,
             grade: Callable = default_grade, schema_of: Callable = model_schema, log=None) -> list[dict]:
    """One result per (question, client mode): {label, model, valid, right, schema_sent, status}.
    grade(schema, task, text) -> (valid, right); schema_of(model name) judges json_object modes."""
    import httpx

    by_mode: dict[str, dict[str, Row]] = {}
    for row in rows:
        if not row.tools:
            by_mode.setdefault(row.label, {})[row.model] = row
    done: dict[str, tuple[int, str]] = {}  # body -> (status, text): greedy, so asked once
    results = []
    with httpx.Client(base_url=url, timeout=600) as http:
        served = http.get("/v1/models").json()["data"][0]["id"]  # a candidate's folder has its own name
        for i, task in enumerate(tasks):
            names = models_for(task.kind)
            name = names[(i // 6) % len(names)]  # the kind's models in turn, as json_answers.heldout_json
            for label, models in by_mode.items():
                row = models.get(name)
                if row is None:
                    continue
                path, body = request(row, task.question, effort, max_tokens, served)
                key = path + json.dumps(body, sort_keys=True)
                if key not in done:
                    reply = http.post(path, json=body)
                    done[key] = (reply.status_code, answer_text(row.api, reply.json()) if reply.is_success else "")
                status, text = done[key]
                schema = row.schema_sent or schema_of(row.model)
                valid, right = grade(schema, task, text) if status == 200 else (False, False)
                result = {"label": label, "model": name, "kind": task.kind, "valid": valid, "right": right,
                          "schema_sent": row.schema_sent is not None or bool(row.added), "status": status,
                          "question": task.question, "text": text}
                results.append(result)
                if log:
                    log.write(json.dumps(result) + "\n")
    return results


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def table(results: list[dict]) -> str:
    lines = ["| client | mode | valid | right | n |", "|---|---|---|---|---|"]
    labels = list(dict.fromkeys(r["label"] for r in results))
    for label in labels:
        sel = [r for r in results if r["label"] == label]
        note = "" if sel[0]["schema_sent"] else " (no schema sent: not in the total)"
        client, mode = label.split(" ", 1)
        lines.append(f"| {client} | {mode}{note} | {pct(sum(r['valid'] for r in sel), len(sel))} | "
                     f"{pct(sum(r['right'] for r in sel), len(sel))} | {len(sel)} |")
    counted = [r for r in results if r["schema_sent"]]
    lines.append(f"| **total** | schema sent | {pct(sum(r['valid'] for r in counted), len(counted))} | "
                 f"{pct(sum(r['right'] for r in counted), len(counted))} | {len(counted)} |")
    return "\n".join(lines)


def by_model(results: list[dict]) -> str:
    lines = ["| answer model | valid | right | n |", "|---|---|---|---|"]
    for name in dict.fromkeys(r["model"] for r in results):
        sel = [r for r in results if r["model"] == name and r["schema_sent"]]
        lines.append(f"| {name} | {pct(sum(r['valid'] for r in sel), len(sel))} | "
                     f"{pct(sum(r['right'] for r in sel), len(sel))} | {len(sel)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=60, help="held-out questions (kinds in turn)")
    ap.add_argument("--effort", default="medium")
    ap.add_argument("--max-tokens", type=int, default=400, help="per reply, reasoning included")
    ap.add_argument("--schemas", type=Path, default=CAPTURED, help="the captured client requests")
    ap.add_argument("--url", help="a server already running this folder's model (default: start one)")
    ap.add_argument("--out", type=Path, help="write one JSON line per (question, client mode) here")
    args = ap.parse_args(argv)
    if not args.schemas.exists():
        raise SystemExit(f"{args.schemas} is missing: run CAPTURE_CLIENT_SCHEMAS=1 pytest "
                         "tests/server/test_client_schemas.py to capture what the clients send.")
    rows = load_rows(args.schemas)
    tasks = [ex.task for ex in heldout_examples(args.count)]
    server = None if args.url else Server(args.folder)
    start = time.monotonic()
    try:
        with (args.out.open("w") if args.out else open(os.devnull, "w")) as log:
            results = evaluate(args.url or server.url, rows, tasks, args.effort, args.max_tokens, log=log)
    finally:
        if server:
            server.stop()
    skipped = sorted({r.label for r in rows if r.tools})
    print(f"{args.folder}, effort {args.effort}, {len(tasks)} held-out questions, "
          f"{time.monotonic() - start:.0f} s\n\n{table(results)}\n\n{by_model(results)}")
    if skipped:
        print(f"\nNot evaluated (asks through a tool, not an answer format): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
