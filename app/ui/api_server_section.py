"""Settings' "Local API" section: the switch, the port, an API key, who can reach it (this computer, or
other devices on the network: only with a key), the address clients use, the requests served and
their log.

Everything here is part of Save/Cancel: apply() hands the choices to the server on Save (it says in
one sentence why not, and the dialog stays open); Cancel changes nothing. The address shown is the
one clients will use once saved, so it can be copied first.
`api` is app.api_server.LocalApiServer (running, url, on_network, served, note, requests, apply, and
its changed / served_changed signals).
"""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from app.api_access import EVERYWHERE, LOOPBACK, NEEDS_KEY, base_url, key_problem, new_api_key
from app.ui.message_view import THIS_MACHINE

PORT_RANGE = (1024, 65535)   # below 1024 needs an administrator
BAD_PORT = f"The port must be a number from {PORT_RANGE[0]} to {PORT_RANGE[1]}."


def served_text(n: int) -> str:
    return f"{n} request served" if n == 1 else f"{n} requests served"


def errors_text(n: int) -> str:
    """Requests answered with a 4xx or 5xx status (beside the ones served: they never reached the model)."""
    return "1 error" if n == 1 else f"{n} errors"


def _row(*widgets, stretch_first: bool = True) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        lay.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
    return row


class ApiServerSection(QWidget):
    def __init__(self, api, settings, parent=None):
        super().__init__(parent)
        self.api = api
        self._saved = settings
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Local API", objectName="Title"))
        self.switch = QCheckBox("Local API server")
        self.switch.setChecked(api.running)
        lay.addWidget(self.switch)
        self.about = QLabel("Editors, scripts and agents can use the loaded model through the OpenAI API. They "
                            "share it with this window: their requests and your chats take turns.", objectName="Caption")
        self.about.setWordWrap(True)
        lay.addWidget(self.about)

        form = QFormLayout()
        self.port = QSpinBox(minimum=PORT_RANGE[0], maximum=PORT_RANGE[1])
        self.port.setValue(int(settings.api_port))
        self.port.setMaximumWidth(110)
        self.port.setToolTip("When the server starts with the app and this port is taken, it takes the next free one.")
        form.addRow("Port", _row(self.port, QWidget()))
        self.key = QLineEdit(settings.api_key)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)   # shown masked: it is a password for the model
        self.key.setPlaceholderText("None")
        self.key.setCursorPosition(0)   # show the masked key from its start, not a half-cut dot at the left
        self.generate_button = QPushButton("Generate")
        self.copy_key_button = QPushButton("Copy")
        self.clear_key_button = QPushButton("Clear")
        self.generate_button.clicked.connect(self._generate_key)
        self.copy_key_button.clicked.connect(self.copy_key)
        self.clear_key_button.clicked.connect(self.key.clear)
        form.addRow("API key", _row(self.key, self.generate_button, self.copy_key_button, self.clear_key_button))
        self.this_machine = QRadioButton(f"{THIS_MACHINE[0].upper()}{THIS_MACHINE[1:]} only")
        self.network = QRadioButton("Other devices on the network")
        self.reach_group = QButtonGroup(self)
        for b in (self.this_machine, self.network):
            self.reach_group.addButton(b)
        (self.network if settings.api_network and settings.api_key else self.this_machine).setChecked(True)
        reach = QWidget()
        reach_lay = QVBoxLayout(reach)
        reach_lay.setContentsMargins(0, 0, 0, 0)
        reach_lay.setSpacing(2)
        reach_lay.addWidget(self.this_machine)
        reach_lay.addWidget(self.network)
        form.addRow("Reachable from", reach)
        lay.addLayout(form)
        self.reach = QLabel(objectName="Caption")    # what the choice means, or why the network is greyed
        self.reach.setWordWrap(True)
        lay.addWidget(self.reach)

        self.url = QLineEdit(readOnly=True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_url)
        self.url_row = _row(self.url, self.copy_button)
        lay.addWidget(self.url_row)
        self.url_hint = QLabel(objectName="Caption")  # base_url and api_key, for the client's settings
        self.url_hint.setWordWrap(True)
        lay.addWidget(self.url_hint)
        self.served = QLabel(objectName="Caption")
        self.log_button = QPushButton("Request log…")
        self.log_button.clicked.connect(self.show_log)
        self.served_row = _row(self.served, self.log_button)
        lay.addWidget(self.served_row)
        self.note = QLabel(objectName="Notice")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)

        for signal in (self.switch.toggled, self.port.valueChanged, self.key.textChanged, self.network.toggled):
            signal.connect(self.update_view)
        # Bound methods, not lambdas: Qt drops them when this widget is deleted with its dialog.
        api.changed.connect(self.update_view)
        api.served_changed.connect(self.update_view)
        api.requests.changed.connect(self.update_view)
        self.update_view()

    # -- what the fields say ----------------------------------------------------------------
    def values(self) -> dict:
        """The chosen values, as Settings fields."""
        return {"api_server": self.switch.isChecked(), "api_port": self.port.value(),
                "api_key": self.key.text().strip(), "api_network": self.network.isChecked()}

    def pending_url(self) -> str:
        """The base URL clients will use once saved (the server's own while nothing that moves it changed)."""
        v = self.values()
        if self.api.running and v["api_port"] == self._saved.api_port and v["api_network"] == self.api.on_network:
            return self.api.url
        return base_url(EVERYWHERE if v["api_network"] else LOOPBACK, v["api_port"])

    def problem(self) -> str:
        """One sentence when the fields can't be saved as they are ("" when they can)."""
        if not self.port.hasAcceptableInput():
            return BAD_PORT
        v = self.values()
        return key_problem(v["api_key"]) or (NEEDS_KEY if v["api_network"] and not v["api_key"] else "")

    def update_view(self, *_) -> None:
        has_key = bool(self.key.text().strip())
        if not has_key and self.network.isChecked():    # no key, no network: back to this computer only
            self.this_machine.setChecked(True)
        self.network.setEnabled(has_key)
        self.copy_key_button.setEnabled(has_key)
        self.clear_key_button.setEnabled(bool(self.key.text()))
        here = f"Only programs on {THIS_MACHINE} can reach it: it listens on 127.0.0.1, not on the network."
        if not has_key:
            self.reach.setText(here + " Other devices may reach it only with an API key, so that nobody else on "
                                      "the network can use the model: generate one first.")
        elif self.network.isChecked():
            self.reach.setText("Devices on your network reach it at the address below, with the key. The "
                               "connection is not encrypted (http): use it on networks you trust.")
        else:
            self.reach.setText(here)
        on = self.switch.isChecked()
        url = self.pending_url()
        self.url.setText(url if on else "")
        self.url.setToolTip("The base URL for OpenAI clients (base_url).")
        self.url_row.setVisible(on)
        local = f" On {THIS_MACHINE} itself, {base_url(LOOPBACK, self.port.value())} works too." \
            if self.network.isChecked() else ""
        self.url_hint.setText(("Clients use this as base_url and the key as api_key." if has_key else
                               "Clients use this as base_url; any api_key is accepted.") + local)
        self.url_hint.setVisible(on)
        requests = self.api.requests
        failed = requests.failures
        served = served_text(self.api.served) if self.api.running else "Switched off"
        self.served.setText(served + (f" · {errors_text(failed)}" if failed else ""))
        self.served.setObjectName("Notice" if failed else "Caption")
        self._repolish(self.served)
        self._show_note(self.api.note, problem=not self.api.running)

    def _show_note(self, text: str, problem: bool) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
        # A port taken at launch is information; a server that could not start is a problem.
        self.note.setObjectName("Notice" if text and problem else "Caption")
        self._repolish(self.note)

    @staticmethod
    def _repolish(label: QLabel) -> None:
        label.style().unpolish(label)
        label.style().polish(label)

    # -- actions ----------------------------------------------------------------------------
    def apply(self) -> bool:
        """Save: hand the choices to the server. False (the problem shown, nothing changed) when it can't."""
        v = self.values()
        problem = self.problem() or self.api.apply(v["api_server"], v["api_port"], v["api_key"], v["api_network"])
        if problem:
            self._show_note(problem, problem=True)
            return False
        return True

    def copy_url(self) -> None:
        self._copy(self.url.text(), self.copy_button)

    def _generate_key(self) -> None:
        self.key.setText(new_api_key())
        self.key.setCursorPosition(0)

    def copy_key(self) -> None:
        self._copy(self.key.text().strip(), self.copy_key_button)

    @staticmethod
    def _copy(text: str, button: QPushButton) -> None:
        QGuiApplication.clipboard().setText(text)
        button.setText("Copied")
        QTimer.singleShot(1500, button, lambda: button.setText("Copy"))

    def show_log(self) -> None:
        from app.ui.request_log_view import RequestLogView

        view = RequestLogView(self.api.requests, self.window())
        view.exec()
        view.deleteLater()
