"""Model download against a fake Hub on loopback: resume after a cut, a cancel and a restart;
checksum verification; the disk-space check; a dead server gives one sentence."""
import json
import os
import tempfile
import threading
from pathlib import Path

import pytest
from fake_hub import FakeHub

from app.download import DownloadCancelled, DownloadError, download_model
from app.model_manager import check_folder
from models.registry import KnownModel, ModelFile
from models.tiny import write_tiny_checkpoint
from models.tokenizer_json import small_harmony_tokenizer_dict

def tiny_model_files() -> dict[str, bytes]:
    """A real (tiny, random) gpt-oss folder with one ~3 MB safetensors file: check_folder accepts it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tiny_checkpoint(Path(tmp), layers=2, experts=4, hidden=128, vocab=6144, shard_bytes=1 << 30)
        return {"config.json": (folder / "config.json").read_bytes(),
                "model.safetensors": next(folder.glob("model-*.safetensors")).read_bytes(),
                "tokenizer.json": json.dumps(small_harmony_tokenizer_dict()).encode()}  # the app's check reads it


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


WRITE_LIMITED = """
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_app_download import MODEL
from app.download import DownloadError, download_model
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
try:
    download_model(MODEL, Path(sys.argv[1]), endpoint=sys.argv[2])
except DownloadError as e:
    print(e)
"""


def test_a_file_too_large_for_the_disk_is_not_called_a_connection_problem(tmp_path):
    """Issue 19.8: a write error (here a real EFBIG from a file-size limit) said "check the connection"."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    with FakeHub(FILES) as hub:
        out = subprocess.run([sys.executable, "-c", WRITE_LIMITED, str(tmp_path / "m"), hub.endpoint,
                              str(Path(__file__).parent)], capture_output=True, text=True, timeout=120,
                             cwd=root, env=dict(os.environ, PYTHONPATH=str(root)))
        gets = [r for r in hub.requests if r[0] == "GET" and r[1] == "model.safetensors"]
    message = out.stdout.strip()
    assert "larger than the disk" in message and "model.safetensors" in message, (message, out.stderr[-2000:])
    assert "connection" not in message and "\n" not in message
    assert len(gets) == 1  # not retried as if the network had dropped


def test_a_full_disk_is_not_called_a_connection_problem(tmp_path):
    """Writes that fail with ENOSPC (the .part file is /dev/full, which always answers "disk full")."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "model.safetensors.part").symlink_to("/dev/full")
    with FakeHub(FILES) as hub:
        with pytest.raises(DownloadError) as err:
            download_model(MODEL, dest, endpoint=hub.endpoint)
    assert "is full" in str(err.value) and "connection" not in str(err.value)
    assert (dest / "config.json").read_bytes() == FILES["config.json"]  # what arrived before is kept
