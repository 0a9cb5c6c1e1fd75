"""Our float32 logits against the reference (transformers' GptOssForCausalLM) on tiny checkpoints."""

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.config import load_config
from models.tiny import write_tiny_checkpoint

SHAPES = [  # hidden a multiple of 32 but not of 64 where it matters; window shorter than the sequence
    dict(seed=0, hidden=96, experts=8, layers=4, length=256),
    dict(seed=1, hidden=160, experts=16, layers=2, length=300, top_k=4),
    dict(seed=2, hidden=96, experts=12, layers=3, length=200, top_k=2, intermediate=160),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"d{s['hidden']}-e{s['experts']}-s{s['seed']}")
def test_float32_logits_match_reference(tmp_path, shape, reference_logits, random_ids):
    shape = dict(shape)
    length = shape.pop("length")
    folder = write_tiny_checkpoint(tmp_path / "m", **shape)
    ids = random_ids(load_config(folder).vocab_size, length, shape["seed"])
    ref = reference_logits(folder, ids)
    ours = np.array(load_model(folder, dtype="float32")(mx.array(ids)))
    assert np.abs(ours - ref).max() < 1e-3
    assert (ours.argmax(-1) == ref.argmax(-1)).all()


def test_yarn_region_past_4096_matches_reference(tmp_path, reference_logits, random_ids):
    """Positions beyond original_max_position_embeddings (4096) exercise YaRN's interpolation."""
    folder = write_tiny_checkpoint(tmp_path / "m", layers=2, experts=8, hidden=96, seed=5, vocab=256)
    ids = random_ids(256, 4400, seed=5)
    ref = reference_logits(folder, ids)[:, 4000:]
    ours = np.array(load_model(folder, dtype="float32")(mx.array(ids)))[:, 4000:]
    assert np.abs(ours - ref).max() < 1e-3
    assert (ours.argmax(-1) == ref.argmax(-1)).all()
