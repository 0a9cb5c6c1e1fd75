"""Opening the model for the server, and the few facts about it the API needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class OpenedChat:
    """A loaded chat session plus what the API layer asks of it."""

    session: object  # engine.session.ChatSession
    enc: object      # the tokenizer (tiktoken.Encoding)
    greedy: bool     # the folder's generation_config asks for greedy decoding (the demo model does)
    name: str

    def sampling(self, temperature: float, top_p: float, seed: int | None):
        from engine.generate import SamplingParams

        return SamplingParams(temperature=temperature, top_p=top_p, seed=seed)

    def count_tokens(self, text: str) -> int:
        return len(self.enc.encode_ordinary(text)) if text else 0


def open_model(folder: str | Path, context_length: int, cache_folder: str | Path | None = None) -> OpenedChat:
    """The engine's front door (plan, load, tokenizer, generation defaults) for the server.
    cache_folder: where conversations' caches survive a restart (None: memory only).

    Raises ModelError (one sentence) when the folder can't be opened or doesn't fit."""
    from engine import open_chat

    session = open_chat(folder, context_length=context_length, cache_folder=cache_folder)
    return OpenedChat(session, session.enc, session.greedy, model_id_for(folder))


def model_id_for(folder: str | Path) -> str:
    """The id clients pass as `model`: the folder's name (e.g. "gpt-oss-20b")."""
    return Path(folder).resolve().name
