"""Evaluate a model folder on held-out questions through OUR engine and OUR harmony parser.

    python -m models.demo_train.evaluate models/demo --count 300 --efforts low,medium,high --tool off,on

The folder is opened through the engine's front door (engine.open_chat), and each question is
answered greedily by its session from a fresh cache (harmony rendering and stream parsing are the
session's, as in the app). With the tool on, the python tool is offered in the system message and
every call the model makes is run for real in engine/python_tool's sandboxed kernel, its output
sent back through the session's tool loop (engine.tools.tool_result_message), as the app does.
A response is well-formed when it is an analysis message then a final message, ending with
<|return|> (with the tool: analysis and tool-call messages in any number, then the final one).
The final answer is graded against the generator's answer. The 50 held-out long multiplications
(two multi-digit numbers) are asked too: with the tool the product must be right; without it the
right answer is to decline ("I can't multiply ... reliably").
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.demo_train.conversations import heldout_examples, heldout_long_multiplications
from models.demo_train.tasks import DAYS

EVAL_DATE = "2026-11-22"  # fixed so the evaluation is reproducible
EVAL_CONTEXT = 2048  # prompts are a few hundred tokens, answers at most 400
MAX_CALLS = 3  # tool calls allowed in one answer before it counts as not well-formed
INT = re.compile(r"\d+")
DECLINE = "reliably"  # the word of the model's "I can't multiply ... reliably" answer


def grade(kind: str, answer: str, final: str, tool: bool = True) -> bool:
    """Is the final text's answer the right one? (Numbers: the last integer; lists: all of them.)
    A long multiplication without the tool is right when the model declines it."""
    if kind == "long multiplication" and not tool:
        return DECLINE in final and answer not in final
    if kind == "sorting":
        return INT.findall(final) == INT.findall(answer)
    if kind == "weekday":
        named = [d for d in re.findall(r"[A-Z][a-z]+day", final) if d in DAYS]
        return named[:1] == [answer]
    numbers = INT.findall(final)
    return bool(numbers) and numbers[-1] == answer


@dataclass
class Reply:
    channels: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    stop: str = ""
    tokens: int = 0
    calls: list[dict] = field(default_factory=list)  # {"code", "output"} per python call

    @property
    def well_formed(self) -> bool:
        if self.calls:  # thinking and calls (all on the analysis channel), then one final answer
            return (self.stop == "return" and self.channels[-1:] == ["final"]
                    and set(self.channels[:-1]) == {"analysis"} and len(self.calls) <= MAX_CALLS)
        return self.channels == ["analysis", "final"] and self.stop == "return"


def run_one(session, messages: list[dict], effort: str, max_tokens: int = 400, python=None) -> Reply:
    """Greedy reply to `messages` at `effort` from a fresh cache (session: engine.open_chat's).

    python: an engine.python_tool.PythonTool to offer the model (None: no tools). Its calls are
    run there and answered through the session's tool loop, at most MAX_CALLS + 1 times."""
    from engine.events import MessageStart, Stop, TextDelta
    from engine.generate import SamplingParams
    from engine.tools import ToolCall, tool_result_message

    session.reset()  # every question from scratch, so a row doesn't depend on the one before
    reply = Reply()
    messages = list(messages)
    for _ in range(MAX_CALLS + 1):
        call, in_call, written = None, False, []
        for ev in session.reply(messages, effort=effort, date=EVAL_DATE, max_tokens=max_tokens,
                                sampling=SamplingParams(temperature=0.0), python=python is not None):
            if isinstance(ev, MessageStart):
                reply.channels.append(ev.channel)
                in_call = bool(ev.recipient)  # a call's code is kept in `calls`, not in the analysis text
                if not in_call:
                    written.append({"role": "assistant", "channel": ev.channel, "content": ""})
            elif isinstance(ev, TextDelta) and not in_call:
                reply.texts[ev.channel] = reply.texts.get(ev.channel, "") + ev.text
                written[-1]["content"] += ev.text
            elif isinstance(ev, ToolCall):
                call = ev
            elif isinstance(ev, Stop):
                reply.stop = ev.reason
            elif hasattr(ev, "stats"):  # Done
                reply.tokens += ev.stats.generated_tokens
        if call is None or python is None or reply.stop != "call":
            break
        output = call.error or python.run(call.arguments).text
        reply.calls.append({"code": call.arguments, "output": output})
        # The turn so far goes back as the model wrote it (its thinking, the call) plus the result,
        # as the app sends it: the session's cache carries on from the call.
        messages += written + [call.message, tool_result_message(call, output)]
    return reply



def evaluate(folder: Path, count: int = 300, efforts=("low", "high"), shard: int = 0, shards: int = 1,
             log=None, tools=("off",), long_count: int = 50) -> list[dict]:
    """One row per (question, effort, tool): kind, effort, tool, well_formed, correct, calls, tokens, texts.
    The held-out questions, then `long_count` held-out long multiplications."""
    import tempfile

    from engine import open_chat
    from engine.python_tool import PythonTool

    session = open_chat(folder, context_length=EVAL_CONTEXT)
    questions = heldout_examples(count) + heldout_long_multiplications(long_count)
    rows = []
    # The tool wants a folder of its own (not /tmp itself, which its code could then change).
    with tempfile.TemporaryDirectory(prefix="demo-eval-") as work, PythonTool(Path(work) / "python") as python:
        for i, ex in enumerate(questions):
            if i % shards != shard:
                continue
            for tool in tools:
                for effort in efforts:
                    reply = run_one(session, ex.messages(), effort, python=python if tool == "on" else None)
                    final = reply.texts.get("final", "")
                    rows.append({"i": i, "kind": ex.task.kind, "effort": effort, "tool": tool,
                                 "question": ex.task.question, "answer": ex.task.answer,
                                 "well_formed": reply.well_formed,
                                 "correct": reply.well_formed and grade(ex.task.kind, ex.task.answer, final, tool == "on"),
                                 "calls": reply.calls, "tokens": reply.tokens, "stop": reply.stop,
                                 "analysis": reply.texts.get("analysis", ""), "final": final})
                    if log:
                        print(json.dumps(rows[-1]), file=log, flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """Markdown table: right % per effort with the tool off and on (the six held-out kinds), then
    long multiplications, and how often the tool was called per kind (tool on)."""
    efforts = sorted({r["effort"] for r in rows}, key=["low", "medium", "high"].index)
    tools = sorted({r.get("tool", "off") for r in rows}, key=["off", "on"].index)
    lines = ["| questions | tool | " + " | ".join(f"{e}: correct" for e in efforts) + " |",
             "|---|---|" + "---|" * len(efforts)]

    def pct(sel, key):
        n = len(sel)
        ok = sum(bool(key(r)) for r in sel)
        return f"{100 * ok / n:.1f}% ({ok}/{n})" if n else "-"

    for name, match in (("held-out (6 kinds)", lambda k: k != "long multiplication"),
                        ("long multiplication", lambda k: k == "long multiplication")):
        for tool in tools:
            sel = [r for r in rows if match(r["kind"]) and r.get("tool", "off") == tool]
            if sel:
                cells = [pct([r for r in sel if r["effort"] == e], lambda r: r["correct"]) for e in efforts]
                lines.append(f"| {name} | {tool} | " + " | ".join(cells) + " |")
    on = [r for r in rows if r.get("tool") == "on"]
    if on:
        lines += ["", "| kind (tool on) | " + " | ".join(f"{e}: called python" for e in efforts) + " |",
                  "|---|" + "---|" * len(efforts)]
        for kind in sorted({r["kind"] for r in on}):
            cells = [pct([r for r in on if r["kind"] == kind and r["effort"] == e], lambda r: r["calls"]) for e in efforts]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """Markdown table: per kind and effort, well-formed % and accuracy %."""
    efforts = sorted({r["effort"] for r in rows}, key=["low", "medium", "high"].index)
    kinds = sorted({r["kind"] for r in rows})
    head = "| kind | " + " | ".join(f"{e}: well-formed | {e}: correct" for e in efforts) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(efforts))]

    def cell(sel):
        n = len(sel)
        wf = sum(r["well_formed"] for r in sel)
        ok = sum(r["correct"] for r in sel)
        return f"{100 * wf / n:.1f}% | {100 * ok / n:.1f}% ({ok}/{n})" if n else "- | -"

    for kind in kinds + ["all"]:
        cells = [cell([r for r in rows if r["effort"] == e and kind in (r["kind"], "all")]) for e in efforts]
        lines.append(f"| {'**all**' if kind == 'all' else kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--efforts", default="low,medium,high")
    ap.add_argument("--tool", default="off,on", help="off, on or off,on: whether the python tool is offered")
    ap.add_argument("--long-count", type=int, default=50, help="held-out long multiplications to ask too")
    ap.add_argument("--shard", type=int, default=0, help="run questions i with i %% shards == shard")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--out", type=Path, help="append one JSON line per reply here")
    ap.add_argument("--table-from", type=Path, nargs="*", help="only print the table of these JSONL files")
    args = ap.parse_args(argv)
    if args.table_from:
        rows = [json.loads(line) for p in args.table_from for line in p.read_text().splitlines() if line]
        print(summary(rows) + "\n")
        for tool in ("off", "on"):
            sel = [r for r in rows if r.get("tool", "off") == tool]
            if sel:
                print(f"tool {tool}:\n{table(sel)}\n")
        return
    start = time.time()
    log = open(args.out, "a") if args.out else None
    rows = evaluate(args.folder, args.count, tuple(args.efforts.split(",")), args.shard, args.shards, log,
                    tuple(args.tool.split(",")), args.long_count)
    print(summary(rows) + "\n")
    for tool in ("off", "on"):
        sel = [r for r in rows if r["tool"] == tool]
        if sel:
            print(f"tool {tool}:\n{table(sel)}\n")
    print(f"{len(rows)} replies in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
