"""NaN or Inf weights: the small tensors (norms, biases, sinks, router) are checked at load; NaN
logits from the big ones stop generation with a sentence instead of a page of nonsense."""

from __future__ import annotations

import numpy as np
import pytest

from engine import load_model
from engine.errors import ModelError
from engine.generate import Generation, SamplingParams, generate_greedy
from models.tiny import random_tensors, tiny_config, write_checkpoint

SMALL = ["model.norm.weight", "model.layers.1.input_layernorm.weight", "model.layers.0.self_attn.sinks",
         "model.layers.1.mlp.router.weight", "model.layers.0.mlp.router.bias",
         "model.layers.1.self_attn.k_proj.bias", "model.layers.0.mlp.experts.down_proj_bias"]


def checkpoint_with(tmp_path, name, index, value):
    cfg = tiny_config(layers=2, experts=4, hidden=64, vocab=256)
    tensors = random_tensors(cfg, seed=1)
    tensors[name].reshape(-1)[index] = value
    return write_checkpoint(tmp_path / "m", cfg, tensors)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_small_tensor_is_refused_at_load(tmp_path, name, value):
    folder = checkpoint_with(tmp_path, name, 3, value)
    with pytest.raises(ModelError) as info:
        load_model(folder, dtype="float32")
    message = str(info.value)
    assert name in message and "\n" not in message and "download" in message


def test_healthy_checkpoint_loads(tmp_path):
    folder = checkpoint_with(tmp_path, "model.norm.weight", 3, 1.0)
    assert len(generate_greedy(load_model(folder, dtype="float32"), [1, 2, 3], 4)) == 4


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_nan_logits_stop_generation_with_a_sentence(tmp_path, temperature):
    """One NaN in lm_head (too big to scan at load): every logit row holds a NaN from the start."""
    folder = checkpoint_with(tmp_path, "lm_head.weight", 7 * 64 + 5, np.nan)
    model = load_model(folder, dtype="float32")
    gen = Generation(model, [1, 2, 3], model.make_cache(), SamplingParams(temperature=temperature, seed=0),
                     max_tokens=50)
    got = []
    with pytest.raises(ModelError) as info:
        for t in gen:
            got.append(t)
    assert got == []  # not one token of nonsense
    message = str(info.value)
    assert "NaN" in message and "\n" not in message and "download" in message


def test_inf_embedding_row_stops_generation_when_that_token_is_read(tmp_path):
    folder = checkpoint_with(tmp_path, "model.embed_tokens.weight", 9 * 64 + 2, np.inf)
    model = load_model(folder, dtype="float32")
    assert len(generate_greedy(model, [1, 2, 3], 3)) == 3  # token 9 not read: fine
    with pytest.raises(ModelError):
        generate_greedy(model, [1, 9, 3], 3)


def test_terminal_chat_says_the_sentence_and_keeps_going(tmp_path):
    """A NaN answer in the terminal chat: the sentence, no traceback, the prompt comes back."""
    import io
    import shutil

    from engine.chat import Chat, parse_args
    from engine.session import ChatSession
    from engine.tokenizer import load_tokenizer
    from models.tokenizer_json import shared_o200k_harmony_folder

    cfg = tiny_config(layers=1, experts=4, hidden=64, vocab=201088)
    tensors = random_tensors(cfg, seed=1)
    tensors["lm_head.weight"][123, 4] = np.nan
    folder = write_checkpoint(tmp_path / "m", cfg, tensors)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
    out = io.StringIO()
    chat = Chat(ChatSession(load_model(folder, dtype="float32"), load_tokenizer(folder)),
                parse_args(["--model", str(folder), "--temperature", "0"]), out=out)
    lines = iter(["Hello", "/effort high"])

    def read(_prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None
    chat.run(read=read)
    text = out.getvalue()
    assert "NaN" in text and "Traceback" not in text and "Reasoning effort: high" in text
    assert chat.messages == []  # the unanswered question is not kept as history
