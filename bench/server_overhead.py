"""The local server's cost per token against the engine called directly, and TTFT on turn 10.

    python bench/server_overhead.py [--model FOLDER] [--padded 24] [--rounds 5] [--compare-root DIR]

Side by side in one run on one machine, interleaved (the order rotates each round so drifting load
hits all alike): the same greedy conversation answered by ChatSession.reply in this process, and by
a real `python -m server` process through the official openai client, streaming. Both sessions see
the same sequence of requests, so their caches hold the same and they do the same work; the
answers are checked to have the same token count. The server is also read with a bare SSE reader
(httpx and json.loads): its own share, apart from the openai client's parsing. Per token = a request's whole wall time
(connection, prefill and all) / its generated tokens; overhead = median over the pairs of
(server - engine). --compare-root runs a second server from another checkout (e.g. the commit
before a change) in the same rounds.

Two models: the demo (a ~4 ms step on a small CPU) and, with --padded N, the demo with N silent
layers appended (bench/padded_demo.py: the same answer, a several-times longer step, closer to
gpt-oss-20b on a Mac). On Linux the server's event-loop thread and the client's CPU per token are
shown too: where the overhead goes. CPU per token (the server process and the client against the
engine's threads alone) is the figure that holds on a busy machine, where wall times swing with
other programs' load; "best" is each question's fastest request, the least disturbed.

Then a 10-turn conversation resent whole each turn, as chat clients do: TTFT per turn shows the
session's prefix cache serving the growing history.

Measured 2026-12-01 on an x86_64 Linux VM, 2 CPUs, MLX on the CPU, under other programs' load
(load average 5-8), --rounds 4-6, against the server before batching (--compare-root):
  demo (engine median 9-11 ms/token, best 6-8):  overhead per token, median of pairs, +12% now
  (+19% to +44% before); best runs +3% / -7% now (+26% / +49% before). CPU per token over the
  engine's: +0.9 ms now (event loop 0.36, openai client ~1.0) against +1.5 to +1.9 before (event
  loop 0.80). A bare SSE reader instead of the openai client: +0.5 ms CPU.
  demo + 24 silent layers (engine 40-45 ms/token here, ~5x the demo's step): +1.8% (best +0.5%).
  TTFT turn 10 / turn 1: 1.05-1.11x through the server, 1.03-1.51x for the engine itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "server"))

QUESTIONS = ["What is 486 + 357?", "Multiply 248 by 7.", "How many minutes are in 7 hours?",
             "What is 615 + 298?", "Multiply 36 by 4.", "How many times does the letter r appear in strawberry?",
             "What day of the week is 10 days after Tuesday?", "What is 72 + 19?", "Multiply 509 by 3.",
             "How many seconds are in 9 minutes?"]
EFFORT = "high"


class EngineThread:
    """The engine called directly, on a thread of its own as the server's and the app's engine is
    (a process's main thread measured slower here for MLX on the CPU): the model is opened and
    every reply generated there."""

    def __init__(self, folder: str):
        from concurrent.futures import ThreadPoolExecutor

        from engine import open_chat

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.chat = self.pool.submit(open_chat, folder, 8192).result()
        self.cpu: list[float] = []  # ms per token

    def run(self, messages) -> tuple[float, int, float, int]:
        cpu0 = time.process_time()  # this process: the engine's thread and MLX's, nothing else runs
        got = self.pool.submit(direct_run, self.chat, messages).result()
        self.cpu.append((time.process_time() - cpu0) * 1e3 / got[1])
        return got

    def close(self) -> None:
        self.pool.shutdown()


def direct_run(chat, messages) -> tuple[float, int, float, int]:
    """(wall seconds, generated tokens, seconds to the first text, text deltas) for the engine in
    this process."""
    from engine.harmony import TextDelta
    from engine.session import Done

    t = time.perf_counter()
    first, tokens, texts = 0.0, 0, 0
    for ev in chat.reply(messages, effort=EFFORT, sampling=chat.sampling(0.0), max_tokens=1024):
        if isinstance(ev, TextDelta):
            texts += 1
            first = first or time.perf_counter() - t
        if isinstance(ev, Done):
            tokens = ev.stats.generated_tokens
    return time.perf_counter() - t, tokens, first, texts


def served_run(client, model_id, messages) -> tuple[float, int, float, int]:
    """The same through the server and the official openai client, streaming; the last number is
    how many chunks carried text (fewer than tokens when ready deltas were merged)."""
    t = time.perf_counter()
    first, tokens, texts = 0.0, 0, 0
    stream = client.chat.completions.create(model=model_id, messages=messages, reasoning_effort=EFFORT,
                                            stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices and (chunk.choices[0].delta.content or
                              (chunk.choices[0].delta.model_extra or {}).get("reasoning")):
            texts += 1
            first = first or time.perf_counter() - t
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return time.perf_counter() - t, tokens, first, texts


def raw_run(http, url, model_id, messages) -> tuple[float, int, float, int]:
    """The same through the server with a bare SSE reader (httpx, json.loads per event): the
    server's own share, without the openai client's per-chunk model building."""
    t = time.perf_counter()
    first, tokens, texts = 0.0, 0, 0
    body = {"model": model_id, "messages": messages, "reasoning_effort": EFFORT, "stream": True,
            "stream_options": {"include_usage": True}}
    with http.stream("POST", url + "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].keys() & {"content", "reasoning"}:
                texts += 1
                first = first or time.perf_counter() - t
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return time.perf_counter() - t, tokens, first, texts


def cpu_ms(pid: int, thread: int | None = None) -> float | None:
    """CPU time of a process (all its threads), or of one of its threads, from /proc; None elsewhere."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


class Served:
    """One server process, its client, and what its runs measured."""

    def __init__(self, name: str, folder: str, root: Path, raw: bool = False, server=None):
        from served import Server
        from engine.front_door import model_name

        self.name, self.raw = name, raw
        self.server = server or Server("--model", folder, "--context", "8192", root=root)
        self.client = self.server.client()
        self.http = httpx.Client(timeout=120)
        self.model_id = model_name(folder)
        self.per_token, self.loop_cpu, self.server_cpu, self.client_cpu, self.chunks = [], [], [], [], []

    def run(self, messages) -> tuple[float, int, float, int]:
        pid = self.server.proc.pid
        loop0, server0, cpu0 = cpu_ms(pid, pid), cpu_ms(pid), time.process_time()
        if self.raw:
            wall, tokens, first, texts = raw_run(self.http, self.server.url, self.model_id, messages)
        else:
            wall, tokens, first, texts = served_run(self.client, self.model_id, messages)
        loop1, server1, cpu1 = cpu_ms(pid, pid), cpu_ms(pid), time.process_time()
        if loop0 is not None:
            self.loop_cpu.append((loop1 - loop0) / tokens)
            self.server_cpu.append((server1 - server0) / tokens)
        self.client_cpu.append((cpu1 - cpu0) * 1e3 / tokens)
        self.chunks.append(texts / tokens)
        return wall, tokens, first, texts


def _best(per_token: list[float], questions: int = 3) -> float:
    """Mean over the questions of each one's fastest request: the least disturbed runs."""
    return statistics.mean(min(per_token[i::questions]) for i in range(questions))


def overhead(folder: str, label: str, rounds: int, compare_root: Path | None) -> None:
    engine = EngineThread(folder)
    servers = [Served("server, openai client", folder, ROOT)]
    servers.append(Served("server, bare SSE reader", folder, ROOT, raw=True, server=servers[0].server))
    if compare_root:
        servers.append(Served(f"{compare_root.name}, openai client", folder, compare_root))
    direct, engine_deltas = [], []
    try:
        warm = [{"role": "user", "content": QUESTIONS[0]}]
        engine.run(warm)
        for s in servers:
            s.run(warm)
        for r in range(rounds):
            for q in QUESTIONS[:3]:
                messages = [{"role": "user", "content": q}]
                runners = [None, *servers]
                runners = runners[r % len(runners):] + runners[:r % len(runners)]
                got = {}
                for who in runners:
                    got[who] = engine.run(messages) if who is None else who.run(messages)
                wall, tokens, _, deltas = got[None]
                direct.append(wall / tokens)
                engine_deltas.append(deltas / tokens)
                for s in servers:
                    s_wall, s_tokens, _, _ = got[s]
                    assert s_tokens == tokens, f"{s.name} generated {s_tokens} tokens, the engine {tokens}"
                    s.per_token.append((s_wall / tokens, wall / tokens))
        d, best = statistics.median(direct), _best(direct)
        cpu = statistics.median(engine.cpu)
        print(f"\n{label}: engine {d * 1e3:.3f} ms/token (median of {len(direct)} requests; best "
              f"{best * 1e3:.3f}), CPU {cpu:.2f} ms/token; {statistics.median(engine_deltas):.2f} text deltas/token")
        for s in servers:
            served = statistics.median(p[0] for p in s.per_token)
            diff = statistics.median(p[0] - p[1] for p in s.per_token)
            ratio = statistics.median(p[0] / p[1] - 1 for p in s.per_token)
            s_best = _best([p[0] for p in s.per_token])
            print(f"  {s.name:28s} {served * 1e3:.3f} ms/token, overhead {diff * 1e3:+.3f} ms/token "
                  f"({ratio * 100:+.1f}%); best {s_best * 1e3:.3f} ({(s_best / best - 1) * 100:+.1f}%); "
                  f"text chunks/token {statistics.median(s.chunks):.2f}")
            client = statistics.median(s.client_cpu)
            if s.server_cpu:
                total = statistics.median(a + b for a, b in zip(s.server_cpu, s.client_cpu))
                print(f"  {'':28s} CPU ms/token: server {statistics.median(s.server_cpu):.2f} (event loop "
                      f"{statistics.median(s.loop_cpu):.2f}) + client {client:.2f} = {total:.2f}, "
                      f"{total - cpu:+.2f} over the engine's ({(total / cpu - 1) * 100:+.1f}%)")
            else:
                print(f"  {'':28s} CPU ms/token: client {client:.2f}")
    finally:
        engine.close()
        for s in {s.server: s for s in servers}:
            s.stop()


def ttft_by_turn(folder: str) -> None:
    engine = EngineThread(folder)
    s = Served("server", folder, ROOT)
    try:
        warm = [{"role": "user", "content": "What is 2 + 2?"}]  # first-request costs (imports, allocation) apart
        s.run(warm)
        engine.run(warm)
        messages, served, direct = [], [], []
        for q in QUESTIONS:
            messages.append({"role": "user", "content": q})
            served.append(s.run(messages)[2])
            direct.append(engine.run(messages)[2])
            whole = s.client.chat.completions.create(model=s.model_id, messages=messages, reasoning_effort=EFFORT)
            messages.append({"role": "assistant", "content": whole.choices[0].message.content})
        print("\nTTFT by turn (ms), server: " + ", ".join(f"{t * 1e3:.0f}" for t in served))
        print("TTFT by turn (ms), engine: " + ", ".join(f"{t * 1e3:.0f}" for t in direct))
        print(f"turn 10 / turn 1 TTFT: server {served[-1] / served[0]:.2f}x, engine {direct[-1] / direct[0]:.2f}x; "
              f"turn 10 server - engine {(served[-1] - direct[-1]) * 1e3:+.1f} ms")
    finally:
        engine.close()
        s.server.stop()


def main() -> None:
    from models.registry import demo_folder

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(demo_folder()))
    ap.add_argument("--padded", type=int, default=24, help="silent layers added for the slower model (0: skip it)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare-root", type=Path, default=None, help="another checkout's server, run alongside")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; model: {args.model}")

    overhead(args.model, Path(args.model).name, args.rounds, args.compare_root)
    if args.padded:
        from padded_demo import write_padded_demo

        with tempfile.TemporaryDirectory() as tmp:
            folder = str(write_padded_demo(Path(tmp) / "demo-padded", args.padded, Path(args.model)))
            overhead(folder, f"{Path(args.model).name} + {args.padded} silent layers", args.rounds,
                     args.compare_root)
    ttft_by_turn(args.model)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
