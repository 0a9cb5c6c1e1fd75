"""Time to fit a long chat into the context before a reply: engine.prompt_fit (one pass) vs the
loop it replaced (re-render the whole history after each dropped turn), side by side in one run.

    python -m bench.prompt_fit                   # 100..4000 turns, 8,192-token context
    python -m bench.prompt_fit --old-up-to 1000  # also time the old loop at 1,000 turns (~1 min)

Turns are ~250 tokens (question, analysis, answer) rendered with the real o200k_harmony tokenizer.
"first reply" tokenizes every message (the first reply after a start); "next reply" is the turn
after, when only the new messages are tokenized.
"""
from __future__ import annotations

import argparse
import json
import time

from engine.harmony import kept_messages, render_prompt
from engine.prompt_fit import fit_prompt, forget_message_sizes
from engine.tokenizer import load_tokenizer
from models.tokenizer_json import shared_o200k_harmony_folder

DATE = "2026-11-22"


def chat(turns: int) -> list[dict]:
    out = []
    for i in range(turns):
        out += [{"role": "user", "content": f"Question {i}: " + " ".join(f"explain topic {i}.{k}" for k in range(12))},
                {"role": "assistant", "channel": "analysis", "content": f"The user asks about {i}. " + "Be clear. " * 10},
                {"role": "assistant", "content": f"Answer {i}. " + " ".join(f"Point {k} is simple." for k in range(15))}]
    return out + [{"role": "user", "content": "And the last question?"}]


def old_fit(messages, enc, context_length, max_tokens, **render):
    """The loop engine/session.py had before engine/prompt_fit.py (kept here as the baseline)."""
    budget = context_length - min(max_tokens, context_length // 2)
    messages = kept_messages(messages)
    ids = render_prompt(messages, enc, **render)
    target = budget if len(ids) <= budget else budget * 3 // 4
    while len(ids) > target and len(messages) > 1:
        i = 1
        while i < len(messages) - 1 and messages[i]["role"] != "user":
            i += 1
        messages = messages[i:]
        ids = render_prompt(messages, enc, **render)
    return ids


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", default="100,400,1000,4000")
    p.add_argument("--old-up-to", type=int, default=400, help="skip the old loop above this many turns")
    p.add_argument("--context", type=int, default=8192)
    p.add_argument("--max-tokens", type=int, default=2048)
    args = p.parse_args(argv)
    enc = load_tokenizer(shared_o200k_harmony_folder())
    render = {"date": DATE, "developer": "Answer briefly."}
    rows = []
    for turns in map(int, args.turns.split(",")):
        messages = chat(turns)
        forget_message_sizes()
        t = time.perf_counter()
        new_ids, _ = fit_prompt(messages, enc, args.context, args.max_tokens, **render)
        new_s = time.perf_counter() - t  # cold: every message tokenized (the first reply after a start)
        messages.append({"role": "assistant", "content": "One more answer."})
        messages.append({"role": "user", "content": "One more question?"})
        warm_s = best_of(lambda: fit_prompt(messages, enc, args.context, args.max_tokens, **render), 3)
        messages = messages[:-2]
        row = {"turns": turns, "new_s": round(new_s, 4), "next_reply_s": round(warm_s, 4)}
        if turns <= args.old_up_to:
            old_ids = old_fit(messages, enc, args.context, args.max_tokens, **render)
            row["old_s"] = round(best_of(lambda: old_fit(messages, enc, args.context, args.max_tokens, **render), 1), 3)
            row["speedup"] = round(row["old_s"] / new_s, 1)
            row["same_prompt"] = old_ids == new_ids
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| turns | prompt_fit, first reply (s) | next reply (s) | old loop (s) | speed-up (first) | same prompt |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['turns']} | {r['new_s']} | {r['next_reply_s']} | {r.get('old_s', '-')} | {r.get('speedup', '-')} | "
              f"{r.get('same_prompt', '-')} |")


if __name__ == "__main__":
    main()
