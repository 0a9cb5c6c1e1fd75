"""Issue 29, "server settings in the app", in the window: Settings' Local API section (port, key,
reach, the address to copy; applied on Save, untouched by Cancel, a port in use said in the dialog)
and the request log (from Settings and from the status bar). The app's real server, a scripted model."""
from __future__ import annotations

import socket

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QApplication, QLineEdit
from scripted import ScriptedSession
from test_server_settings import free_port, get, listening

from app.api_access import NEEDS_KEY, lan_address
from app.settings import Settings
from app.ui.request_log_view import EMPTY, RequestLogView
from app.ui.settings_dialog import SettingsDialog
from app.ui.theme import current_colors


@pytest.fixture
def api(qtbot, controller):
    from app.api_server import LocalApiServer

    controller.settings.api_port = free_port()
    server = LocalApiServer(controller)
    yield server
    server.stop(wait=5)


def open_dialog(qtbot, controller, api):
    d = SettingsDialog(controller.settings, api=api)
    qtbot.addWidget(d)
    d.show()
    return d, d.api_section


def test_the_key_is_generated_masked_copied_and_cleared_and_the_network_needs_it(qtbot, controller, api):
    d, section = open_dialog(qtbot, controller, api)
    assert not section.key.text() and not section.network.isEnabled() and section.this_machine.isChecked()
    assert "only with an API key" in section.reach.text()
    section.generate_button.click()
    key = section.key.text()
    assert key.startswith("sk-local-") and len(key) > 40
    assert section.key.echoMode() == QLineEdit.EchoMode.Password and key not in section.key.displayText()
    section.copy_key_button.click()
    assert QGuiApplication.clipboard().text() == key
    assert section.network.isEnabled()
    section.network.click()
    assert section.network.isChecked() and "not encrypted" in section.reach.text()
    section.switch.setChecked(True)
    assert section.url.text() == f"http://{lan_address()}:{controller.settings.api_port}/v1"
    assert "127.0.0.1" in section.url_hint.text()       # this computer's own address works too
    section.clear_key_button.click()                    # no key: back to this computer only, and why
    assert not section.key.text() and section.this_machine.isChecked() and not section.network.isEnabled()
    assert "only with an API key" in section.reach.text()
    assert section.url.text() == f"http://127.0.0.1:{controller.settings.api_port}/v1"
    section.key.setText("has space")
    d.accept()                                          # a key that can't go in a header: said, not saved
    assert d.isVisible() and "without spaces" in section.note.text() and not api.running


def test_changes_apply_on_save_only_and_restart_only_when_needed(qtbot, controller, api, store):
    port = controller.settings.api_port
    d, section = open_dialog(qtbot, controller, api)
    section.switch.setChecked(True)
    section.generate_button.click()
    key = section.key.text()
    section.network.click()
    shown = section.url.text()
    d.reject()                                          # Cancel: nothing starts, nothing is saved
    assert not api.running and not listening("127.0.0.1", port)
    assert Settings.load(store).api_key == "" and controller.settings.api_key == ""

    d, section = open_dialog(qtbot, controller, api)
    section.switch.setChecked(True)
    section.key.setText(key)
    section.network.click()
    d.accept()
    assert not d.isVisible() and api.running and api.url == shown and api.on_network
    controller.save_settings(d.result_settings())      # what the window does after Save
    saved = Settings.load(store)
    assert (saved.api_server, saved.api_port, saved.api_key, saved.api_network) == (True, port, key, True)
    assert get(qtbot, f"http://127.0.0.1:{port}/v1/models", key).status_code == 200
    server = api._server

    d, section = open_dialog(qtbot, controller, api)    # reopened: the fields as saved, key masked
    assert section.key.text() == key and section.network.isChecked() and section.switch.isChecked()
    d.accept()                                          # nothing changed: the same server goes on
    assert api._server is server
    d, section = open_dialog(qtbot, controller, api)
    section.generate_button.click()                     # a new key: swapped in, the port stays open
    d.accept()
    assert api._server is server and controller.settings.api_key == section.key.text() != key
    assert get(qtbot, f"http://127.0.0.1:{port}/v1/models", key).status_code == 401
    d, section = open_dialog(qtbot, controller, api)
    section.this_machine.click()                        # a new reach: rebound, on this computer only
    d.accept()
    assert api._server is not server and api.host == "127.0.0.1" and not api.on_network


def test_a_port_in_use_keeps_the_dialog_open_with_one_sentence(qtbot, controller, api):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    try:
        d, section = open_dialog(qtbot, controller, api)
        section.switch.setChecked(True)
        d.accept()
        first = api.port
        d, section = open_dialog(qtbot, controller, api)
        section.port.setValue(busy)
        d.accept()
        assert d.isVisible(), "Save closed the dialog with a port the server can't have"
        text = section.note.text()
        assert text.startswith(f"Port {busy} is in use by another program") and text.endswith(
            f"the server keeps listening on port {first}.")
        assert section.note.isVisible() and section.note.objectName() == "Notice"
        assert api.running and api.port == first and controller.settings.api_port == first
        section.port.lineEdit().setText("80")           # below the range: said in one sentence
        d.accept()
        assert d.isVisible() and section.note.text() == "The port must be a number from 1024 to 65535."
        d.reject()
        assert api.port == first
    finally:
        taken.close()


