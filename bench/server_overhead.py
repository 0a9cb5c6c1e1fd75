"""The local server's cost per token against the engine called directly, and TTFT on turn 10.

    python bench/server_overhead.py [--model FOLDER] [--rounds 5]

Side by side in one run on one machine: the same greedy conversation answered by
ChatSession.reply in this process, then by a real `python -m server` process through the official
openai client (streaming). Per-token overhead = (server time - engine time) / tokens. Then a
10-turn conversation resent whole each turn, as chat clients do: TTFT per turn shows the session's
prefix cache serving the growing history.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))

QUESTIONS = ["What is 486 + 357?", "Multiply 248 by 7.", "How many minutes are in 7 hours?",
             "What is 615 + 298?", "Multiply 36 by 4.", "How many times does the letter r appear in strawberry?",
             "What day of the week is 10 days after Tuesday?", "What is 72 + 19?", "Multiply 509 by 3.",
             "How many seconds are in 9 minutes?"]


def direct_run(chat, messages) -> tuple[float, int]:
    from engine.session import Done

    t = time.perf_counter()
    tokens = 0
    for ev in chat.session.reply(messages, effort="high", sampling=chat.sampling(0.0, 1.0, None), max_tokens=1024):
        if isinstance(ev, Done):
            tokens = ev.stats.generated_tokens
    return time.perf_counter() - t, tokens


def served_run(client, messages) -> tuple[float, int, float]:
    t = time.perf_counter()
    first, tokens = 0.0, 0
    stream = client.chat.completions.create(model=client.model_id, messages=messages, reasoning_effort="high",
                                            stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if not first and chunk.choices and (chunk.choices[0].delta.content or
                                            (chunk.choices[0].delta.model_extra or {}).get("reasoning")):
            first = time.perf_counter() - t
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return time.perf_counter() - t, tokens, first


def main() -> None:
    from models.registry import demo_folder
    from served import Server
    from server.model import model_id_for, open_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(demo_folder()))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.system()}, model: {args.model}")

    chat = open_model(args.model, 8192)
    server = Server("--model", args.model, "--context", "8192")
    client = server.client()
    client.model_id = model_id_for(args.model)
    try:
        direct, served = [], []
        for _ in range(args.rounds):  # interleaved so machine noise hits both alike
            for q in QUESTIONS[:3]:
                messages = [{"role": "user", "content": q}]
                chat.session.reset()
                dt, n = direct_run(chat, messages)
                direct.append(dt / n)
                st, n2, _ = served_run(client, [{"role": "user", "content": q + " "}])  # new prompt: no cache hit
                served.append(st / n2)
        d, s = statistics.median(direct), statistics.median(served)
        print(f"per token: engine {d * 1e3:.3f} ms, server {s * 1e3:.3f} ms, overhead {(s - d) * 1e3:.3f} ms "
              f"({(s / d - 1) * 100:+.1f}%)")
        for step_ms in (25.0, 40.0):
            print(f"  on a {step_ms:.0f} ms/token model (gpt-oss-20b on a Mac) that overhead is "
                  f"{(s - d) * 1e3 / step_ms * 100:.2f}%")

        messages, ttfts = [], []
        for q in QUESTIONS:
            messages.append({"role": "user", "content": q})
            _, _, first = served_run(client, messages)
            whole = client.chat.completions.create(model=client.model_id, messages=messages, reasoning_effort="high")
            messages.append({"role": "assistant", "content": whole.choices[0].message.content})
            ttfts.append(first)
        print("TTFT by turn (ms): " + ", ".join(f"{t * 1e3:.0f}" for t in ttfts))
        print(f"turn 10 / turn 1 TTFT: {ttfts[-1] / ttfts[0]:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
