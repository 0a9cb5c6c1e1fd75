"""Evaluate a model folder on long chats and on reasoning effort with tools offered.

    python -m models.demo_train.evaluate_long_chat models/demo --chats 60 --efforts medium,high

Long chats: chat j asks five questions with the python tool on, as the app does by default:
held-out question j, a long multiplication (sent to the real python tool), question j+1, another
long multiplication, question j+2. Every held-out question is asked once as a chat's 1st question
and once as a 5th, so "5th as right as the 1st" compares the same questions. Earlier turns go back
as the app sends them (harmony keeps their final answers).

Effort: the held-out questions at low effort with the python tool offered, and with the browser
offered, counting replies whose chain of thought is one line (and well formed, with no call).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from models.demo_train.conversations import heldout_examples, heldout_long_multiplications
from models.demo_train.evaluate import EVAL_DATE, grade, run_one

EVAL_CONTEXT = 4096


def chat_rows(session, python, chats: int, effort: str, log=None) -> list[dict]:
    pool = heldout_examples(chats)
    longs = heldout_long_multiplications(2 * chats)
    rows = []
    for j in range(chats):
        asked = [pool[j], longs[2 * j], pool[(j + 1) % chats], longs[2 * j + 1], pool[(j + 2) % chats]]
        history: list[dict] = []
        for position, ex in enumerate(asked, 1):
            messages = history + [{"role": "user", "content": ex.task.question}]
            reply = run_one(session, messages, effort, max_tokens=500, python=python)
            final = reply.texts.get("final", "")
            right = reply.well_formed and grade(ex.task.kind, ex.task.answer, final, True)
            rows.append({"chat": j, "position": position, "effort": effort, "kind": ex.task.kind,
                         "question": ex.task.question, "final": final, "right": right, "calls": len(reply.calls)})
            if log:
                print(json.dumps(rows[-1]), file=log, flush=True)
            history = messages + [{"role": "assistant", "channel": "final", "content": final}]
    return rows


def low_effort_rows(session, count: int, log=None) -> list[dict]:
    """One row per (question, tools offered) at low effort: is the chain of thought one line?"""
    from engine.events import MessageStart, Stop, TextDelta
    from engine.generate import SamplingParams

    rows = []
    for ex in heldout_examples(count):
        for offered in ("none", "python", "browser"):
            session.reset()
            channels, texts, stop = [], {}, ""
            options = {"python": offered == "python", "browser": ["library"] if offered == "browser" else None}
            for ev in session.reply(ex.messages(), effort="low", date=EVAL_DATE, max_tokens=400,
                                    sampling=SamplingParams(temperature=0.0), **options):
                if isinstance(ev, MessageStart):
                    channels.append(ev.channel if not ev.recipient else f"call {ev.recipient}")
                elif isinstance(ev, TextDelta):
                    texts[channels[-1]] = texts.get(channels[-1], "") + ev.text
                elif isinstance(ev, Stop):
                    stop = ev.reason
            analysis = texts.get("analysis", "")
            one_line = channels == ["analysis", "final"] and stop == "return" and len(analysis.strip().splitlines()) == 1
            rows.append({"kind": ex.task.kind, "tools": offered, "one_line": one_line,
                         "lines": len(analysis.strip().splitlines()), "channels": channels,
                         "right": one_line and grade(ex.task.kind, ex.task.answer, texts.get("final", ""), True)})
            if log:
                print(json.dumps(rows[-1]), file=log, flush=True)
    return rows


def summary(chat: list[dict], low: list[dict]) -> str:
    def pct(sel, key):
        ok = sum(bool(r[key]) for r in sel)
        return f"{100 * ok / len(sel):.1f}% ({ok}/{len(sel)})" if sel else "-"

    out = []
    if chat:
        out += ["| effort | 1st question | 3rd | 5th | long multiplications (2nd, 4th) |", "|---|---|---|---|---|"]
        for e in sorted({r["effort"] for r in chat}, key=["low", "medium", "high"].index):
            at = lambda ps: [r for r in chat if r["effort"] == e and r["position"] in ps]  # noqa: E731
            out.append(f"| {e} | {pct(at((1,)), 'right')} | {pct(at((3,)), 'right')} | {pct(at((5,)), 'right')} "
                       f"| {pct(at((2, 4)), 'right')} |")
    if low:
        out += ["", "| low effort, tools offered | one-line chain of thought | right |", "|---|---|---|"]
        for offered in ("none", "python", "browser"):
            sel = [r for r in low if r["tools"] == offered]
            out.append(f"| {offered} | {pct(sel, 'one_line')} | {pct(sel, 'right')} |")
    return "\n".join(out)


def main(argv=None) -> None:
    from engine import open_chat
    from engine.python_tool import PythonTool

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--chats", type=int, default=60)
    ap.add_argument("--efforts", default="medium,high")
    ap.add_argument("--low-count", type=int, default=60, help="held-out questions asked at low effort with tools")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    start = time.time()
    log = open(args.out, "a") if args.out else None
    session = open_chat(args.folder, context_length=EVAL_CONTEXT)
    chat = []
    with tempfile.TemporaryDirectory(prefix="demo-eval-") as work, PythonTool(Path(work) / "python") as python:
        for effort in filter(None, args.efforts.split(",")):
            chat += chat_rows(session, python, args.chats, effort, log)
    low = low_effort_rows(session, args.low_count, log) if args.low_count else []
    print(summary(chat, low))
    print(f"\n{len(chat) + len(low)} replies in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
