"""YaRN frequencies: ours are the reference's, and truncating the range (as mlx-lm does) differs."""

import numpy as np
import torch
from transformers import GptOssConfig as HFConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from engine.config import YarnScaling
from engine.model import yarn_inv_freq


def reference_inv_freq(truncate: bool):
    cfg = HFConfig(head_dim=64, rope_theta=150000.0, rope_scaling={
        "rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
        "original_max_position_embeddings": 4096, "truncate": truncate})
    inv, factor = ROPE_INIT_FUNCTIONS["yarn"](cfg, torch.device("cpu"))
    return inv.numpy(), factor


def test_inv_freq_and_attention_factor_match_reference():
    ref_inv, ref_factor = reference_inv_freq(truncate=False)
    inv, factor = yarn_inv_freq(64, 150000.0, YarnScaling())
    np.testing.assert_allclose(inv, ref_inv, rtol=1e-6)
    assert abs(factor - ref_factor) < 1e-9 and abs(factor - (0.1 * np.log(32) + 1)) < 1e-9


def test_truncated_range_would_drift():
    """The floor/ceil variant gives other frequencies: a test that used it would fail above."""
    inv, _ = yarn_inv_freq(64, 150000.0, YarnScaling())
    truncated, _ = yarn_inv_freq(64, 150000.0, YarnScaling(truncate=True))
    assert np.abs(inv - truncated).max() / inv.max() > 1e-4
