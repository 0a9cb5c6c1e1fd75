"""Print the planner's tables for docs/memory.md and docs/distributed.md (arithmetic only, instant).

    python -m bench.plan_table                  # gpt-oss-120b on one Mac of each size, 4k context
    python -m bench.plan_table --model 20b
    python -m bench.plan_table --splits         # the 120b across several Macs

Budgets are engine.memory.mac_budget (Metal's default GPU working set). The plan is computed from
the official config alone (footprint_from_config equals the headers: tests/test_plan_120b.py).
"""

from __future__ import annotations

import argparse
import sys

from bench.fullsize_checkpoint import config_for
from engine.config import config_from_dict
from engine.memory import GB, footprint_from_config, mac_budget, plan_footprint
from engine.pipeline_plan import plan_split

SPLITS = ((32, 32), (24, 24, 24), (24, 24), (16, 16, 16), (16, 16, 16, 16), (64, 32), (64, 64))


def _policy(p) -> str:
    bits = "bf16" if p.policy.non_expert_bits is None else f"{p.policy.non_expert_bits}-bit"
    slots = "all 128" if p.policy.expert_slots is None else f"{p.policy.expert_slots} of {128}"
    return f"{bits} attention/lm_head, {slots} experts per layer"


def mac_table(size: str, context: int, rams=(16, 24, 32, 48, 64, 96, 128, 192)) -> str:
    cfg = config_from_dict(config_for(size))
    fp = footprint_from_config(cfg, f"gpt-oss-{size}")
    rows = ["| Mac | GPU budget | plan | expert slots / layer | predicted peak | context cap | prefill chunk |",
            "|---|---|---|---|---|---|---|"]
    for ram in rams:
        p = plan_footprint(fp, context, mac_budget(ram))
        if not p.fits:
            rows.append(f"| {ram} GB | {mac_budget(ram) / GB:.1f} GB | refused: {p.reason} | | | | |")
            continue
        slots = f"{cfg.num_local_experts} (all)" if p.policy.expert_slots is None else \
            f"{p.policy.expert_slots} ({100 * p.policy.expert_slots / cfg.num_local_experts:.0f}%)"
        bits = "bf16" if p.policy.non_expert_bits is None else f"{p.policy.non_expert_bits}-bit"
        rows.append(f"| {ram} GB | {mac_budget(ram) / GB:.1f} GB | {bits} attention/lm_head | {slots} | "
                    f"{p.peak_bytes / GB:.1f} GB | {p.context_cap} | {p.prefill_chunk} |")
    return "\n".join(rows)


def split_table(context: int) -> str:
    cfg = config_from_dict(config_for("120b"))
    rows = ["| Macs | rank: layers, expert slots / layer, predicted peak of budget |", "|---|---|"]
    for rams in SPLITS:
        s = plan_split(cfg, [mac_budget(r) for r in rams], context, "gpt-oss-120b")
        if not s.fits:
            rows.append(f"| {' + '.join(f'{r} GB' for r in rams)} | refused: {s.reason} |")
            continue
        parts = []
        for st in s.stages:
            slots = "all" if st.plan.policy.expert_slots is None else str(st.plan.policy.expert_slots)
            bits = "bf16" if st.plan.policy.non_expert_bits is None else f"{st.plan.policy.non_expert_bits}-bit"
            parts.append(f"{st.rank}: {st.first}-{st.last - 1}{' +head' if st.head else ''}, {bits}, {slots} slots, "
                         f"{st.plan.peak_bytes / GB:.1f}/{st.plan.budget_bytes / GB:.1f} GB")
        rows.append(f"| {' + '.join(f'{r} GB' for r in rams)} | {'; '.join(parts)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("20b", "120b"), default="120b")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--splits", action="store_true")
    args = ap.parse_args(argv)
    print(split_table(args.context) if args.splits else mac_table(args.model, args.context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
