"""The app always starts, whatever the remembered model folder holds; a folder it may not read is
called unreadable (not damaged); a download that died is never taken for a complete model."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from scripted import ScriptedSession, scripted_loader

from app.model_manager import check_folder, find_model
from engine.errors import ModelError
from models.tiny import write_tiny_checkpoint

INDEX = "model.safetensors.index.json"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "m", layers=2, experts=4, hidden=64,
                                   shard_bytes=64 << 10)
    (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def model(tmp_path, tiny_model):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model, dst)
    return dst


def shards(folder):
    return sorted(folder.glob("model-*.safetensors"))


def header_to_list(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    raw = json.dumps([json.loads(data[8:8 + n])]).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def one_sentence(problem):
    assert problem and "\n" not in problem and "Traceback" not in problem, problem
    return problem


# ----------------------------------------------------------------------------- the app starts

def launch(qtbot, store, monkeypatch, base, remembered):
    """Start the app as at launch with `remembered` as the saved model folder (no demo model)."""
    import app.launcher as launcher_mod
    from app.controller import ChatController
    from app.launcher import Launcher
    from app.worker import EngineWorker

    monkeypatch.setattr(launcher_mod, "demo_folder", lambda: base / "no-demo")
    monkeypatch.setattr("app.model_manager.demo_folder", lambda: base / "no-demo")
    monkeypatch.setattr("app.model_manager.default_download_folder", lambda: base / "no-download")
    monkeypatch.setattr(launcher_mod, "default_download_folder", lambda: base / "no-download")
    monkeypatch.setenv("HF_HUB_CACHE", str(base / "empty-cache"))
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())))
    c.settings.model_folder = str(remembered)
    lc = Launcher(c)
    qtbot.addWidget(lc.window)
    lc.start()
    return c, lc


def test_app_starts_when_the_remembered_folder_has_a_malformed_header(qtbot, store, app_home, monkeypatch,
                                                                       tmp_path, model):
    header_to_list(shards(model)[0])
    c, lc = launch(qtbot, store, monkeypatch, tmp_path, model)
    assert lc.window.stack.currentWidget() is lc.window.setup
    shown = one_sentence(lc.window.setup.message.text())
    assert shards(model)[0].name in shown and "download" in shown
    lc.shutdown()
    c.shutdown()


def test_app_starts_when_the_remembered_folder_is_unreadable(qtbot, store, app_home, monkeypatch, tmp_path):
    with unreadable_copy(tmp_path, None) as folder:
        c, lc = launch(qtbot, store, monkeypatch, folder.parent, folder)
        assert lc.window.stack.currentWidget() is lc.window.setup
        assert "can't be read" in one_sentence(lc.window.setup.message.text())
    lc.shutdown()
    c.shutdown()


def test_check_folder_never_raises_on_junk(tmp_path, model):
    """Whatever is there (a file, a FIFO, a link loop), check_folder answers in words."""
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    for junk in (tmp_path / "file", tmp_path / "fifo", tmp_path / "loop", tmp_path / "nowhere"):
        one_sentence(check_folder(junk))
    (model / "config.json").write_text("[1, 2]")
    one_sentence(check_folder(model))


# ----------------------------------------------------------------------------- unreadable

@contextlib.contextmanager
def unreadable_copy(tmp_path, what, source=None):
    """A copy of a tiny model whose `what` (None: the folder itself) has mode 000, checked as a user
    without rights to it. Tests run as root in CI, and root reads anything: then the check runs with
    the effective uid of `nobody` (file access follows the effective uid)."""
    base = Path(tempfile.mkdtemp())  # pytest's own temp folders are closed to other users
    try:
        folder = base / "model"
        src = source or write_tiny_checkpoint(base / "src", layers=2, experts=4, hidden=64)
        shutil.copytree(src, folder)
        (folder / "tokenizer.json").write_text("{}")
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        target = folder if what is None else folder / what
        os.chmod(target, 0)
        with as_unprivileged():
            yield folder
    finally:
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def as_unprivileged():
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.parametrize("what", [None, "config.json", "model-00000-of-00000.safetensors", INDEX])
def test_unreadable_is_called_unreadable_not_damaged(tmp_path, what):
    with unreadable_copy(tmp_path, what) as folder:
        problem = one_sentence(check_folder(folder))
        assert "can't be read" in problem and "permission" in problem
        assert "damaged" not in problem and "download" not in problem
        from engine import load_model
        with pytest.raises(ModelError) as info:  # the engine says the same
            load_model(folder)
        assert "can't be read" in str(info.value) and "damaged" not in str(info.value)


# ----------------------------------------------------------------------------- downloads that died

def test_a_shard_cut_short_is_not_a_model(model):
    path = shards(model)[-1]
    path.write_bytes(path.read_bytes()[:-1])
    assert "truncated" in one_sentence(check_folder(model))
    assert find_model(model) is None or find_model(model).folder != model


def test_a_shard_cut_inside_its_header_is_not_a_model(model):
    path = shards(model)[1]
    path.write_bytes(path.read_bytes()[:20])
    assert path.name in one_sentence(check_folder(model))


def test_an_empty_shard_from_a_full_disk_is_not_a_model(model):
    shards(model)[0].write_bytes(b"")
    assert shards(model)[0].name in one_sentence(check_folder(model))


def test_a_shard_of_zeros_from_a_full_disk_is_not_a_model(model):
    """A file preallocated to its full size but never written (what some full disks leave)."""
    path = shards(model)[0]
    path.write_bytes(b"\0" * path.stat().st_size)
    assert path.name in one_sentence(check_folder(model))


def test_a_missing_shard_is_not_a_model(model):
    gone = shards(model)[-1]
    gone.unlink()
    assert gone.name in one_sentence(check_folder(model))


@pytest.mark.parametrize("suffix", [".incomplete", ".part"])
def test_leftover_partial_files_mean_the_download_did_not_finish(model, suffix):
    (model / ("f" * 40 + suffix)).write_bytes(b"\0" * 10)
    assert "did not finish" in one_sentence(check_folder(model))


def test_a_missing_index_and_a_missing_shard_is_not_a_model(model):
    (model / INDEX).unlink()
    shards(model)[-1].unlink()
    one_sentence(check_folder(model))  # the remaining shards lack tensors the config implies


# ----------------------------------------------------------------------------- NaN mid-answer

class NanSession(ScriptedSession):
    """Writes a little, then the engine finds NaN logits (damaged weights) and stops."""

    def reply(self, *a, **k):
        from scripted import MessageStart, TextDelta
        yield MessageStart("assistant", "final")
        yield TextDelta("final", "Hel")
        raise ModelError("The model computed NaN (not a number) instead of a next word, so its weights "
                         "are damaged; download the model again.")


def test_an_engine_error_mid_answer_reaches_the_user_as_its_own_sentence(qtbot):
    from app.worker import EngineWorker

    worker = EngineWorker(loader=scripted_loader(NanSession()))
    worker.load("/nowhere", 4096)
    with qtbot.waitSignal(worker.failed, timeout=5000) as sig:
        worker.generate(1, [{"role": "user", "content": "hi"}], {})
    assert sig.args[1].startswith("The model computed NaN") and "ModelError" not in sig.args[1]
