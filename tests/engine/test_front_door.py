"""engine.open_chat, the one way to open a model for chat: it follows the memory plan, refuses in
one sentence before reading any weight, and applies the folder's generation defaults."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import engine
from engine.errors import ModelError
from engine.front_door import NotEnoughMemory, open_chat
from engine.memory import plan, wired_limit


def test_open_chat_follows_the_plan_and_answers(tiny_chat_folder):
    budget = 8 * 10**9  # fixed: this machine's free memory moves between two calls
    expected = plan(tiny_chat_folder, 4096, budget)
    session = engine.open_chat(tiny_chat_folder, context_length=4096, budget=budget)
    assert session.plan == expected and session.context_length == 4096
    assert session.prefill_chunk == expected.prefill_chunk
    assert expected.policy.embed_on_cpu and isinstance(session.model.embed.table, np.memmap)
    # Greedy: sampled, the random model now and then writes a reserved token into a header and is
    # stopped after 2 tokens (a loaded full run saw it).
    events = list(session.reply([{"role": "user", "content": "Hi"}], max_tokens=3, date="2026-11-22",
                                sampling=session.sampling(0.0)))
    assert events[-1].stats.generated_tokens == 3
    assert session.sampling().temperature == 1.0 and not session.greedy  # no generation_config.json


def test_a_plan_that_does_not_fit_is_refused_before_loading(tiny_chat_folder, monkeypatch):
    import engine.loader

    monkeypatch.setattr(engine.loader, "load_model", lambda *a, **k: pytest.fail("loaded anyway"))
    with pytest.raises(NotEnoughMemory) as refused:
        open_chat(tiny_chat_folder, context_length=4096, budget=10_000)
    message = str(refused.value)
    assert isinstance(refused.value, ModelError) and "\n" not in message and message.endswith(".")
    assert "GB" in message and refused.value.plan is not None and not refused.value.plan.fits


def test_a_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        open_chat(tmp_path / "nowhere")


def test_a_folder_that_asks_for_greedy_gets_greedy(tiny_chat_folder, tmp_path):
    folder = tmp_path / "greedy"
    shutil.copytree(tiny_chat_folder, folder)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    session = open_chat(folder, context_length=2048)
    assert session.greedy and session.sampling(temperature=1.0, top_p=0.9).temperature == 0.0


def test_wired_limit_is_restored_after_the_block(monkeypatch):
    import mlx.core as mx

    calls = []
    monkeypatch.setattr(mx.metal, "is_available", lambda: True)
    monkeypatch.setattr(mx, "device_info", lambda: {"max_recommended_working_set_size": 11 << 30})
    monkeypatch.setattr(mx, "set_wired_limit", lambda n: calls.append(n) or 123)
    with wired_limit() as wired:
        assert wired == 11 << 30 and calls == [11 << 30]
    assert calls == [11 << 30, 123]  # the old limit is back
    with pytest.raises(RuntimeError), wired_limit():
        raise RuntimeError("an answer failed")
    assert calls[-1] == 123


def test_events_and_the_front_door_module_import_no_mlx():
    import subprocess
    import sys

    code = ("import sys, engine.events, engine.front_door, engine.harmony; "
            "assert not [m for m in sys.modules if m.startswith('mlx')], 'mlx imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
