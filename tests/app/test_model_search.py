"""Where the app looks for a model: chosen folder, downloads, HF cache, bundled models, the demo."""

import models.registry as registry
from app import model_manager


def test_bundled_model_comes_before_the_demo(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled" / "gpt-oss-20b"
    bundled.mkdir(parents=True)
    monkeypatch.setattr(registry, "__file__", str(tmp_path / "registry.py"))
    order = model_manager.candidate_folders()
    assert bundled in order
    assert order.index(bundled) < order.index(registry.demo_folder())


def test_no_bundled_folder_means_no_extra_candidates(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "__file__", str(tmp_path / "registry.py"))
    assert registry.bundled_folders() == []
