"""The gpt-oss engine: token ids in, token ids out. Knows nothing of Qt.

`from engine import load_model` is the entry point. It is imported lazily so that light modules
(engine.harmony, engine.tokenizer, engine.errors) can be used without loading MLX.
"""


def __getattr__(name):
    if name == "load_model":
        from engine.loader import load_model

        return load_model
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


__all__ = ["load_model"]
