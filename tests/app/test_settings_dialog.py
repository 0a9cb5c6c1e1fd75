"""Issue 29 items 3, 7 and 8: Settings fits a 13" screen and scrolls, the Local API switch honours
Cancel, and a closed Settings dialog leaves no connection behind."""
from PySide6.QtCore import QEvent, QRect, QTimer, SIGNAL
from PySide6.QtWidgets import QApplication, QWidget
from scripted import ScriptedSession

from app.ui.settings_dialog import SettingsDialog

MACBOOK_AIR_FREE = QRect(0, 25, 1440, 900 - 25 - 75)   # 1440x900 points minus the menu bar and the Dock


class FakeApi(QWidget):
    """The LocalApiServer's face to the dialog (running, url, served, note, requests, apply and its
    signals), without a socket: the switch's wiring is what is tested here."""
    from PySide6.QtCore import Signal
    changed = Signal()
    served_changed = Signal(int)
    answering_changed = Signal(bool)

    def __init__(self):
        super().__init__()
        from app.request_log import RequestLog
        self.running, self.served, self.note, self.calls, self.on_network = False, 0, "", [], False
        self.requests = RequestLog()

    @property
    def url(self):
        return "http://127.0.0.1:8000/v1" if self.running else ""

    def apply(self, on, port, key, network):
        self.calls.append(on)
        self.running = on
        self.changed.emit()
        return ""

    def stop(self, wait=0.0):
        self.running = False


def visible_children_overlap(content: QWidget) -> list[tuple[str, str]]:
    """Pairs of the content's visible direct widgets whose rectangles intersect."""
    lay = content.layout()
    items = [lay.itemAt(i) for i in range(lay.count())]
    boxes = [(it.widget() or it.layout()) for it in items]
    rects = [(type(b).__name__, b.geometry()) for b in boxes
             if b is not None and (not isinstance(b, QWidget) or b.isVisible()) and b.geometry().height() > 0]
    return [(a[0], b[0]) for i, a in enumerate(rects) for b in rects[i + 1:] if a[1].intersects(b[1])]


def test_settings_fits_a_13_inch_screen_and_scrolls_without_overlap(qtbot, controller):
    d = SettingsDialog(controller.settings, api=FakeApi())
    qtbot.addWidget(d)
    d.fit_to_screen(MACBOOK_AIR_FREE)
    d.show()
    qtbot.waitExposed(d)
    assert d.height() <= MACBOOK_AIR_FREE.height() - 40          # the title bar fits too
    buttons = d.buttons.geometry()
    assert d.rect().contains(buttons) and buttons.isValid()      # Save and Cancel on screen
    assert d.scroll.widget() is d.content
    # Shrunk to its minimum: everything scrolls, nothing is drawn over anything else.
    d.resize(d.minimumWidth(), d.minimumHeight())
    qtbot.waitUntil(lambda: d.scroll.verticalScrollBar().maximum() > 0, timeout=2000)
    assert visible_children_overlap(d.content) == []
    assert d.rect().contains(d.buttons.geometry())


def test_settings_on_the_screen_it_opens_on_is_never_taller_than_it(qtbot, controller):
    d = SettingsDialog(controller.settings, api=FakeApi())
    qtbot.addWidget(d)
    d.show()
    assert d.frameGeometry().height() <= d.screen().availableGeometry().height()


def test_local_api_switch_honours_cancel_and_save(qtbot, controller):
    api = FakeApi()
    d = SettingsDialog(controller.settings, api=api)
    qtbot.addWidget(d)
    d.api_section.switch.setChecked(True)       # the address it will have shows at once, to copy
    assert d.api_section.url.text() == f"http://127.0.0.1:{controller.settings.api_port}/v1"
    assert not api.running and api.calls == []
    d.reject()
    assert not api.running and api.calls == []
    d2 = SettingsDialog(controller.settings, api=api)
    qtbot.addWidget(d2)
    d2.api_section.switch.setChecked(True)
    d2.accept()
    assert api.running and api.calls == [True]


def test_a_closed_settings_dialog_leaves_no_connection_behind(qtbot, store, clock, monkeypatch):
    from test_app_window import make_window
    c, w = make_window(qtbot, store, ScriptedSession(clock=clock), clock)
    api = FakeApi()
    w.set_api_server(api)
    before = (api.receivers(SIGNAL("changed()")), api.receivers(SIGNAL("served_changed(int)")))
    for _ in range(3):
        QTimer.singleShot(0, lambda: QApplication.activeModalWidget().reject())
        w.open_settings()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert w.findChildren(SettingsDialog) == []
    assert (api.receivers(SIGNAL("changed()")), api.receivers(SIGNAL("served_changed(int)"))) == before
    api.served_changed.emit(5)        # a request served after the dialogs closed: no slot of theirs runs
    api.changed.emit()
    c.shutdown()
