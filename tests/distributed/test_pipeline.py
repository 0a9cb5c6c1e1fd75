"""Pipeline parallelism (engine/distributed.py) across 2 and 3 local processes started by mlx.launch
with the ring backend, against the same scenario run in one process (float32, tiny checkpoint):
prefill, cached decode, the session's cache rewind (snapshot/restore), hidden(), greedy decoding.
And a rank that dies or stops answering mid-generation: rank 0 says so in one sentence, no hang."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from models.tiny import write_tiny_checkpoint
from tests.distributed.pipeline_script import scenario

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("pipeline_script.py")
LAUNCH = Path(sys.executable).with_name("mlx.launch")
TOLERANCE = 1e-5

pytestmark = pytest.mark.skipif(not LAUNCH.exists(), reason="mlx.launch is not installed next to python")


def _free_ports(n: int) -> int:
    """A base port with n free ports after it (the ring listens on base + rank)."""
    for _ in range(50):
        base = random.randint(20000, 60000)
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def launch(n: int, folder, out, *extra, timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [str(LAUNCH), "-n", str(n), "--backend", "ring", "-p", str(_free_ports(n)),
           "--env", f"PYTHONPATH={ROOT}", "--python", sys.executable, str(SCRIPT), str(folder), str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # 5 layers so 2 and 3 ranks get uneven shares; window 16 < the 21-token prompt.
    return write_tiny_checkpoint(tmp_path_factory.mktemp("pp") / "m", layers=5, experts=8, hidden=96, seed=3)


@pytest.fixture(scope="module")
def reference(tiny):
    from engine.loader import load_model

    with mx.stream(mx.cpu):
        model = load_model(tiny, "float32")
        return scenario(model, model.config.vocab_size)


@pytest.mark.parametrize("n,cuts", [(2, "2"), (3, "1,3"), (2, "")], ids=["2-ranks", "3-ranks", "2-ranks-planned"])
def test_pipeline_logits_equal_one_process(tiny, reference, tmp_path, n, cuts):
    out = tmp_path / "out.npz"
    proc = launch(n, tiny, out, *(["--cuts", cuts] if cuts else []))
    assert out.exists(), proc.stdout + proc.stderr[-3000:]
    got = np.load(out)
    assert set(got.files) == set(reference)
    for key, want in reference.items():
        assert got[key].shape == want.shape, key
        assert np.abs(got[key].astype(np.float64) - want).max() <= TOLERANCE, key
    assert got["greedy"].tolist() == reference["greedy"].tolist()
    split = next(line for line in proc.stdout.splitlines() if line.startswith("split:"))
    assert split.count("-") == n  # one contiguous range per rank


def test_a_rank_dying_mid_generation_is_reported_by_rank_0(tiny, tmp_path):
    proc = launch(3, tiny, tmp_path / "x.npz", "--cuts", "1,3", "--die-at", "3", timeout=120)
    assert not (tmp_path / "x.npz").exists()
    assert "rank 0: Lost the connection to another Mac of the pipeline" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr  # the surviving ranks stop quietly too


def test_a_rank_that_stops_answering_times_out_on_rank_0(tiny, tmp_path):
    proc = launch(2, tiny, tmp_path / "x.npz", "--cuts", "2", "--hang-at", "3", "--timeout", "3", timeout=120)
    assert not (tmp_path / "x.npz").exists()
    assert "No answer from the other Macs of the pipeline within 3 s" in proc.stderr, proc.stderr[-3000:]
    assert "exited with code 75" in proc.stderr + proc.stdout


def test_one_process_pipeline_is_the_model(tiny, reference):
    """Without mlx.launch the group has one rank: the same code path gives the same logits."""
    from engine.distributed import open_pipeline

    with mx.stream(mx.cpu):
        model, split = open_pipeline(tiny, 1024, "float32")
        assert len(split.stages) == 1 and split.stages[0].head
        got = scenario(model, model.config.vocab_size)
    for key, want in reference.items():
        assert np.abs(got[key].astype(np.float64) - want).max() <= TOLERANCE, key


def test_a_split_that_does_not_fit_is_refused_before_loading(tiny):
    from engine.distributed import open_pipeline
    from engine.errors import ModelError

    with pytest.raises(ModelError, match="does not fit on these 1 Macs|needs at least"):
        open_pipeline(tiny, 1024, "float32", budget_bytes=10_000)
    with pytest.raises(ModelError, match="increasing layer numbers"):
        open_pipeline(tiny, 1024, "float32", cuts=[2])
