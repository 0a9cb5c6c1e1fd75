"""engine.chat: the terminal chat driven through a real pseudo-terminal (pexpect) on a tiny
random checkpoint with the real o200k_harmony tokenizer, plus the event view on scripted events."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from engine.chat import TerminalView
from engine.generate import GenerationStats
from engine.harmony import MessageEnd, MessageStart, Stop, TextDelta
from engine.session import Done
from models.tokenizer_json import shared_o200k_harmony_folder

pexpect = pytest.importorskip("pexpect")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tiny_chat_folder):
    return tiny_chat_folder


def spawn(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm")
    return pexpect.spawn(sys.executable, ["-m", "engine.chat", *args], cwd=str(ROOT), env=env,
                         encoding="utf-8", timeout=60, dimensions=(40, 200))


def test_chat_commands_and_ctrl_c_in_a_real_terminal(tiny_model):
    chat = spawn("--model", str(tiny_model), "--temperature", "0", "--max-tokens", "12")
    chat.expect("reasoning effort medium")
    chat.expect(">>> ")
    chat.sendline("Hello! What can you do?")
    chat.expect(r"\[12 tokens, [0-9.]+ tokens/s")  # a random model rambles until the limit
    chat.expect(">>> ")
    chat.sendline("/effort high")
    chat.expect("Reasoning effort: high")
    chat.sendline("/effort extreme")
    chat.expect("Effort must be one of low, medium, high")
    chat.sendline("/reset")
    chat.expect("history is cleared")
    chat.sendline("/foo")
    chat.expect("Unknown command /foo")
    chat.expect(">>> ")
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0 and "Traceback" not in chat.before


def test_ctrl_c_stops_the_answer_not_the_chat(tiny_model):
    # Up to 4000 tokens: the random model writes until its reply is cut as malformed (> 64 tokens
    # of header), seconds away, so the Ctrl-C lands while it writes.
    chat = spawn("--model", str(tiny_model), "--temperature", "0", "--max-tokens", "4000")
    chat.expect(">>> ")
    chat.sendline("Write a very long story.")
    chat.expect("Write a very long story.")
    time.sleep(0.5)  # let the chat read the line (a Ctrl-C before that would flush it)
    chat.sendintr()
    chat.expect(r"\(stopped\)")
    chat.expect(">>> ")
    chat.sendintr()  # at the prompt Ctrl-C doesn't leave either
    chat.expect("/quit")
    chat.sendline("again")
    chat.expect("tokens/s")
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0 and "Traceback" not in chat.before


@pytest.mark.parametrize("make", ["missing", "empty", "broken config"])
def test_missing_or_broken_model_is_one_sentence(tmp_path, make):
    folder = tmp_path / "model"
    if make != "missing":
        folder.mkdir()
    if make == "broken config":
        shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
        (folder / "config.json").write_text("{ not json")
    chat = spawn("--model", str(folder))
    chat.expect(pexpect.EOF)
    chat.close()
    lines = [l for l in chat.before.splitlines() if l.strip() and not l.startswith("Loading")]
    assert chat.exitstatus == 1
    assert len(lines) == 1 and "Traceback" not in chat.before and str(folder) in lines[0]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def scripted(view, clock):
    view.handle(MessageStart("assistant", "analysis"))
    for word in ["The user ", "asks ", "2+2."]:
        clock.now += 1.0
        view.handle(TextDelta("analysis", word))
    view.handle(MessageEnd("analysis"))
    view.handle(MessageStart("assistant", "final"))
    view.handle(TextDelta("final", "It is 4."))
    view.handle(MessageEnd("final"))
    view.handle(Stop("return"))
    view.handle(Done(GenerationStats(generated_tokens=20, decode_tps=31.5), "return", ttft_s=0.25))


def test_view_hides_reasoning_and_says_how_long_it_thought():
    out, clock = io.StringIO(), FakeClock()
    view = TerminalView(out, show_reasoning=False, clock=clock, tty=True)
    scripted(view, clock)
    text = out.getvalue()
    assert "Thinking… 0 s" in text and "Thinking… 2 s" in text and "Thought for 3 s\n" in text
    assert "The user" not in text and "It is 4." in text and "31.5 tokens/s" in text
    assert text.index("Thought for") < text.index("It is 4.")


def test_view_shows_raw_reasoning_dimmed_when_asked():
    out, clock = io.StringIO(), FakeClock()
    view = TerminalView(out, show_reasoning=True, clock=clock, tty=True)
    scripted(view, clock)
    text = out.getvalue()
    assert "\033[2mThe user \033[0m" in text and "Thought for 3 s" in text and "It is 4." in text
    assert "".join(view.analysis) == "The user asks 2+2." and "".join(view.final) == "It is 4."


def test_piped_output_is_plain_text_without_escape_codes(tiny_model):
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm")
    run = subprocess.run([sys.executable, "-m", "engine.chat", "--model", str(tiny_model), "--temperature", "0",
                          "--max-tokens", "12", "--show-reasoning"], input="Hello!\n/quit\n", capture_output=True,
                         text=True, cwd=str(ROOT), env=env, timeout=120)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "[12 tokens, " in run.stdout and "\033" not in run.stdout


def test_view_shows_reading_progress_in_a_terminal_only():
    from engine.events import PrefillProgress

    for tty in (True, False):
        out, clock = io.StringIO(), FakeClock()
        view = TerminalView(out, show_reasoning=False, clock=clock, tty=tty)
        view.handle(PrefillProgress(400, 1000))
        scripted(view, clock)
        text = out.getvalue()
        assert ("\r\033[KReading your message… 40%\r\033[KThinking… 0 s" in text) == tty
        assert ("Reading" in text) == tty and "It is 4." in text


def test_view_writes_no_escape_codes_into_a_pipe():
    out, clock = io.StringIO(), FakeClock()
    for show in (False, True):
        view = TerminalView(out, show_reasoning=show, clock=clock)  # StringIO is not a terminal
        scripted(view, clock)
    text = out.getvalue()
    assert "\033" not in text and "\r" not in text
    assert "Thought for 3 s\n" in text and "The user asks 2+2." in text and "31.5 tokens/s" in text


def test_a_context_the_memory_plan_refuses_is_one_sentence_before_loading(tiny_model):
    chat = spawn("--model", str(tiny_model), "--context", str(10 ** 9))
    chat.expect(pexpect.EOF)
    chat.close()
    lines = [l for l in chat.before.splitlines() if l.strip()]
    assert chat.exitstatus == 1 and "Traceback" not in chat.before
    assert len(lines) == 1 and not lines[0].startswith("Loading")
