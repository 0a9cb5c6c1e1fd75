"""Save PNGs of the app's main states to docs/screenshots/, at the window's default size and at
its minimum size ("min-" files). Run under a real X server (Xvfb), or offscreen.

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/screens.py        # real X server
    QT_QPA_PLATFORM=offscreen python tests/app/screens.py                      # no X at all

States 1-5 answer from a scripted harmony stream (the status bar says so); states 6-7 are the
shipped tiny demo model answering through the real engine. The widgets, layout and states are the
app's own.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-screens-")

from PySide6.QtCore import QEventLoop, QPoint, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from scripted import ScriptedSession, answer_script  # noqa: E402

ANALYSIS = ("The user asks how to reverse a linked list in Python. Iterative approach: keep prev, walk the list, "
            "point each node back. O(n) time, O(1) space. Give a short example and mention recursion briefly.")
FINAL = ("Walk the list once and point each node back at the one before it:\n\n"
         "```python\ndef reverse(head):\n    prev = None\n    while head:\n        head.next, prev, head = prev, head, head.next\n"
         "    return prev\n```\n\nThis runs in **O(n)** time and **O(1)** extra space. A recursive version is shorter "
         "but uses one stack frame per node, so long lists can hit Python's recursion limit.")


def spin(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


DEFAULT, MINIMUM = (1180, 780), (760, 520)   # the window's default and minimum sizes


def take(w, path: Path, saved: list) -> None:
    spin(250)
    w.grab().save(str(path))
    saved.append(path)


def scripted_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    """Empty chat, streaming, finished (reasoning hidden, then shown), setup page: scripted answers."""
    from app.controller import ChatController
    from app.download import Progress
    from app.model_manager import check_folder
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    from models.registry import demo_folder

    session = ScriptedSession(answer_script(analysis=ANALYSIS, final=FINAL, think_s=0, pieces=60), delay=0.012)
    session.name = "Scripted answers (screenshot script)"
    loader = lambda folder, ctx: session  # noqa: E731
    store = ChatStore(Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"])) / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=loader))
    w = MainWindow(c, size_text="13.8 GB", dest_text="~/Library/Application Support/gpt-oss chat/models/gpt-oss-20b")
    w.resize(*size)
    w.setup.set_demo_available(check_folder(demo_folder()) is None)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    saved: list[Path] = []
    take(w, out / f"{prefix}1-empty.png", saved)
    from app.store import StoredMessage
    for title in ("Trip ideas for Lisbon", "Explain YaRN scaling"):   # past chats, written in (an empty one is reused)
        store.add_message(store.create_conversation(title, "medium").id, StoredMessage("user", title))
    c.conversations_changed.emit()
    w.composer.input.setPlainText("How do I reverse a linked list in Python?")
    w.composer.submit()
    while len(c.model.last().text) < 160:
        spin(50)
    take(w, out / f"{prefix}2-streaming.png", saved)
    while c.busy:
        spin(100)
    take(w, out / f"{prefix}3-finished-reasoning-hidden.png", saved)
    s = c.settings
    s.show_raw_cot = True
    c.save_settings(s)
    take(w, out / f"{prefix}4-raw-reasoning-shown.png", saved)
    w.setup.set_downloading(True)
    w.setup.set_disk_space(13_788_000_000 - 5_120_000_000, 182_400_000_000)
    w.setup.show_progress(Progress(5_120_000_000, 13_788_000_000, 38_400_000, 226.0, "model-00001-of-00002.safetensors"))
    w.show_setup()
    take(w, out / f"{prefix}5-setup-download.png", saved)
    c.shutdown()
    w.close()
    return saved


RICH_FINAL = ("Euler's identity \\( e^{i\\pi} + 1 = 0 \\) ties five constants together. The Gaussian integral:\n\n"
              "$$\\int_{-\\infty}^{\\infty} e^{-x^2}\\,dx = \\sqrt{\\pi}$$\n\n"
              "| Rust type | Owns its data | Example |\n|---|:---:|---|\n"
              "| `Vec<String>` | yes | `vec![\"a\".into()]` |\n| `&[&str]` | no | `&[\"a\"]` |\n\n"
              "> Set the header to <your-api-key>; a <script> tag here is only text.\n\n"
              "1. Read the [docs](https://doc.rust-lang.org/std/vec/struct.Vec.html)\n"
              "2. Then try `HashMap<K, V>` with \\(\\alpha \\le \\frac{1}{2}\\)")


def rich_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    """An answer with math, a table, a block quote, inline code and text in angle brackets: all of it
    shown (issue 29 items 1 and 18)."""
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker

    session = ScriptedSession(answer_script(analysis="Math, a table, a quote.", final=RICH_FINAL, think_s=0, pieces=20),
                              name="Scripted answers (screenshot script)")
    loader = lambda folder, ctx: session  # noqa: E731
    store = ChatStore(Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"])) / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=loader))
    w = MainWindow(c)
    w.resize(*size)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    saved: list[Path] = []
    w.composer.input.setPlainText("Show me some math, a Rust table and a quote.")
    w.composer.submit()
    while c.busy:
        spin(100)
    take(w, out / f"{prefix}12-rich-answer.png", saved)
    if not prefix:   # Settings at its own size: it fits a 1440x900 screen and scrolls (issue 29 item 3)
        from app.api_server import LocalApiServer
        from app.ui.settings_dialog import SettingsDialog
        dialog = SettingsDialog(c.settings, w, api=LocalApiServer(c), context_lengths=(4096, 8192, 16384))
        dialog.show()
        take(dialog, out / "13-settings.png", saved)
        dialog.close()
    c.shutdown()
    w.close()
    return saved


def demo_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    """The real tiny demo model through the real engine: its empty chat with example questions,
    then the answer to the first example at the effort the app starts it with."""
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    from models.registry import demo_folder

    store = ChatStore(Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"])) / "history.sqlite3")
    c = ChatController(store, EngineWorker())
    w = MainWindow(c)
    w.resize(*size)
    w.show()
    c.load_model(str(demo_folder()))
    while not c.ready and not c.model_error:
        spin(100)
    w.show_chat()
    saved: list[Path] = []
    take(w, out / f"{prefix}6-demo-examples.png", saved)
    w.messages.example_chips()[0].click()
    spin(100)
    while c.busy:
        spin(100)
    take(w, out / f"{prefix}7-demo-answer.png", saved)
    c.shutdown()
    w.close()
    return saved


PRIMES_CODE = '''import struct, zlib
N = 10_000
sieve = bytearray([1]) * N
sieve[0:2] = b"\\0\\0"
for i in range(2, int(N ** 0.5) + 1):
    if sieve[i]:
        sieve[i * i::i] = bytearray(len(range(i * i, N, i)))
counts = [sum(sieve[k:k + 1000]) for k in range(0, N, 1000)]
print(sum(sieve), counts)

# primes per block of 1000 as a bar chart, saved as a PNG
W, H = 400, 180
px = [[(255, 255, 255)] * W for _ in range(H)]
for b, n in enumerate(counts):
    for y in range(H - n, H):
        for x in range(b * 40 + 6, b * 40 + 34):
            px[y][x] = (66, 133, 244)
raw = b"".join(b"\\0" + bytes(c for p in row for c in p) for row in px)
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open("primes.png", "wb").write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
                               + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))'''
PRIMES_FINAL = ("There are **1,229** primes below 10,000. They thin out slowly: 168 in the first thousand, "
                "then 135, 127, 120, 119, 114, 117, 107, 110 and 112 in the last, about what the prime number "
                "theorem predicts (1000 / ln n).")
WEATHER_JSON = '{"city": "Lisbon", "date": "2026-12-02", "forecast": "light rain", "high_c": 16, "low_c": 11, "umbrella": true}'
WEATHER_SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string"}, "date": {"type": "string"}, "forecast": {"type": "string"},
    "high_c": {"type": "number"}, "low_c": {"type": "number"}, "umbrella": {"type": "boolean"}},
    "required": ["city", "date", "forecast", "high_c", "low_c", "umbrella"]}


def tool_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    """A python call: asking first, then run in the real sandboxed kernel (collapsed, expanded,
    with the chart the code saved); then a structured answer held to a JSON Schema. The model's
    side is scripted (the status bar says so); the kernel, widgets and states are the app's own."""
    import json

    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.tools_worker import ToolsWorker
    from app.worker import EngineWorker
    from engine.python_tool import PythonToolPool
    from scripted import call_script

    think = "Count primes below 10000 with a sieve, then chart them per thousand."
    session = ScriptedSession(delay=0.004, queue=[
        call_script(PRIMES_CODE, analysis=think, preamble="I'll count them with a quick sieve and chart them."),
        answer_script(analysis="1229 primes; counts per block from the output.", final=PRIMES_FINAL, think_s=0, pieces=30),
        answer_script(analysis="Return the forecast as the schema asks.", final=WEATHER_JSON, think_s=0, pieces=10)])
    session.name = "Scripted answers (screenshot script)"
    loader = lambda folder, ctx: session  # noqa: E731
    home = Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"]))
    store = ChatStore(home / "history.sqlite3")
    pool = PythonToolPool(home / "python")
    c = ChatController(store, EngineWorker(loader=loader), tools=ToolsWorker(pool))
    w = MainWindow(c)
    w.resize(*size)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    saved: list[Path] = []
    w.composer.input.setPlainText("How many primes are there below 10,000? Chart how they thin out.")
    w.composer.submit()
    while c.waiting_call() is None:
        spin(50)
    take(w, out / f"{prefix}8-tool-consent.png", saved)
    c.answer_tool("run")
    while c.busy:
        spin(100)
    take(w, out / f"{prefix}9-tool-call-collapsed.png", saved)
    block = w.messages.assistant_bubbles()[-1].steps.blocks()[0]
    block.header.click()
    spin(200)
    bar = w.messages.verticalScrollBar()
    w.messages._stick = False          # the view follows the bottom otherwise
    bar.setValue(min(bar.maximum(), block.mapTo(w.messages.widget(), QPoint(0, 0)).y() - 36))
    take(w, out / f"{prefix}10-tool-call-expanded.png", saved)
    c.new_conversation()
    s = c.settings
    s.answer_schema = json.dumps(WEATHER_SCHEMA)
    c.save_settings(s)
    w.composer.input.setPlainText("Tomorrow's weather in Lisbon, in our forecast format.")
    w.composer.submit()
    while c.busy:
        spin(100)
    take(w, out / f"{prefix}11-structured-answer.png", saved)
    c.shutdown()
    pool.close_all()
    w.close()
    return saved


def main(out: Path = ROOT / "docs" / "screenshots") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    saved = scripted_states(out, DEFAULT)
    saved += scripted_states(out, MINIMUM, prefix="min-")
    saved += rich_states(out, DEFAULT)
    saved += rich_states(out, MINIMUM, prefix="min-")
    try:
        import mlx.core  # noqa: F401
    except ImportError:   # no engine here: the scripted states are all we can show
        return saved
    saved += demo_states(out, DEFAULT)
    saved += demo_states(out, MINIMUM, prefix="min-")
    return saved


if __name__ == "__main__":
    if sys.argv[1:2] == ["rich"]:   # only the rich answer (math, table, quote)
        target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setStyle("Fusion")
        for p in rich_states(target, DEFAULT) + rich_states(target, MINIMUM, prefix="min-"):
            print(p)
        sys.exit(0)
    if sys.argv[1:2] == ["tools"]:   # only the tool call and structured answer states
        target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setStyle("Fusion")
        for p in tool_states(target, DEFAULT) + tool_states(target, MINIMUM, prefix="min-"):
            print(p)
        sys.exit(0)
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"):
        print(p)
