"""Logit error against the reference by position: is the rotary embedding exact at every position?

A tiny random checkpoint (2 layers, hidden 64, window 128) runs through transformers'
GptOssForCausalLM in float32 and through our engine in float32; the table gives the largest
|logit difference| per position bucket, for the rotary embedding as it was (mx.fast.rope fed with
periods, output scaled by the YaRN factor) and as it is (engine.model.Rotary), and the latter once
more against the reference with its float32 pow correctly rounded: PyTorch's CPU pow (SLEEF,
1-ulp accurate) rounds a few of the YaRN frequencies one ulp off the correctly rounded value,
which we compute; an inverse frequency one ulp off turns angles by distance x 1 ulp, an error
that grows with the distance between query and key.

- "from 0": one sequence from position 0 (the issue's measurement).
- offsets: N tokens placed at positions P..P+N-1 with nothing before them (the reference gets
  position_ids, our cache starts at P), up to the model's last position, 131071.

  python -m bench.rope_parity --head-dims 64 32 --length 4200 --qk-scale 1 3

--qk-scale multiplies the q/k projections: sharper attention, closer to a trained model's, makes
angle errors visible in the logits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

OFFSETS = (0, 4096, 16384, 65536, 131072)  # the last window ends at position 131071


class LegacyRotary:
    """The rotary embedding before the fix: mx.fast.rope takes periods (1/inv_freq, which it
    inverts again) and the YaRN factor scales its output."""

    def __init__(self, inv_freq: np.ndarray, factor: float):
        import mlx.core as mx

        self.periods, self.factor = mx.array(1.0 / inv_freq), factor

    def __call__(self, x, offset: int):
        import mlx.core as mx

        x = mx.fast.rope(x, x.shape[-1], traditional=False, base=None, scale=1.0, offset=offset,
                         freqs=self.periods)
        return x * self.factor


def tiny(folder: str, head_dim: int, qk_scale: float, seed: int = 0) -> str:
    from models.tiny import random_tensors, tiny_config, write_checkpoint

    cfg = tiny_config(layers=2, experts=8, hidden=64, heads=4, kv_heads=2, head_dim=head_dim,
                      sliding_window=128, vocab=512)
    tensors = random_tensors(cfg, seed)
    for name in tensors:
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            tensors[name] = tensors[name] * np.float32(qk_scale)
    return str(write_checkpoint(folder, cfg, tensors))


def reference(folder: str):
    import torch
    from transformers import GptOssForCausalLM, Mxfp4Config

    model = GptOssForCausalLM.from_pretrained(folder, quantization_config=Mxfp4Config(dequantize=True),
                                              dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def reference_logits(model, ids: np.ndarray, start: int = 0) -> np.ndarray:
    """Logits [T, V] for ids [1, T] at positions start.. (nothing before them)."""
    import torch

    with torch.no_grad():
        pos = torch.arange(start, start + ids.shape[1])[None]
        return model(torch.tensor(ids), position_ids=pos).logits[0].float().numpy()


def exact_pow_reference(model, inv_freq: np.ndarray):
    """The same reference with the correctly rounded frequencies in its rotary buffer."""
    import torch

    model.model.rotary_emb.inv_freq.copy_(torch.tensor(inv_freq))
    return model


def our_logits(model, ids: np.ndarray, start: int = 0) -> np.ndarray:
    import mlx.core as mx

    return np.array(model(mx.array(ids), cache=model.make_cache(start=start)))[0]


def use_rotary(model, rotary) -> None:
    for block in model.blocks:
        block.attn.rotary = rotary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head-dims", type=int, nargs="+", default=[64, 32])
    ap.add_argument("--qk-scale", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--length", type=int, default=4200, help="tokens of the from-0 sequence (0: skip)")
    ap.add_argument("--window", type=int, default=256, help="tokens per offset window")
    args = ap.parse_args(argv)

    from engine.loader import load_model
    from engine.model import Rotary, yarn_inv_freq

    for hd in args.head_dims:
        for qk in args.qk_scale:
            with tempfile.TemporaryDirectory() as tmp:
                folder = tiny(tmp, hd, qk)
                ref = reference(folder)
                ours = load_model(folder, dtype="float32")
                cfg = ours.config
                inv, factor = yarn_inv_freq(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling)
                shipped = ref.model.rotary_emb.inv_freq.numpy().copy()
                off = np.nonzero(shipped != inv)[0]
                print(f"\nhead_dim {hd}: PyTorch's frequencies {off.tolist()} differ from the correctly rounded ones "
                      f"by {[int(round(float(d))) for d in (shipped[off] - inv[off]) / np.spacing(inv[off])]} ulp")
                exact = exact_pow_reference(reference(folder), inv)
                rows = [("before (fast.rope)", LegacyRotary(inv, factor), ref),
                        ("after (Rotary)", Rotary(inv, factor), ref),
                        ("before, exact pow ref", LegacyRotary(inv, factor), exact),
                        ("after, exact pow ref", Rotary(inv, factor), exact)]
                rng = np.random.default_rng(0)
                print(f"head_dim {hd}, q/k x{qk:g}: max |logit error| by position")
                if args.length:
                    ids = rng.integers(0, cfg.vocab_size, (1, args.length))
                    r = {id(m): reference_logits(m, ids) for m in (ref, exact)}
                    edges = [0, 128, 1024, 2048, 3072, 4096, args.length]
                    edges = sorted({e for e in edges if e <= args.length})
                    print(f"  from 0, logits std {r[id(ref)].std():.2f}")
                    print("  " + " " * 22 + "".join(f"{f'{a}-{b}':>12}" for a, b in zip(edges, edges[1:])))
                    for name, rot, m in rows:
                        use_rotary(ours, rot)
                        err = np.abs(our_logits(ours, ids) - r[id(m)]).max(-1)
                        print(f"  {name:<22}" + "".join(f"{err[a:b].max():12.2e}" for a, b in zip(edges, edges[1:])))
                n = args.window
                ids = rng.integers(0, cfg.vocab_size, (1, n))
                starts = [min(p, 131072 - n) for p in OFFSETS]
                refs = {(id(m), p): reference_logits(m, ids, p) for m in (ref, exact) for p in starts}
                print(f"  {n} tokens at positions P..P+{n - 1}")
                print("  " + " " * 22 + "".join(f"{f'P={p}':>12}" for p in starts))
                for name, rot, m in rows:
                    use_rotary(ours, rot)
                    errs = [np.abs(our_logits(ours, ids, p) - refs[id(m), p]).max() for p in starts]
                    print(f"  {name:<22}" + "".join(f"{e:12.2e}" for e in errs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
