"""Evaluate a model folder on held-out questions through OUR engine and OUR harmony parser.

    python -m models.demo_train.evaluate models/demo --count 300 --efforts low,high

The folder is opened through the engine's front door (engine.open_chat), and each question is
answered greedily by its session from a fresh cache (harmony rendering and stream parsing are the
session's, as in the app). A response is well-formed when it is exactly an analysis message then
a final message, ending with <|return|>. The final answer is graded against the generator's answer.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.demo_train.conversations import heldout_examples
from models.demo_train.tasks import DAYS

EVAL_DATE = "2026-11-22"  # fixed so the evaluation is reproducible
EVAL_CONTEXT = 2048  # prompts are a few hundred tokens, answers at most 400
INT = re.compile(r"\d+")


def grade(kind: str, answer: str, final: str) -> bool:
    """Is the final text's answer the right one? (Numbers: the last integer; lists: all of them.)"""
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

    @property
    def well_formed(self) -> bool:
        return self.channels == ["analysis", "final"] and self.stop == "return"


def run_one(session, messages: list[dict], effort: str, max_tokens: int = 400) -> Reply:
    """Greedy reply to `messages` at `effort` from a fresh cache (session: engine.open_chat's)."""
    from engine.events import MessageStart, Stop, TextDelta
    from engine.generate import SamplingParams

    session.reset()  # every question from scratch, so a row doesn't depend on the one before
    reply = Reply()
    for ev in session.reply(messages, effort=effort, date=EVAL_DATE, max_tokens=max_tokens,
                            sampling=SamplingParams(temperature=0.0)):
        if isinstance(ev, MessageStart):
            reply.channels.append(ev.channel)
        elif isinstance(ev, TextDelta):
            reply.texts[ev.channel] = reply.texts.get(ev.channel, "") + ev.text
        elif isinstance(ev, Stop) and not reply.stop:
            reply.stop = ev.reason
        elif hasattr(ev, "stats"):  # Done
            reply.tokens = ev.stats.generated_tokens
    return reply


def evaluate(folder: Path, count: int = 300, efforts=("low", "high"), shard: int = 0, shards: int = 1,
             log=None) -> list[dict]:
    """One row per (question, effort): kind, effort, well_formed, correct, tokens, texts."""
    from engine import open_chat

    session = open_chat(folder, context_length=EVAL_CONTEXT)
    rows = []
    for i, ex in enumerate(heldout_examples(count)):
        if i % shards != shard:
            continue
        for effort in efforts:
            reply = run_one(session, ex.messages(), effort)
            final = reply.texts.get("final", "")
            rows.append({"i": i, "kind": ex.task.kind, "effort": effort, "question": ex.task.question,
                         "answer": ex.task.answer, "well_formed": reply.well_formed,
                         "correct": reply.well_formed and grade(ex.task.kind, ex.task.answer, final),
                         "tokens": reply.tokens, "stop": reply.stop,
                         "analysis": reply.texts.get("analysis", ""), "final": final})
            if log:
                print(json.dumps(rows[-1]), file=log, flush=True)
    return rows


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
    ap.add_argument("--efforts", default="low,high")
    ap.add_argument("--shard", type=int, default=0, help="run questions i with i %% shards == shard")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--out", type=Path, help="append one JSON line per reply here")
    ap.add_argument("--table-from", type=Path, nargs="*", help="only print the table of these JSONL files")
    args = ap.parse_args(argv)
    if args.table_from:
        rows = [json.loads(line) for p in args.table_from for line in p.read_text().splitlines() if line]
        print(table(rows))
        return
    start = time.time()
    log = open(args.out, "a") if args.out else None
    rows = evaluate(args.folder, args.count, tuple(args.efforts.split(",")), args.shard, args.shards, log)
    print(table(rows))
    print(f"{len(rows)} replies in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
