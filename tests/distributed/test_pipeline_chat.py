"""The terminal chat runs unchanged on a 2-rank pipeline (engine.chat --distributed under
mlx.launch): the demo model's greedy replies, reasoning shown, are the same text as in one
process, over three turns (from the second on, the session rewinds the cache: harmony drops the
earlier turn's analysis)."""

from __future__ import annotations

import re
import subprocess
import sys

from models.registry import demo_folder
from tests.distributed.test_pipeline import LAUNCH, ROOT, _free_ports, pytestmark  # noqa: F401

CHAT_ARGS = ["--temperature", "0", "--max-tokens", "200", "--show-reasoning"]
TYPED = "What is 12+7?\n/effort high\nWhat is 31+45?\nWhat is 6x8?\n/quit\n"


def _replies(out: str) -> list[str]:
    """The text between prompts, minus what depends on the clock (stats line, seconds of thought)."""
    parts = out.split(">>> ")[1:]
    return [re.sub(r"Thought for \d+ s", "Thought", re.sub(r"\[\d+ tokens, .*?\]", "", p)).strip() for p in parts]


def test_terminal_chat_on_two_ranks_says_what_one_process_says():
    folder = demo_folder()
    one = subprocess.run([sys.executable, "-m", "engine.chat", "--model", str(folder), *CHAT_ARGS],
                         input=TYPED, capture_output=True, text=True, cwd=ROOT, timeout=180,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    two = subprocess.run([str(LAUNCH), "-n", "2", "--backend", "ring", "-p", str(_free_ports(2)),
                          "--env", f"PYTHONPATH={ROOT}", "--python", sys.executable,
                          "-m", "engine.chat", "--model", str(folder), *CHAT_ARGS, "--distributed"],
                         input=TYPED, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert one.returncode == 0, one.stderr[-2000:]
    want = _replies(one.stdout)
    got = _replies(two.stdout)
    assert len(want) == 5 and "Reasoning effort: high" in want[1]
    assert all("Thought" in want[i] and len(want[i]) > 40 for i in (0, 2, 3))  # real replies
    assert got == want, two.stdout + two.stderr[-2000:]
    assert "rank 1: layers" in two.stderr and "Traceback" not in two.stderr
