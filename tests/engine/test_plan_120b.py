"""The planner on gpt-oss-120b (36 layers, 128 experts) for every Mac size, planning a model from
its config alone (before download), and the split of a pipeline across several Macs."""

from __future__ import annotations

from dataclasses import asdict

import mlx.core as mx
import pytest

from bench.fullsize_checkpoint import config_for, write_checkpoint
from engine.config import config_from_dict, load_config
from engine.memory import (GB, MIN_RESIDENT_FRACTION, breakdown, footprint_from_config, mac_budget, plan,
                           plan_footprint, read_footprint)
from engine.pipeline_plan import plan_split
from models.tiny import write_tiny_checkpoint

CFG_120B = config_from_dict(config_for("120b"))


@pytest.fixture(scope="module")
def full120b(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("fs120") / "gpt-oss-120b", "sparse", "120b")


def _same(a, b):
    da, db = asdict(a), asdict(b)
    da["quantizable"], db["quantizable"] = sorted(da["quantizable"]), sorted(db["quantizable"])
    return da == db


@pytest.mark.parametrize("size", ["20b", "120b"])
def test_footprint_from_config_equals_the_headers(tmp_path, size):
    folder = write_checkpoint(tmp_path / f"gpt-oss-{size}", "sparse", size)
    assert _same(footprint_from_config(load_config(folder), folder.name), read_footprint(folder))


def test_mac_budgets_follow_metal_working_set():
    assert mac_budget(16) / GB == pytest.approx(10.67, abs=0.01)  # what MLX reports on a 16 GB Mac
    assert mac_budget(32) / GB == pytest.approx(21.33, abs=0.01)
    assert mac_budget(64) == 48 * GB and mac_budget(128) == 96 * GB


@pytest.mark.parametrize("ram", [96, 128, 192])
def test_120b_keeps_every_expert_on_96gb_and_up(full120b, ram):
    p = plan(full120b, 4096, mac_budget(ram))
    assert p.fits and p.policy.expert_slots is None and p.policy.non_expert_bits is None
    assert 64 * GB < p.peak_bytes <= mac_budget(ram)


@pytest.mark.parametrize("ram", [32, 48, 64])
def test_120b_below_96gb_is_8bit_with_expert_residency(full120b, ram):
    p = plan(full120b, 4096, mac_budget(ram))
    assert p.fits and p.policy.non_expert_bits == 8
    assert 128 * MIN_RESIDENT_FRACTION <= p.policy.expert_slots < 128
    assert p.peak_bytes <= mac_budget(ram) and p.context_cap >= 4096
    # One slot more would not fit: the planner keeps as many experts as the budget allows.
    from dataclasses import replace

    fp = read_footprint(full120b)
    richer = replace(p.policy, expert_slots=p.policy.expert_slots + 1)
    assert sum(breakdown(fp, richer, p.prefill_chunk).values()) > mac_budget(ram)


@pytest.mark.parametrize("ram", [16, 24])
def test_120b_is_refused_when_not_even_a_quarter_of_the_experts_fits(full120b, ram):
    p = plan(full120b, 4096, mac_budget(ram))
    assert not p.fits and p.policy.expert_slots == 32
    assert "even with only a quarter of its experts resident" in p.reason
    assert ". " not in p.reason and "\n" not in p.reason and p.reason.endswith(".")  # one sentence
    assert "across several Macs" in p.reason


def test_plan_before_download_equals_plan_after(full120b):
    before = plan_footprint(footprint_from_config(CFG_120B, "gpt-oss-120b"), 4096, mac_budget(32))
    after = plan(full120b, 4096, mac_budget(32))
    assert before.policy == after.policy and before.peak_bytes == after.peak_bytes


def _check_split(split, budgets):
    assert split.fits and split.reason == ""
    assert [s.rank for s in split.stages] == list(range(len(budgets)))
    assert split.stages[0].first == 0 and split.stages[-1].last == CFG_120B.num_hidden_layers
    for a, b in zip(split.stages, split.stages[1:]):
        assert a.last == b.first and a.last > a.first  # contiguous, each rank at least one layer
    for s, budget in zip(split.stages, budgets):
        assert s.head == (s.rank == 0) and s.plan.fits and s.plan.peak_bytes <= budget == s.plan.budget_bytes


def test_120b_on_two_32gb_macs_and_three_24gb_macs():
    two = [mac_budget(32)] * 2
    split = plan_split(CFG_120B, two, 4096, "gpt-oss-120b")
    _check_split(split, two)
    alone = plan_footprint(footprint_from_config(CFG_120B), 4096, mac_budget(32))
    # Two Macs keep far more experts per layer than one.
    assert min(s.plan.policy.expert_slots for s in split.stages) > 2 * alone.policy.expert_slots
    three = [mac_budget(24)] * 3
    _check_split(plan_split(CFG_120B, three, 4096, "gpt-oss-120b"), three)
    assert not plan_footprint(footprint_from_config(CFG_120B), 4096, mac_budget(24)).fits  # one alone can't


def test_uneven_macs_get_uneven_shares():
    budgets = [mac_budget(64), mac_budget(32)]
    split = plan_split(CFG_120B, budgets, 4096, "gpt-oss-120b")
    _check_split(split, budgets)
    big, small = split.stages
    assert big.last - big.first > small.last - small.first


def test_a_split_that_cannot_fit_is_refused_in_one_sentence():
    split = plan_split(CFG_120B, [mac_budget(8)] * 2, 4096, "gpt-oss-120b")
    assert not split.fits
    assert split.reason.startswith("gpt-oss-120b does not fit on these 2 Macs") and "GB short" in split.reason
    assert "\n" not in split.reason


def test_a_stage_holds_what_its_plan_says(tmp_path):
    """Load layers 1-2 of 4 without the head: MLX's active memory equals the stage's planned weights."""
    from engine.loader import load_model

    folder = write_tiny_checkpoint(tmp_path / "m", layers=4, experts=8, hidden=256, vocab=4096, heads=8,
                                   kv_heads=2, head_dim=64, seed=1)
    cfg = load_config(folder)
    for layers, head in (((1, 3), False), ((0, 2), True)):
        fp = footprint_from_config(cfg, "m", layers, head)
        p = plan_footprint(fp, 1024, 10 * GB)
        weights = sum(v for k, v in p.breakdown.items() if k not in ("kv_cache", "workspace"))
        mx.clear_cache()
        before = mx.get_active_memory()
        model = load_model(folder, "bfloat16", policy=p.policy, layers=layers, head=head)
        assert len(model.blocks) == 2 and (model.lm_head is not None) == head
        assert mx.get_active_memory() - before == pytest.approx(weights, rel=0.02)
        del model
