"""Loading is lazy and layer by layer: the peak stays within 1.1x the loaded weights."""

import mlx.core as mx

from engine import load_model
from engine.checkpoint import Checkpoint
from engine.config import load_config
from models.tiny import write_tiny_checkpoint


def test_loading_peak_memory_within_10_percent_of_weights(tmp_path):
    folder = write_tiny_checkpoint(tmp_path / "m", layers=4, experts=16, hidden=512, vocab=4096, heads=8,
                                   kv_heads=2, head_dim=64, shard_bytes=16 << 20)
    weights = Checkpoint(folder, load_config(folder)).weights_bytes()
    assert weights > 30e6
    baseline = mx.get_active_memory()
    mx.reset_peak_memory()
    model = load_model(folder, dtype="bfloat16")
    peak = mx.get_peak_memory() - baseline
    loaded = mx.get_active_memory() - baseline
    assert loaded >= 0.95 * weights  # everything really was read...
    assert peak <= 1.1 * weights  # ...without a second copy on the way
    del model


def test_experts_stay_packed(tiny_dir):
    model = load_model(tiny_dir, dtype="float32")
    ew = model.blocks[0].moe.experts
    assert ew.gate_up_blocks.dtype == mx.uint32 and ew.gate_up_scales.dtype == mx.uint8
    assert ew.gate_up_blocks.shape == (8, 192, 96 // 8)
    assert ew.down_blocks.dtype == mx.uint32 and ew.down_scales.shape == (8, 96, 96 // 32)
