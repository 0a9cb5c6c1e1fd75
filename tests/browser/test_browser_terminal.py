"""The terminal chat with --library: each browser call is one line, the turn's messages are kept,
and a folder that doesn't exist is one sentence before any model loads."""

from __future__ import annotations

import io
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

from engine.browser import BrowserTool
from engine.browser.sources import open_sources
from engine.chat import Chat
from scripted import ScriptedSession
from test_browser_turn import FINAL, OPEN, SEARCH

ROOT = Path(__file__).resolve().parents[2]


def args(**kw):
    base = dict(effort="medium", temperature=0.0, top_p=1.0, max_tokens=200, developer=None, show_reasoning=False,
                model="scripted")
    return Namespace(**{**base, **kw})


def test_a_browsing_turn_in_the_terminal(enc, notes, tmp_path, count_tokens):
    seen = []
    backends = open_sources([str(notes)], [], tmp_path / "index", progress=lambda d, t, p: seen.append((d, t)))
    assert seen[-1] == (6, 6)
    out = io.StringIO()
    chat = Chat(ScriptedSession(enc, [SEARCH, OPEN, FINAL]), args(), out=out,
                browser=BrowserTool(backends, count_tokens))
    chat.answer("How high is the spring tide at Brest?")
    text = out.getvalue()
    assert '[browser.search "spring tide Brest" -> [0] spring tide Brest]' in text
    assert "[browser.open 0 -> [1] Tide tables (file://" in text
    assert "peaks at 7.9 metres 【1†L2】" in text
    assert f"【1†L2】 Tide tables: {(notes / 'tides.md').as_uri()}#L2-L2" in text  # where the citation leads
    assert [m["role"] for m in chat.messages][-3:] == ["assistant", "tool", "assistant"]
    chat.command("/reset")
    assert chat.messages == [] and chat.browser.next_cursor == 0 and chat.browser.page(1) is None


def test_a_turn_without_an_answer_is_taken_back(enc, notes, tmp_path, count_tokens):
    backends = open_sources([str(notes)], [], tmp_path / "index")
    chat = Chat(ScriptedSession(enc, [SEARCH, "<|channel|>analysis<|message|>cut off while thinking"]), args(), out=io.StringIO(),
                browser=BrowserTool(backends, count_tokens))
    chat.answer("tides?")
    assert chat.messages == []


def test_a_missing_library_folder_is_one_sentence(tmp_path):
    run = subprocess.run([sys.executable, "-m", "engine.chat", "--model", str(ROOT / "models" / "demo"),
                          "--library", str(tmp_path / "nope")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    assert f"The library folder {tmp_path / 'nope'} does not exist" in run.stderr
    assert "Traceback" not in run.stderr


def test_sources_that_cant_be_used_are_one_sentence(tmp_path, notes):
    import pytest

    from zim_archive import ARTICLES, write_zim

    with pytest.raises(ValueError, match="The ZIM file .* does not exist"):
        open_sources([], [str(tmp_path / "missing.zim")], tmp_path / "index")
    (tmp_path / "bad.zim").write_text("not a zim")
    with pytest.raises(ValueError, match="is not a readable ZIM archive"):
        open_sources([], [str(tmp_path / "bad.zim")], tmp_path / "index")
    write_zim(tmp_path / "library.zim", ARTICLES)
    with pytest.raises(ValueError, match="same name"):
        open_sources([str(notes)], [str(tmp_path / "library.zim")], tmp_path / "index")
    both = open_sources([str(notes)], [str(tmp_path / "wiki.zim") if write_zim(tmp_path / "wiki.zim", ARTICLES) else ""],
                        tmp_path / "index")
    assert [b.name for b in both] == ["library", "wiki"]
