"""Model download against a fake Hub on loopback: resume after a cut, a cancel and a restart;
checksum verification; the disk-space check; a dead server gives one sentence."""
import tempfile
import threading
from pathlib import Path

import pytest
from fake_hub import FakeHub

from app.download import DownloadCancelled, DownloadError, download_model
from app.model_manager import check_folder
from models.registry import KnownModel, ModelFile
from models.tiny import write_tiny_checkpoint

def tiny_model_files() -> dict[str, bytes]:
    """A real (tiny, random) gpt-oss folder with one ~3 MB safetensors file: check_folder accepts it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tiny_checkpoint(Path(tmp), layers=2, experts=4, hidden=128, vocab=6144, shard_bytes=1 << 30)
        return {"config.json": (folder / "config.json").read_bytes(),
                "model.safetensors": next(folder.glob("model-*.safetensors")).read_bytes(),
                "tokenizer.json": b'{"fake": true}'}


FILES = tiny_model_files()
MODEL = KnownModel("test", "test model", "openai/gpt-oss-20b",
                   files=tuple(ModelFile(n, len(b)) for n, b in FILES.items()) + (ModelFile("extra.txt", 5, required=False),))


def test_download_verifies_and_makes_a_usable_folder(tmp_path):
    with FakeHub(FILES) as hub:
        seen = []
        out = download_model(MODEL, tmp_path / "m", progress=seen.append, endpoint=hub.endpoint)
    for name, body in FILES.items():
        assert (out / name).read_bytes() == body
    assert check_folder(out) is None
    assert seen[-1].done == seen[-1].total == sum(map(len, FILES.values()))
    assert not list(out.glob("*.part"))


def test_a_cut_connection_is_resumed_with_a_range_request(tmp_path):
    with FakeHub(FILES) as hub:
        hub.cut_after["model.safetensors"] = 1_000_000
        out = download_model(MODEL, tmp_path / "m", endpoint=hub.endpoint)
        ranges = [r for m, n, r in hub.requests if m == "GET" and n == "model.safetensors"]
    assert ranges[0] is None and ranges[1] == "bytes=1000000-"
    assert (out / "model.safetensors").read_bytes() == FILES["model.safetensors"]


def test_cancel_then_restart_resumes_where_it_stopped(tmp_path):
    dest = tmp_path / "m"
    cancel = threading.Event()

    def on_progress(p):
        if p.done > 1_200_000:
            cancel.set()
    with FakeHub(FILES) as hub:
        hub.delay = 0.01
        with pytest.raises(DownloadCancelled):
            download_model(MODEL, dest, progress=on_progress, cancel=cancel, endpoint=hub.endpoint)
        part = dest / "model.safetensors.part"
        kept = part.stat().st_size
        assert 0 < kept < len(FILES["model.safetensors"])
        assert "did not finish" in check_folder(dest)
        hub.delay = 0.0
        n_before = len(hub.requests)
        download_model(MODEL, dest, endpoint=hub.endpoint)   # a fresh call, as after an app restart
        gets = [r for r in hub.requests[n_before:] if r[0] == "GET" and r[1] == "model.safetensors"]
        # One request, for the missing bytes only.
        assert gets == [("GET", "model.safetensors", f"bytes={kept}-")]
    assert (dest / "model.safetensors").read_bytes() == FILES["model.safetensors"]


def test_a_corrupt_file_fails_verification_and_is_removed(tmp_path):
    with FakeHub(FILES) as hub:
        hub.etags["model.safetensors"] = "0" * 64
        with pytest.raises(DownloadError, match="checksum mismatch"):
            download_model(MODEL, tmp_path / "m", endpoint=hub.endpoint)
    assert not (tmp_path / "m" / "model.safetensors").exists()
    assert not (tmp_path / "m" / "model.safetensors.part").exists()


def test_not_enough_disk_space_is_refused_before_starting(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with FakeHub(FILES) as hub:
        with pytest.raises(DownloadError, match="free some space"):
            download_model(MODEL, tmp_path / "m", endpoint=hub.endpoint)
        assert not [r for r in hub.requests if r[0] == "GET"]


def test_no_server_gives_one_sentence(tmp_path):
    with FakeHub(FILES) as hub:
        endpoint = hub.endpoint
    with pytest.raises(DownloadError) as err:
        download_model(MODEL, tmp_path / "m", endpoint=endpoint)
    assert "press Download again" in str(err.value) and "\n" not in str(err.value)
