"""The browser tool in the app (issue 26): a scripted model (the real harmony renderer and stream
parser, tests/browser/scripted.py) searches, opens and cites a real library folder of real files,
driven through the real controller and window. The calls run on the tools thread without consent,
each shows as a collapsed block, the citation opens the document, and indexing reports progress
and can be cancelled while the window keeps running.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer, QUrl
from PySide6.QtWidgets import QLabel

from app.browser_worker import LibraryIndexer
from app.citation_links import SCHEME, parse_citation_url
from app.controller import ChatController
from app.library_sources import LibrarySources
from app.worker import EngineWorker

_spec = importlib.util.spec_from_file_location("browser_scripted", Path(__file__).parents[1] / "browser" / "scripted_browsing.py")
browser_scripted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_scripted)

SEARCH = ('<|channel|>analysis<|message|>I should search the notes.<|end|><|start|>assistant<|channel|>analysis '
          'to=browser.search code<|message|>{"query": "spring tide Brest"}<|call|>')
OPEN = '<|channel|>analysis to=browser.open code<|message|>{"id": 0, "cursor": 0}<|call|>'
FINAL = '<|channel|>final<|message|>The spring tide at Brest peaks at 7.9 metres 【1†L2】.<|return|>'
PLAIN = '<|channel|>final<|message|>I only know what I was trained on.<|return|>'


@pytest.fixture
def notes(tmp_path) -> Path:
    """A real folder of real files: Markdown, text, HTML and Word."""
    import docx
    root = tmp_path / "my notes"
    root.mkdir()
    (root / "tides.md").write_text("# Tide tables\n\nThe spring tide at Brest peaks at 7.9 metres.\n"
                                   + "\n".join(f"Filler line {i} about the harbour." for i in range(60)))
    (root / "groceries.txt").write_text("Groceries\n\nBuy saffron, quince and sorrel for Sunday.\n")
    (root / "manual.html").write_text("<html><head><title>Espresso manual</title></head><body><h1>Espresso</h1>"
                                      "<p>Descale the boiler every <b>three months</b>.</p></body></html>")
    d = docx.Document()
    d.add_heading("Grinder notes", 1)
    d.add_paragraph("Burr grinders need setting 14 for espresso.")
    d.save(str(root / "grinder.docx"))
    return root


@pytest.fixture
def library(store, tmp_path, notes):
    lib = LibrarySources(store, tmp_path / "data" / "browser")
    assert lib.add(str(notes)) == ""
    assert lib.library().update().added == 4   # indexed for real, as the Library section does
    return lib


def make(qtbot, store, session, library):
    c = ChatController(store, EngineWorker(loader=lambda folder, context_length: session), flush_ms=10,
                       library=library)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    return c


def window(qtbot, c):
    from app.ui.main_window import MainWindow
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show_chat()
    w.resize(1000, 700)
    w.show()
    return w


def test_search_open_and_a_cited_answer_through_the_app(qtbot, store, enc, library, notes, monkeypatch):
    session = browser_scripted.ScriptedSession(enc, [SEARCH, OPEN, FINAL])
    c = make(qtbot, store, session, library)
    w = window(qtbot, c)
    threads = []
    real_run = LibrarySources.run
    monkeypatch.setattr(LibrarySources, "run", lambda self, *a: threads.append(threading.current_thread()) or real_run(self, *a))
    assert w.sources_switch.isVisibleTo(w) and w.sources_switch.isChecked()   # on once the library has a source
    model_threads = []
    real_reply = session.reply
    session.reply = lambda *a, **k: model_threads.append(threading.get_ident()) or real_reply(*a, **k)
    assert c.send("How high is the spring tide at Brest?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    answer = c.model.last()
    assert answer.state == "done" and "7.9 metres 【1†L2】" in answer.text
    # the browser was offered with the library as its source, and each call ran without asking
    assert "sources=library" in enc.decode(session.prompts[0])
    calls = [s for s in answer.steps if s.type == "call"]
    assert [s.recipient for s in calls] == ["browser.search", "browser.open"]
    assert all(s.status == "done" for s in calls)
    assert calls[0].result.startswith("[0] spring tide Brest") and "【0†Tide tables†library】" in calls[0].result
    assert calls[1].result.startswith("[1] Tide tables (") and "L2: The spring tide at Brest peaks at 7.9" in calls[1].result
    # on the tools thread: neither the model's thread nor the window's
    assert len(threads) == 2 and len(model_threads) == 3
    assert not {t.ident for t in threads} & ({threading.main_thread().ident} | set(model_threads))
    # the same cache carries on: each prompt extends the one before by the call and its page
    for before, after in zip(session.prompts, session.prompts[1:]):
        assert after[:len(before) - 2] == before[:-2]
    assert enc.decode(session.prompts[2]).count("<|start|>browser.search to=assistant") == 1

    # each call is a collapsed block saying what was searched / opened, with the page the model saw
    blocks = w.messages.assistant_bubbles()[-1].steps.blocks()
    assert [b.header.text() for b in blocks] == ["▸ Searched for “spring tide Brest”", "▸ Opened Tide tables"]
    assert not any(b.is_open for b in blocks)
    blocks[1].toggle()
    assert blocks[1].output.text() == calls[1].result

    # the citation is a link: clicked, it asks the user's default app to open the document; with
    # none (the offscreen test platform has none) the reader view shows it with the cited line marked
    opener = w.citation_opener
    asked = []
    real_open = opener.open_in_app
    opener.open_in_app = lambda url: asked.append(url.toLocalFile()) or real_open(url)
    label = citation_label(w)
    assert "Tide tables L2" in label.text()
    click_link(qtbot, label, lambda: opener.reader is not None)
    assert asked == [str(notes / "tides.md")]
    reader = opener.reader
    assert reader.windowTitle() == "Tide tables" and reader.isVisible()
    assert marked_lines(reader) == ["L2 The spring tide at Brest peaks at 7.9 metres."]
    c.shutdown()


def marked_lines(reader) -> list[str]:
    """The reader's lines shown on the marker colour."""
    out, block = [], reader.text.document().firstBlock()
    while block.isValid():
        if block.blockFormat().background().color().name() == "#fff3b0":
            out.append(block.text().replace("\xa0", " ").replace("  ", " ", 1))
        block = block.next()
    return out


