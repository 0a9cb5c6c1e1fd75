"""Fixtures shared across the suite."""

import os
import shutil

import pytest

from engine.tokenizer import load_tokenizer
from models.tiny import write_tiny_checkpoint
from models.tokenizer_json import shared_o200k_harmony_folder


@pytest.fixture(scope="session", autouse=True)
def no_writes_to_the_users_data_folder(tmp_path_factory):
    """The app's data folder (history, settings, cached conversations, mcp.json) is a temporary one
    for the whole run; tests that look at it ask for app_home (tests/app/conftest.py)."""
    os.environ.setdefault("GPT_OSS_CHAT_HOME", str(tmp_path_factory.mktemp("app-home")))


@pytest.fixture(scope="session")
def enc():
    """The real o200k_harmony tokenizer (from the bpe-openai package), loaded once for the run."""
    return load_tokenizer(shared_o200k_harmony_folder())


@pytest.fixture(scope="session")
def tiny_chat_folder(tmp_path_factory):
    """A tiny random gpt-oss checkpoint with the real o200k_harmony tokenizer.json: the smallest
    folder the chat session, the terminal chat and the app can load end to end."""
    folder = tmp_path_factory.mktemp("tiny-chat")
    write_tiny_checkpoint(folder, layers=2, experts=4, hidden=64, seed=0, vocab=201088)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A small random checkpoint in the official layout whose attention and lm_head are wide enough
    for MLX's 64-value quantization groups (hidden 256, 8/2 heads of 64, vocab 4096)."""
    folder = tmp_path_factory.mktemp("small")
    write_tiny_checkpoint(folder, layers=2, experts=8, hidden=256, vocab=4096, heads=8, kv_heads=2,
                          head_dim=64, seed=1)
    return folder