def test_settings_refuses_the_network_without_a_key_even_from_a_hand_edited_file(qtbot, controller, api):
    controller.settings.api_network = True      # saved by hand with no key
    d, section = open_dialog(qtbot, controller, api)
    assert section.this_machine.isChecked() and not section.network.isEnabled()
    assert api.apply(True, controller.settings.api_port, "", True) == NEEDS_KEY


def _answer_two(qtbot, api):
    """One request answered, one refused."""
    assert get(qtbot, api.url + "/models").status_code == 200
    assert get(qtbot, api.url + "/models/nothing-here").status_code == 404
    qtbot.waitUntil(lambda: len(api.requests.records()) == 2, timeout=5000)


def test_the_request_log_shows_newest_first_failures_in_red_and_clears(qtbot, controller, api):
    api.apply(True, controller.settings.api_port, "", False)
    d, section = open_dialog(qtbot, controller, api)
    _answer_two(qtbot, api)
    qtbot.waitUntil(lambda: section.served.text().endswith("· 1 error"), timeout=5000)   # a queued signal
    assert section.served.objectName() == "Notice"
    shown = []

    def look():
        view = QApplication.activeModalWidget()
        shown.append(view)
        view.accept()
    QTimer.singleShot(0, look)
    section.log_button.click()                          # opens from Settings
    assert isinstance(shown[0], RequestLogView)

    view = RequestLogView(api.requests)
    qtbot.addWidget(view)
    view.show()
    t = view.table
    assert t.rowCount() == 2 and view.summary.text() == "2 requests · 1 error"
    assert [t.item(r, 2).text() for r in range(2)] == ["GET /v1/models/nothing-here", "GET /v1/models"]
    assert t.item(0, 4).text() == "404" and t.item(0, 4).toolTip() == "404 Not Found"
    assert t.item(0, 4).foreground().color() == QColor(current_colors().danger)
    assert t.item(1, 4).foreground().color() != QColor(current_colors().danger)
    assert t.item(0, 1).text() == "127.0.0.1" and t.item(0, 6).text().endswith("ms")
    view.failures_only.setChecked(True)
    assert t.rowCount() == 1
    view.failures_only.setChecked(False)
    assert get(qtbot, api.url + "/models").status_code == 200    # a new one shows up while it is open
    qtbot.waitUntil(lambda: t.rowCount() == 3, timeout=5000)
    view.clear_button.click()
    assert t.rowCount() == 0 and view.summary.text() == EMPTY and api.requests.failures == 0


def test_the_status_bar_counts_failures_and_opens_the_log(qtbot, store, clock):
    from app.api_server import LocalApiServer
    from test_app_window import make_window

    c, w = make_window(qtbot, store, ScriptedSession(clock=clock), clock)
    api = LocalApiServer(c)
    w.set_api_server(api)
    try:
        assert api.apply(True, free_port(), "", False) == ""
        _answer_two(qtbot, api)
        qtbot.waitUntil(lambda: w.status_api.text().endswith("· 1 error"), timeout=5000)
        assert w.status_api.text().startswith(f"API on 127.0.0.1:{api.port} · ")
        qtbot.mouseClick(w.status_api, Qt.MouseButton.LeftButton)
        assert w.request_log_view.isVisible() and w.request_log_view.table.rowCount() == 2
    finally:
        api.stop(wait=5)
        c.shutdown()


def test_settings_at_its_smallest_needs_no_sideways_scrolling(qtbot, controller, api):
    d, section = open_dialog(qtbot, controller, api)
    section.generate_button.click()
    section.switch.setChecked(True)
    d.resize(d.minimumWidth(), d.minimumHeight())
    qtbot.waitUntil(lambda: d.scroll.verticalScrollBar().maximum() > 0, timeout=2000)
    assert d.scroll.horizontalScrollBar().maximum() == 0
    assert d.content.minimumSizeHint().width() <= d.scroll.viewport().width()


def test_closed_dialogs_leave_no_connection_to_the_request_log(qtbot, store, clock):
    from PySide6.QtCore import SIGNAL, QEvent

    from app.api_server import LocalApiServer
    from test_app_window import make_window

    c, w = make_window(qtbot, store, ScriptedSession(clock=clock), clock)
    api = LocalApiServer(c)
    w.set_api_server(api)
    before = api.requests.receivers(SIGNAL("changed()"))
    for _ in range(3):
        QTimer.singleShot(0, lambda: QApplication.activeModalWidget().reject())
        w.open_settings()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert api.requests.receivers(SIGNAL("changed()")) == before
    api.requests.clear()           # no slot of a deleted section runs ("Internal C++ object already deleted")
    c.shutdown()


def test_a_long_masked_key_shows_from_its_start_not_a_half_cut_dot(qtbot, controller, api):
    """The key field scrolled to its end: at the minimum size the first visible dot was cut in half.
    Generated or saved, the field shows the key from its first character."""
    controller.settings.api_key = "sk-local-" + "x" * 48
    d, section = open_dialog(qtbot, controller, api)
    assert section.key.cursorPosition() == 0
    section.generate_button.click()
    assert section.key.text() != controller.settings.api_key and section.key.cursorPosition() == 0
    d.close()
