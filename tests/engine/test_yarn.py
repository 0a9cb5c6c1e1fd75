"""YaRN frequencies: ours are the reference's, and truncating the range (as mlx-lm does) differs."""

import contextlib

import numpy as np
import pytest
import torch
from transformers import GptOssConfig as HFConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from engine.config import YarnScaling
from engine.model import yarn_inv_freq


@contextlib.contextmanager
def correctly_rounded_pow():
    """PyTorch's float32 `scalar ** tensor` on the CPU (SLEEF, 1-ulp accurate) rounds a few
    powers the wrong way; inside this block it is computed in float64 and rounded once."""
    original = torch.Tensor.__rpow__

    def rpow(self, other):
        if self.dtype == torch.float32:
            return (other ** self.double()).float()
        return original(self, other)

    torch.Tensor.__rpow__ = rpow
    try:
        yield
    finally:
        torch.Tensor.__rpow__ = original


def reference_inv_freq(head_dim=64, truncate=False):
    cfg = HFConfig(head_dim=head_dim, rope_theta=150000.0, rope_scaling={
        "rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
        "original_max_position_embeddings": 4096, "truncate": truncate})
    inv, factor = ROPE_INIT_FUNCTIONS["yarn"](cfg, torch.device("cpu"))
    return inv.numpy(), factor


@pytest.mark.parametrize("head_dim", [64, 32, 128])
def test_inv_freq_is_the_reference_formula_bit_for_bit(head_dim):
    """Every float32 step in the reference's order: identical bits to the reference's function
    once its pow is correctly rounded, and within one ulp of it as PyTorch ships it."""
    inv, factor = yarn_inv_freq(head_dim, 150000.0, YarnScaling())
    with correctly_rounded_pow():
        exact_ref, _ = reference_inv_freq(head_dim)
    assert inv.dtype == np.float32 and (inv == exact_ref).all()
    shipped_ref, ref_factor = reference_inv_freq(head_dim)
    assert (np.abs(inv - shipped_ref) <= np.spacing(shipped_ref)).all()
    assert abs(factor - ref_factor) < 1e-12 and abs(factor - (0.1 * np.log(32) + 1)) < 1e-12


def test_truncated_range_would_drift():
    """The floor/ceil variant gives other frequencies: a test that used it would fail above."""
    inv, _ = yarn_inv_freq(64, 150000.0, YarnScaling())
    truncated, _ = yarn_inv_freq(64, 150000.0, YarnScaling(truncate=True))
    assert np.abs(inv - truncated).max() / inv.max() > 1e-4
    with correctly_rounded_pow():
        ref_truncated, _ = reference_inv_freq(64, truncate=True)
    assert (truncated == ref_truncated).all()
