"""Fixtures shared across the suite."""

import shutil

import pytest

from models.tiny import write_tiny_checkpoint
from models.tokenizer_json import shared_o200k_harmony_folder


@pytest.fixture(scope="session")
def tiny_chat_folder(tmp_path_factory):
    """A tiny random gpt-oss checkpoint with the real o200k_harmony tokenizer.json: the smallest
    folder the chat session, the terminal chat and the app can load end to end."""
    folder = tmp_path_factory.mktemp("tiny-chat")
    write_tiny_checkpoint(folder, layers=2, experts=4, hidden=64, seed=0, vocab=201088)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
    return folder