def citation_label(w) -> QLabel:
    body = w.messages.assistant_bubbles()[-1].rendered
    return next(lbl for lbl in body.findChildren(QLabel) if SCHEME in lbl.text())


def click_link(qtbot, label: QLabel, done) -> None:
    """Click along the label's first line until the link is hit (a click on plain text does nothing)."""
    qtbot.waitUntil(lambda: label.isVisible() and label.width() > 50)
    step = label.fontMetrics().height() // 2
    for y in range(step, label.height(), step):   # the text may sit anywhere in a stretched label
        for x in range(2, label.width(), 6):
            qtbot.mouseClick(label, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
            if done():
                return
    raise AssertionError("no link in the answer")


def test_a_chat_with_its_sources_off_is_not_offered_the_browser(qtbot, store, enc, library):
    session = browser_scripted.ScriptedSession(enc, [PLAIN, PLAIN])
    c = make(qtbot, store, session, library)
    conv = c.new_conversation()
    c.set_browser_on(conv, False)
    assert c.send("What are spring tides?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert "browser" not in enc.decode(session.prompts[0])
    c.set_browser_on(conv, True)
    assert c.send("And now?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert "sources=library" in enc.decode(session.prompts[1])
    c.shutdown()


def test_a_page_can_only_open_what_the_user_added(qtbot, store, enc, library, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the launch code is 0000")
    call = ('<|channel|>analysis to=browser.open code<|message|>{"id": "%s"}<|call|>' % secret.as_uri())
    session = browser_scripted.ScriptedSession(enc, [call, PLAIN])
    c = make(qtbot, store, session, library)
    assert c.send("Open that file")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    step = [s for s in c.model.last().steps if s.type == "call"][0]
    assert "is not in the sources" in step.result and "0000" not in step.result
    c.shutdown()


def test_stop_while_browsing_ends_the_answer_after_the_call(qtbot, store, enc, library, monkeypatch):
    gate = threading.Event()
    real_run = LibrarySources.run
    monkeypatch.setattr(LibrarySources, "run", lambda self, *a: gate.wait(10) and real_run(self, *a))
    session = browser_scripted.ScriptedSession(enc, [SEARCH, FINAL])
    c = make(qtbot, store, session, library)
    assert c.send("How high is the spring tide at Brest?")
    qtbot.waitUntil(lambda: c.turn is not None and any(s.type == "call" and s.status == "running"
                                                       for s in c.turn.message.steps), timeout=20000)
    c.stop()
    gate.set()
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    answer = c.model.last()
    assert answer.state == "stopped" and len(session.prompts) == 1   # the model was not asked again
    c.shutdown()


def test_the_opener_refuses_what_the_library_does_not_hold_and_the_reader_marks_lines(qtbot, store, library, notes):
    from app.citation_links import citation_url
    from app.ui.citation_opener import CitationOpener
    opener = CitationOpener(library)
    url = (notes / "tides.md").as_uri()
    lib = library.library()
    assert lib.fetch(url) is not None
    # a URL outside the library is never opened
    assert opener.open(citation_url((notes.parent / "elsewhere.md").as_uri(), (1, 1))) == ""
    # the reader shows the lines as the model saw them, the cited ones marked
    title, lines = library.read(url)
    from app.ui.citation_opener import ReaderView
    view = ReaderView(title, lines, (2, 2))
    qtbot.addWidget(view)
    assert "L2" in view.text.toPlainText() and "7.9 metres" in view.text.toPlainText()
    assert parse_citation_url(citation_url(url, (2, 3))) == (url, (2, 3))


def test_indexing_shows_progress_can_be_cancelled_and_never_blocks_the_window(qtbot, store, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    for i in range(1500):
        (big / f"note{i:04}.md").write_text(f"# Note {i}\n\n" + f"word{i} " * 200)
    lib = LibrarySources(store, tmp_path / "data" / "browser")
    assert lib.add(str(big)) == ""
    from app.ui.library_section import LibrarySection
    indexer = LibraryIndexer(lib)
    section = LibrarySection(lib, indexer)
    qtbot.addWidget(section)
    section.show()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    progress = []
    indexer.progress.connect(lambda done, total, name: progress.append((done, total)))
    section.start_indexing()
    qtbot.waitUntil(lambda: len(progress) >= 20, timeout=30000)
    ticks_at = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) > ticks_at + 5, timeout=10000)   # the event loop keeps running meanwhile
    assert section.progress.isVisible() and section.progress.maximum() == 1500
    with qtbot.waitSignal(indexer.finished, timeout=30000) as done:
        section.cancel_button.click()
    assert done.args[0].startswith("Indexing stopped")
    assert section.status.full_text().startswith("Indexing stopped")
    assert 0 < lib.library().count < 1500   # what was done is kept
    timer.stop()


def test_files_dropped_on_the_composer_become_the_chats_sources(qtbot, store, enc, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication
    report = tmp_path / "drop" / "report.md"
    report.parent.mkdir()
    report.write_text("# Harbour report\n\nThe harbour master retires in 2031.\n")
    (tmp_path / "drop" / "photo.xyz").write_bytes(b"\x00\x01")
    lib = LibrarySources(store, tmp_path / "data" / "browser")   # an empty library: only the dropped file
    search = SEARCH.replace("spring tide Brest", "harbour master retires")
    session = browser_scripted.ScriptedSession(enc, [search, FINAL])
    c = make(qtbot, store, session, lib)
    w = window(qtbot, c)
    assert not w.sources_switch.isVisibleTo(w)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(report)), QUrl.fromLocalFile(str(tmp_path / "drop" / "photo.xyz"))])
    viewport = w.composer.input.viewport()
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)   # as a real drag: it enters, then drops
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    assert drop.isAccepted() and w.composer.input.toPlainText() == ""   # a source, not pasted text
    assert "Added 1 file" in w.statusBar().currentMessage() and "photo.xyz" in w.statusBar().currentMessage()
    w.composer_drop.jobs[-1].wait(30)
    assert w.sources_switch.isVisibleTo(w) and w.sources_switch.isChecked()
    assert c.send("When does the harbour master retire?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert "sources=attachments" in enc.decode(session.prompts[0])
    step = [s for s in c.model.last().steps if s.type == "call"][0]
    assert "Harbour report" in step.result
    c.shutdown()


def test_a_reopened_chat_keeps_its_links_and_its_cursors(qtbot, store, enc, library, notes):
    session = browser_scripted.ScriptedSession(enc, [SEARCH, OPEN, FINAL])
    c = make(qtbot, store, session, library)
    assert c.send("How high is the spring tide at Brest?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    conv = c.current_id
    c.shutdown()
    # after a restart: a new controller and a fresh library over the same index
    again = LibrarySources(store, library.index_folder)
    later = browser_scripted.ScriptedSession(enc, [OPEN.replace('"id": 0, "cursor": 0', '"cursor": 1, "loc": 3'), PLAIN])
    c2 = make(qtbot, store, later, again)
    c2.open_conversation(conv)
    w = window(qtbot, c2)
    assert "Tide tables L2" in citation_label(w).text()   # linked from the stored steps, no call run
    assert c2.send("Read on.")
    qtbot.waitUntil(lambda: not c2.busy, timeout=20000)
    step = [s for s in c2.model.last().steps if s.type == "call"][0]
    # cursor 1 is still the tide tables (the earlier calls were run again), and this page is cursor 2
    assert step.result.startswith("[2] Tide tables (") and "L3:" in step.result
    c2.shutdown()


def test_a_call_right_after_a_drop_waits_for_the_files_to_be_indexed_and_stop_cancels_it(qtbot, store, enc, tmp_path):
    drop = tmp_path / "dropped"
    drop.mkdir()
    files = [drop / f"n{i:04}.md" for i in range(600)]
    for i, f in enumerate(files):
        f.write_text(f"# Note {i}\n\n" + ("quokka habitats are on Rottnest Island." if i == 599 else "nothing here. " * 50))
    lib = LibrarySources(store, tmp_path / "data" / "browser")
    search = SEARCH.replace("spring tide Brest", "quokka habitats")
    session = browser_scripted.ScriptedSession(enc, [search, PLAIN])
    c = make(qtbot, store, session, lib)
    conv = c.new_conversation()
    job, added, _ = lib.attach(str(conv), [str(f) for f in files])
    assert added == 600
    assert c.send("Where do quokkas live?")
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    step = [s for s in c.model.last().steps if s.type == "call"][0]
    assert job.report is not None and not job.report.cancelled
    assert "Note 599" in step.result   # the last file was indexed before the search ran
    c.shutdown()

    # Stop while the call waits for indexing: indexing stops, the answer ends, the model isn't asked again
    more = tmp_path / "more"
    more.mkdir()
    for i in range(3000):
        (more / f"m{i:04}.md").write_text(f"# More {i}\n\n" + "filler words here. " * 40)
    session = browser_scripted.ScriptedSession(enc, [search, PLAIN])
    c = make(qtbot, store, session, lib)
    c.open_conversation(conv)
    job, _, _ = lib.attach(str(conv), [str(p) for p in more.iterdir()])
    assert c.send("And now?")
    qtbot.waitUntil(lambda: any(s.type == "call" and s.status == "running" for s in c.turn.message.steps), timeout=20000)
    c.stop()
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    assert c.model.last().state == "stopped" and len(session.prompts) == 1
    assert job.wait(30).cancelled
    c.shutdown()


def test_a_zim_article_cited_opens_in_the_reader_with_its_lines_marked(qtbot, store, enc, tmp_path):
    """A real ZIM archive (written with libzim's writer) added in the Library section: the model
    searches it, cites it, and the citation opens the article in the reader view."""
    pytest.importorskip("libzim")
    sys_path = str(Path(__file__).parents[1] / "browser")
    import sys
    sys.path.insert(0, sys_path)
    try:
        from zim_archive import ARTICLES, write_zim
    finally:
        sys.path.remove(sys_path)
    zim = write_zim(tmp_path / "wikipedia_en_test.zim", ARTICLES, full_text=True)
    lib = LibrarySources(store, tmp_path / "data" / "browser")
    from app.ui.library_section import LibrarySection
    section = LibrarySection(lib, LibraryIndexer(lib))
    qtbot.addWidget(section)
    assert section.add(str(tmp_path / "nothing.txt")).endswith("add a folder of documents or a Kiwix .zim file.")
    assert section.add(str(zim)) == "" and section.list.count() == 1
    search = SEARCH.replace("spring tide Brest", "natural satellite")
    final = FINAL.replace("The spring tide at Brest peaks at 7.9 metres 【1†L2】", "The Moon is 384,400 km away 【1†L2】")
    session = browser_scripted.ScriptedSession(enc, [search, OPEN, final])
    c = make(qtbot, store, session, lib)
    w = window(qtbot, c)
    assert c.send("How far is the Moon?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert "sources=wikipedia_en_test" in enc.decode(session.prompts[0])
    opener = w.citation_opener
    label = citation_label(w)
    assert "Moon L2" in label.text()
    click_link(qtbot, label, lambda: opener.reader is not None)
    assert opener.reader.windowTitle() == "Moon"
    marked = marked_lines(opener.reader)
    assert len(marked) == 1 and marked[0].startswith("L2 ")
    assert marked[0][3:] == lib.read("zim://wikipedia_en_test/A/Moon")[1][2]
    c.shutdown()


def test_a_citation_link_the_model_writes_itself_is_only_text(qtbot, store, enc, library, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("private")
    forged = f"[click](gptoss-cite:?url={secret.as_uri()}&from=0&to=0)"
    session = browser_scripted.ScriptedSession(enc, [f"<|channel|>final<|message|>Here: {forged}<|return|>"])
    c = make(qtbot, store, session, library)
    w = window(qtbot, c)
    assert c.send("Anything?")
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    labels = w.messages.assistant_bubbles()[-1].rendered.findChildren(QLabel)
    assert any("click" in lbl.text() for lbl in labels)
    assert not any("<a " in lbl.text() and SCHEME in lbl.text() for lbl in labels)   # no link made
    c.shutdown()
