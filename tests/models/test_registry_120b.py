"""models/registry.py knows gpt-oss-120b: its files, its shape (for planning before download),
a folder holding it is recognised, and the download offer follows the memory plan."""
from __future__ import annotations

import pytest

from bench.fullsize_checkpoint import config_for, write_checkpoint
from engine.config import config_from_dict
from engine.memory import GB, mac_budget, plan
from models.registry import GPT_OSS_20B, GPT_OSS_120B, KNOWN, label_for_folder, offer, official_config


def test_120b_files_and_size():
    assert GPT_OSS_120B in KNOWN and GPT_OSS_120B.repo_id == "openai/gpt-oss-120b"
    shards = [f for f in GPT_OSS_120B.files if f.name.endswith(".safetensors")]
    assert [f.name for f in shards][0] == "model-00000-of-00014.safetensors" and len(shards) == 15
    assert 64 * GB < GPT_OSS_120B.approx_bytes < 67 * GB  # 65.2 GB on the Hub


@pytest.mark.parametrize("model,size", [(GPT_OSS_20B, "20b"), (GPT_OSS_120B, "120b")])
def test_official_config_is_the_checkpoints(model, size):
    assert official_config(model) == config_from_dict(config_for(size))


def test_a_120b_folder_is_recognised(tmp_path):
    folder = write_checkpoint(tmp_path / "some-folder", "sparse", "120b")
    assert label_for_folder(folder) == "gpt-oss-120b"


@pytest.mark.parametrize("ram", [16, 24, 32, 64, 96])
def test_offer_follows_the_plan_of_the_downloaded_folder(tmp_path_factory, ram):
    folder = write_checkpoint(tmp_path_factory.mktemp("o") / "gpt-oss-120b", "sparse", "120b")
    after = plan(folder, 8192, mac_budget(ram))
    o = offer(GPT_OSS_120B, mac_budget(ram), 8192)
    assert o.fits == after.fits and o.button == "Download gpt-oss-120b (65.3 GB)"
    if not o.fits:
        assert o.plan == after.reason.replace(folder.name, "gpt-oss-120b")
    elif after.policy.expert_slots:
        assert f"{after.policy.expert_slots} of its 128 experts" in o.plan and f"{after.context_cap:,} tokens" in o.plan
    else:
        assert "every expert" in o.plan
