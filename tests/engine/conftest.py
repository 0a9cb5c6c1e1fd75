"""Fixtures for the engine tests: tiny random checkpoints in the official layout, and the
reference implementation (transformers' GptOssForCausalLM, float32, MXFP4 dequantized)."""

from __future__ import annotations

import numpy as np
import pytest

from models.tiny import write_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """hidden 96 (a multiple of 32, not of 64), 8 experts, window 16."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "m", layers=4, experts=8, hidden=96,
                                 seed=0, shard_bytes=256 << 10)


def _reference_logits(folder, ids: np.ndarray) -> np.ndarray:
    """Logits [B, T, V] from transformers' GptOssForCausalLM in float32 (eager attention with sinks)."""
    import torch
    from transformers import GptOssForCausalLM, Mxfp4Config

    ref = GptOssForCausalLM.from_pretrained(str(folder), quantization_config=Mxfp4Config(dequantize=True),
                                            dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    with torch.no_grad():
        return ref(torch.tensor(ids)).logits.float().numpy()


def _random_ids(vocab: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (1, length))


@pytest.fixture(scope="session")
def reference_logits():
    return _reference_logits


@pytest.fixture(scope="session")
def random_ids():
    return _random_ids
