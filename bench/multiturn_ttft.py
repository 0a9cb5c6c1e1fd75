"""Time to first token on turn 10 of a chat with over 2k tokens of history: our ChatSession (KV
cache kept across turns, rewound past the dropped analysis) vs a full re-prefill of the rendered
prompt every turn (what mlx-lm does for gpt-oss). Same model, same run, alternating rounds.

    python -m bench.multiturn_ttft                      # a small random checkpoint, real tokenizer
    python -m bench.multiturn_ttft --model PATH         # e.g. the real gpt-oss-20b folder on a Mac

Each turn the model really generates (a few tokens, so the cache holds a reply that the next
prompt drops, as in a real chat); the history then gets a scripted analysis + final answer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from engine import load_model
from engine.generate import Generation, SamplingParams
from engine.harmony import render_prompt
from engine.session import ChatSession, Done
from engine.tokenizer import load_tokenizer

GREEDY = SamplingParams(temperature=0.0)
DATE = "2026-11-22"


def scripted_turn(i: int) -> tuple[str, str, str]:
    """(user question, analysis, final answer) of turn i, ~250 tokens together."""
    question = f"Question {i}: " + " ".join(f"please explain topic {i}.{k} in plain words" for k in range(8))
    analysis = f"The user asks about topic {i}. " + "I should be clear and concise. " * 6
    answer = f"Here is turn {i}'s answer. " + " ".join(f"Point {k}: topic {i}.{k} is simple." for k in range(12))
    return question, analysis, answer


def chat_until(turns: int) -> list[dict]:
    """The conversation as the app would send it at the start of turn `turns` (1-based)."""
    messages = []
    for i in range(1, turns):
        q, a, f = scripted_turn(i)
        messages += [{"role": "user", "content": q}, {"role": "assistant", "channel": "analysis", "content": a},
                     {"role": "assistant", "channel": "final", "content": f}]
    return messages + [{"role": "user", "content": scripted_turn(turns)[0]}]


def session_ttft(model, enc, turns: int, gen_tokens: int) -> tuple[float, Done]:
    """Run a fresh session through `turns` turns; return turn `turns`' time to first token."""
    session = ChatSession(model, enc, context_length=32768)
    done = None
    for t in range(1, turns + 1):
        *_, done = session.reply(chat_until(t), sampling=GREEDY, max_tokens=gen_tokens, date=DATE)
    return done.ttft_s, done


def full_prefill_ttft(model, enc, turns: int) -> tuple[float, int]:
    """Fresh cache, whole rendered prompt prefilled: turn `turns`' time to first token."""
    ids = render_prompt(chat_until(turns), enc, date=DATE)
    start = time.perf_counter()
    gen = Generation(model, ids, model.make_cache(), sampling=GREEDY, max_tokens=1)
    next(iter(gen))
    return time.perf_counter() - start, len(ids)


def small_checkpoint(folder: Path, args) -> Path:
    from models.tiny import write_tiny_checkpoint
    from models.tokenizer_json import shared_o200k_harmony_folder

    write_tiny_checkpoint(folder, layers=args.layers, experts=8, hidden=args.hidden, seed=0, vocab=201088)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
    return folder


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model folder (default: a random checkpoint written to a temp folder)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gen-tokens", type=int, default=8, help="tokens generated per earlier turn")
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else small_checkpoint(Path(tmp), args)
        enc, model = load_tokenizer(folder), load_model(folder, dtype=args.dtype)
        full_prefill_ttft(model, enc, 1)  # warm up
        ours, full = [], []
        for _ in range(args.rounds):
            t_ours, done = session_ttft(model, enc, args.turns, args.gen_tokens)
            t_full, prompt_len = full_prefill_ttft(model, enc, args.turns)
            ours.append(t_ours)
            full.append(t_full)
        med_ours, med_full = statistics.median(ours), statistics.median(full)
        result = {
            "model": str(args.model or f"random {args.layers} layers, hidden {args.hidden}, vocab 201088"),
            "turn": args.turns, "prompt_tokens": prompt_len, "history_tokens": done.reused_tokens,
            "prefilled_tokens_ours": done.stats.prompt_tokens,
            "ttft_ours_s": round(med_ours, 4), "ttft_full_prefill_s": round(med_full, 4),
            "speedup": round(med_full / med_ours, 1), "rounds": args.rounds,
        }
        print(f"turn {args.turns}: prompt {prompt_len} tokens, {done.reused_tokens} reused from the cache, "
              f"{done.stats.prompt_tokens} prefilled")
        print(f"time to first token: ours {med_ours * 1000:.0f} ms, full re-prefill {med_full * 1000:.0f} ms "
              f"-> {med_full / med_ours:.1f}x (median of {args.rounds})")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
