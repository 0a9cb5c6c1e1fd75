"""The gpt-oss engine: token ids in, token ids out. Knows nothing of Qt.

`engine.open_chat(folder, context_length=...)` is the front door (plan, load, tokenizer, session);
`engine.load_model` loads just the model. Both are imported lazily so that light modules
(engine.events, engine.harmony, engine.tokenizer, engine.errors) can be used without loading MLX.
"""


def __getattr__(name):
    if name == "load_model":
        from engine.loader import load_model

        return load_model
    if name == "open_chat":
        from engine.front_door import open_chat

        return open_chat
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["load_model", "open_chat"]
