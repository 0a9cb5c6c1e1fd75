"""Evaluate a model folder on held-out questions about documents, with the real browser.

    python -m models.demo_train.evaluate_browse models/demo --count 60 --efforts medium,high

Each held-out question (models.demo_train.browse.heldout_documents: its own notes in a folder of
its own) is asked in a fresh chat through the engine's front door, greedy, with the browser over
that folder: the real Library index and BrowserTool, the calls run by engine.browser.turn's
browse_turn as the terminal chat and the server run them. Right = the final answer holds the value
and unit, and a citation whose cursor is the opened document and whose lines include the fact's
line. Also counted: a browser.search was made, and the right document was opened.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from models.demo_train.browse import SOURCE, heldout_documents
from models.demo_train.evaluate import EVAL_DATE

EVAL_CONTEXT = 4096


def grade(answer: dict, final: str, tool) -> dict:
    """{"value": the value and unit are in the final answer, "cited": a citation points at the fact's line}."""
    from engine.browser.citations import citations

    value = bool(re.search(rf"(?<![\d.]){re.escape(answer['value'])}(?![\d.])\s*{re.escape(answer['unit'])}", final))
    target = Path(answer["file"]).as_uri()
    cited = any(c.url == target and c.lines and c.lines[0] <= answer["line"] <= c.lines[1] for c in citations(final, tool))
    return {"value": value, "cited": cited}


def ask(session, question: str, folder: Path, effort: str, max_tokens: int = 600) -> tuple[str, list, object]:
    """(final text, browser steps, the tool) for one question in a fresh chat over `folder`."""
    from engine.browser.library import Library
    from engine.browser.tool import BrowserTool
    from engine.browser.turn import BrowserStep, browse_turn
    from engine.generate import SamplingParams

    session.reset()
    with tempfile.TemporaryDirectory(prefix="demo-eval-index-") as index:
        library = Library(index, [folder], name=SOURCE)
        library.update()
        tool = BrowserTool([library], count_tokens=lambda s: len(session.enc.encode_ordinary(s)))
        messages = [{"role": "user", "content": question}]
        steps = [ev for ev in browse_turn(session, messages, tool, effort=effort, date=EVAL_DATE, max_tokens=max_tokens,
                                          sampling=SamplingParams(temperature=0.0)) if isinstance(ev, BrowserStep)]
        library.close()
    finals = [m["content"] for m in messages if m.get("role") == "assistant" and m.get("channel") == "final"]
    return (finals[-1] if finals else ""), steps, tool


def evaluate(folder: Path, count: int = 60, efforts=("medium", "high"), log=None) -> list[dict]:
    from engine import open_chat

    session = open_chat(folder, context_length=EVAL_CONTEXT)
    rows = []
    for effort in efforts:
        for i, (d, notes) in enumerate(heldout_documents(count, effort=effort)):
            answer = json.loads(d.answer)
            final, steps, tool = ask(session, d.question, notes, effort)
            opened = [s for s in steps if s.action == "open" and s.cursor is not None]
            row = {"i": i, "effort": effort, "question": d.question, "final": final,
                   "searched": any(s.action == "search" for s in steps),
                   "opened_right": any(tool.page(s.cursor) and tool.page(s.cursor).url == Path(answer["file"]).as_uri()
                                       for s in opened),
                   "calls": [f"{s.call.recipient} {s.call.arguments}" for s in steps], **grade(answer, final, tool)}
            row["right"] = row["value"] and row["cited"]
            rows.append(row)
            if log:
                print(json.dumps(row), file=log, flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    efforts = sorted({r["effort"] for r in rows}, key=["low", "medium", "high"].index)
    lines = ["| effort | searched | opened the right note | right value | cited the right line | both right |",
             "|---|---|---|---|---|---|"]
    for e in efforts:
        sel = [r for r in rows if r["effort"] == e]

        def pct(key):
            ok = sum(bool(r[key]) for r in sel)
            return f"{100 * ok / len(sel):.1f}% ({ok}/{len(sel)})"

        lines.append(f"| {e} | {pct('searched')} | {pct('opened_right')} | {pct('value')} | {pct('cited')} | {pct('right')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--efforts", default="medium,high")
    ap.add_argument("--out", type=Path, help="append one JSON line per question here")
    args = ap.parse_args(argv)
    start = time.time()
    log = open(args.out, "a") if args.out else None
    rows = evaluate(args.folder, args.count, tuple(args.efforts.split(",")), log)
    print(summary(rows))
    print(f"\n{len(rows)} questions in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
