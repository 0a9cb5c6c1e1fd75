"""Dense weights are held as the checkpoint's rows on Metal and as columns on MLX's CPU backend
(engine.model.weights_by_column): both layouts must compute the same model."""

import mlx.core as mx
import numpy as np
import pytest

from engine.loader import load_model
from engine.memory import Policy
from engine.model import Linear, weights_by_column


@pytest.fixture
def folder(small_checkpoint):
    return small_checkpoint


@pytest.fixture(scope="module")
def ids():
    return mx.array(np.random.default_rng(0).integers(0, 4096, (1, 64)).astype(np.int32))


def _logits(folder, ids, by_column, bits=None):
    model = load_model(folder, dtype="float32", by_column=by_column,
                       policy=Policy(non_expert_bits=bits) if bits else None)
    assert model.lm_head.by_column is by_column
    return np.array(model(ids))


def test_the_loader_picks_columns_on_the_cpu_backend_only(folder):
    on_cpu = mx.default_device() == mx.cpu
    assert weights_by_column() is on_cpu
    model = load_model(folder, dtype="float32")  # by_column left to the loader
    assert all(lin.by_column is on_cpu for lin in (model.lm_head, model.blocks[0].attn.q_proj))


def test_float_layouts_give_identical_logits(folder, ids):
    assert np.array_equal(_logits(folder, ids, False), _logits(folder, ids, True))


@pytest.mark.parametrize("bits, bound", [(8, 0.08), (4, 1.5)])
def test_quantized_layouts_are_equally_close_to_float(folder, ids, bits, bound):
    # The column layout quantizes groups of 64 along the outputs instead of the inputs: a different
    # rounding of the same weights, so both are held to the float logits, not to each other.
    exact = _logits(folder, ids, False)
    errors = {c: np.abs(_logits(folder, ids, c, bits) - exact).max() for c in (False, True)}
    assert max(errors.values()) < bound
    assert errors[True] < 1.5 * errors[False]


def test_outputs_that_split_into_no_whole_group_keep_the_rows():
    w = mx.random.normal((40, 128), key=mx.random.key(0))
    x = mx.random.normal((3, 128), key=mx.random.key(1))
    lin = Linear(w, None, bits=8, by_column=True)
    assert not lin.by_column
    assert np.array_equal(np.array(lin(x)), np.array(Linear(w, None, bits=8)(x)))
    dense = Linear(w, None, by_column=True)
    assert dense.by_column and dense.weight.shape == (128, 40)
    assert np.allclose(np.array(dense(x)), np.array(x @ w.T), atol=1e-5)
