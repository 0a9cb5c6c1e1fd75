"""bfloat16 (the app's dtype) stays close to float32 on a numerically tame tiny model."""

import mlx.core as mx
import numpy as np

from engine import load_model


def test_bfloat16_close_to_float32(tiny_dir, random_ids):
    ids = mx.array(random_ids(512, 120, seed=7))
    f32 = np.array(load_model(tiny_dir, dtype="float32")(ids)).reshape(-1, 512)
    bf16_model = load_model(tiny_dir, dtype="bfloat16")
    out = bf16_model(ids)
    assert out.dtype == mx.bfloat16
    b16 = np.array(out.astype(mx.float32)).reshape(-1, 512)
    cos = (f32 * b16).sum(-1) / (np.linalg.norm(f32, axis=-1) * np.linalg.norm(b16, axis=-1))
    # A rare position may sit on a near tie of the router's top-k and flip an expert in bf16
    # (seed 7 has one at cos 0.980 with the reference-exact rotary; the old one has its own at
    # other seeds): the bulk must be close, a lone flip may not be a disaster.
    assert np.median(cos) >= 0.999 and (cos >= 0.99).mean() >= 0.98 and cos.min() >= 0.97
