"""engine/mxfp4.py against the spec's 16 values and against MLX's own mxfp4 (de)quantization."""

import mlx.core as mx
import numpy as np
import pytest

from engine import mxfp4

SPEC_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]


def test_fp4_table_is_the_spec():
    assert mxfp4.FP4_VALUES.tolist() == SPEC_VALUES
    assert np.signbit(mxfp4.FP4_VALUES[8])  # code 8 is -0


def test_every_code_decodes_in_its_nibble():
    # Block of 32 codes 0..15, 0..15: the low nibble is the even element.
    codes = np.tile(np.arange(16, dtype=np.uint8), 2)[None, :]
    blocks = mxfp4.pack_codes(codes)
    assert blocks[0, 0] == 0x10  # element 0 -> code 0 (low), element 1 -> code 1 (high)
    out = mxfp4.decode(blocks, np.array([127], dtype=np.uint8))
    assert out.tolist() == SPEC_VALUES * 2


def test_scale_bytes():
    s = np.array([0, 1, 126, 127, 128, 254, 255], dtype=np.uint8)
    v = mxfp4.scale_values(s)
    assert v[0] == np.float32(2.0 ** -127) and v[0] > 0  # subnormal, not flushed to zero
    assert v[1:6].tolist() == [2.0 ** -126, 0.5, 1.0, 2.0, 2.0 ** 127]
    assert np.isnan(v[6])


def test_decode_matches_mlx_dequantize_on_random_bytes():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (6, 40, 16), dtype=np.uint8)
    scales = rng.integers(100, 150, (6, 40), dtype=np.uint8)
    scales[0, :4] = [0, 1, 127, 254]
    ours = mxfp4.decode(blocks, scales)
    wq = mx.array(mxfp4.blocks_as_uint32(blocks))
    theirs = mx.dequantize(wq, mx.array(scales), group_size=32, bits=4, mode="mxfp4", dtype=mx.float32)
    np.testing.assert_array_equal(ours, np.array(theirs))


def test_uint32_view_is_mlx_quantize_packing():
    # Blocks whose largest magnitude is 6 * 2^k: the OCP scale and MLX's scale agree there.
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 16, (8, 4, 32), dtype=np.uint8)
    codes[..., 0] = 7  # +6
    exps = rng.integers(-3, 4, (8, 4))
    values = mxfp4.FP4_VALUES[codes] * np.exp2(exps)[..., None]
    values = values.reshape(8, -1).astype(np.float32)
    blocks, scales = mxfp4.encode(values)
    wq, s = mx.quantize(mx.array(values), group_size=32, bits=4, mode="mxfp4")
    np.testing.assert_array_equal(np.array(s), scales)
    np.testing.assert_array_equal(np.array(wq), mxfp4.blocks_as_uint32(blocks))


def test_encode_decode_round_trip_is_exact_for_representable_values():
    rng = np.random.default_rng(2)
    blocks = rng.integers(0, 256, (5, 7, 16), dtype=np.uint8)
    scales = rng.integers(110, 140, (5, 7), dtype=np.uint8)
    values = mxfp4.decode(blocks, scales)
    np.testing.assert_array_equal(mxfp4.decode(*mxfp4.encode(values)), values)


@pytest.mark.parametrize("x, expected", [
    (0.25, 0.0), (0.26, 0.5), (0.75, 1.0), (1.25, 1.0), (1.75, 2.0), (2.5, 2.0), (3.5, 4.0),
    (5.0, 4.0), (5.1, 6.0), (7.5, 6.0), (-0.75, -1.0), (-5.0, -4.0),
])
def test_encode_rounds_to_nearest_even(x, expected):
    # Scale fixed at 1 by a 6 in the same block (amax 6 -> exponent 2 - 2 = 0).
    block = np.zeros(32, dtype=np.float32)
    block[0], block[1] = 6.0, x
    blocks, scales = mxfp4.encode(block[None, :])
    assert scales[0, 0] == 127
    assert mxfp4.decode(blocks, scales)[0, 1] == expected


def test_encode_error_is_small_for_gaussian_weights():
    w = np.random.default_rng(3).standard_normal((64, 256)).astype(np.float32)
    err = np.abs(mxfp4.decode(*mxfp4.encode(w)) - w)
    assert err.max() < 1.0 and err.mean() < 0.15


def test_encode_rejects_ragged_rows():
    with pytest.raises(ValueError, match="multiple of 32"):
        mxfp4.encode(np.zeros((2, 40), dtype=np.float32))
