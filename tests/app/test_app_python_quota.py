"""Settings → "Python disk space per chat" reaches the Python tool's pool (Limits.disk_quota), and
the Settings dialog shows the Library section."""
from __future__ import annotations

from dataclasses import replace

from app.controller import ChatController
from app.settings import Settings
from app.tools_worker import ToolsWorker
from app.worker import EngineWorker
from engine.python_tool import Limits, PythonToolPool
from scripted import ScriptedSession, scripted_loader


def test_the_disk_quota_setting_reaches_the_pool_and_survives_a_restart(qtbot, store, tmp_path):
    pool = PythonToolPool(tmp_path / "python", Limits(timeout=30.0))
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())), tools=ToolsWorker(pool))
    assert pool.limits.disk_quota == 1 << 30 and pool.limits.timeout == 30.0   # the default: 1 GiB
    from app.ui.settings_dialog import SettingsDialog
    dialog = SettingsDialog(c.settings, library=(c.library, c.indexer))
    qtbot.addWidget(dialog)
    assert dialog.library_section is not None and dialog.disk_quota.value() == 1024
    dialog.disk_quota.setValue(64)
    c.save_settings(dialog.result_settings())
    assert pool.limits.disk_quota == 64 << 20 and pool.limits.timeout == 30.0   # only the quota changed
    assert Settings.load(store).python_disk_quota_mb == 64
    c.shutdown()
    later = PythonToolPool(tmp_path / "python2")
    c2 = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())), tools=ToolsWorker(later))
    assert later.limits.disk_quota == 64 << 20
    c2.save_settings(replace(c2.settings, python_disk_quota_mb=0))   # clamped, never zero
    assert later.limits.disk_quota == 16 << 20
    c2.shutdown()
