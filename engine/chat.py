"""Chat with a gpt-oss model in the terminal.

    python -m engine.chat --model PATH [--effort low|medium|high] [--show-reasoning] [--temperature T]
                          [--library FOLDER ...] [--zim FILE ...]

The final answer streams as it is written. While the model reasons, "Thinking… N s" counts up,
then "Thought for N s"; the raw chain of thought (dimmed) only with --show-reasoning, since it is
not safety-trained like the answers. Ctrl-C stops the current answer and keeps the chat; /reset,
/effort, /quit (or Ctrl-D). With --library (folders of documents) or --zim (Kiwix archives) the
model can use its browser over them; each search/open/find is shown as one dim line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from engine.errors import ModelError
from engine.events import ContextTrimmed, Done, MessageEnd, MessageStart, PrefillProgress, PromptTooLong, Stop, TextDelta
from engine.harmony import EFFORTS

DIM, RESET, CLEAR_LINE = "\033[2m", "\033[0m", "\r\033[K"
HELP = "Commands: /reset (new chat), /effort low|medium|high, /quit. Ctrl-C stops an answer."


class TerminalView:
    """Turns session events into terminal output; remembers what the assistant said.

    Colour and the ticking "Thinking… N s" line (escape codes) only go to a terminal: piped into a
    file or another program the output is plain text.
    """

    def __init__(self, out, show_reasoning: bool, clock=time.monotonic, tty: bool | None = None):
        self.out, self.show_reasoning, self.clock = out, show_reasoning, clock
        self.tty = tty if tty is not None else bool(getattr(out, "isatty", lambda: False)())
        self.thinking_since: float | None = None
        self.last_tick = 0.0
        self.analysis: list[str] = []
        self.final: list[str] = []
        self.done = None
        self.reading = False  # a "Reading your message… N%" line is showing

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def dim(self, text: str) -> str:
        return f"{DIM}{text}{RESET}" if self.tty else text

    def handle(self, ev) -> None:
        """Show one event (engine.events: ContextTrimmed, PrefillProgress, MessageStart, TextDelta,
        MessageEnd, Stop, Done)."""
        if isinstance(ev, PrefillProgress):
            if self.tty:  # only sent for prompts that take more than a second to read
                self.write(f"{CLEAR_LINE}Reading your message… {int(ev.fraction * 100)}%")
                self.reading = True
            return
        if self.reading:
            self.write(CLEAR_LINE)
            self.reading = False
        if isinstance(ev, MessageStart) and ev.channel == "analysis":
            self.thinking_since = self.last_tick = self.clock()
            if self.show_reasoning:
                self.write("Thinking…\n")
            elif self.tty:
                self.write("Thinking… 0 s")
        elif isinstance(ev, TextDelta) and ev.channel == "analysis":
            self.analysis.append(ev.text)
            if self.show_reasoning:
                self.write(self.dim(ev.text))
            elif self.tty and self.clock() - self.last_tick >= 0.1:
                self.last_tick = self.clock()
                self.write(f"{CLEAR_LINE}Thinking… {self.last_tick - self.thinking_since:.0f} s")
        elif isinstance(ev, MessageEnd) and ev.channel == "analysis":
            seconds = self.clock() - (self.thinking_since or self.clock())
            lead = "\n" if self.show_reasoning else CLEAR_LINE if self.tty else ""
            self.write(lead + f"Thought for {seconds:.0f} s\n")
            self.thinking_since = None
        elif isinstance(ev, TextDelta) and ev.channel == "final":
            self.final.append(ev.text)
            self.write(ev.text)
        elif isinstance(ev, Stop):
            if self.thinking_since is not None and not self.show_reasoning and self.tty:
                self.write(CLEAR_LINE)
            self.write("\n" + _stop_note(ev.reason))
        elif isinstance(ev, PromptTooLong):  # nothing is generated: say what doesn't fit, and the limit
            self.write(f"({ev.describe()})\n")
        elif isinstance(ev, ContextTrimmed):
            self.write(f"(the chat is longer than the model's context: {ev.dropped_messages} oldest messages "
                       "were left out)\n")
        elif type(ev).__name__ == "BrowserStep":  # engine.browser.turn: one dim line per call
            self.write(self.dim(_browser_line(ev)) + "\n")
        elif isinstance(ev, Done):
            self.done = ev
            if ev.stop_reason == "too_long":  # nothing ran: the sentence above says why
                return
            stats = ev.stats
            self.write(self.dim(f"[{stats.generated_tokens} tokens, {stats.decode_tps:.1f} tokens/s, "
                                f"first token after {ev.ttft_s:.2f} s]") + "\n")


def _browser_line(step) -> str:
    a = step.call.parsed
    if step.call.error or a is None:
        return f"[browser.{step.action}: {step.output[:120]}]"
    what = {"search": lambda: f'"{a.query}"', "find": lambda: f'"{a.pattern}"'}.get(
        step.action, lambda: str(a.id) if a.id != -1 else f"line {max(a.loc, 0)}")()
    title = step.output.split("\n", 1)[0] if step.cursor is not None else step.output[:120]
    return f"[browser.{step.action} {what} -> {title}]"


def _stop_note(reason: str) -> str:
    if reason in ("return", "call"):
        return ""
    if reason == "cancelled":
        return "(stopped)\n"
    if reason == "max_tokens":
        return "(cut off: the answer reached the token limit)\n"
    return f"(the model's reply was not in the chat format and was stopped: {reason.removeprefix('malformed: ')})\n"


class Chat:
    """The read-eval loop around a ChatSession."""

    def __init__(self, session, args, out=sys.stdout, browser=None):
        self.session, self.args, self.out = session, args, out
        self.effort = args.effort
        self.messages: list[dict] = []
        self.browser = browser  # engine.browser.BrowserTool over --library / --zim, or None

    def command(self, line: str) -> bool:
        """Run a /command; returns False when the chat should end."""
        word, _, rest = line.partition(" ")
        if word in ("/quit", "/exit"):
            return False
        if word == "/reset":
            self.messages.clear()
            self.session.reset()
            if self.browser is not None:
                self.browser.reset()  # the new chat's pages start at cursor 0
            print("New chat: the history is cleared.", file=self.out)
        elif word == "/effort":
            if rest.strip() in EFFORTS:
                self.effort = rest.strip()
            elif rest.strip():
                print(f"Effort must be one of {', '.join(EFFORTS)}.", file=self.out)
            print(f"Reasoning effort: {self.effort}", file=self.out)
        else:
            print(f"Unknown command {word}. {HELP}", file=self.out)
        return True

    def answer(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        view = TerminalView(self.out, self.args.show_reasoning)
        cancel = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
        try:
            sampling = self.session.sampling(self.args.temperature, self.args.top_p)
            options = dict(effort=self.effort, sampling=sampling, max_tokens=self.args.max_tokens, cancel=cancel,
                           developer=self.args.developer)
            if self.browser is not None:
                return self._browse(view, options)
            for ev in self.session.reply(self.messages, **options):
                view.handle(ev)
        finally:
            signal.signal(signal.SIGINT, previous)
        if view.final:
            if view.analysis:
                self.messages.append({"role": "assistant", "channel": "analysis", "content": "".join(view.analysis)})
            self.messages.append({"role": "assistant", "channel": "final", "content": "".join(view.final)})
        else:
            self.messages.pop()  # no answer: forget the question so the history stays well-formed

    def _browse(self, view, options) -> None:
        """A turn with the browser: browse_turn keeps every message the turn wrote (calls, pages,
        answer); without a final answer the turn is taken back whole."""
        from engine.browser.turn import browse_turn

        asked = len(self.messages) - 1
        for source in self.browser.sources.values():  # files changed while chatting: re-index them
            if hasattr(source, "refresh_if_stale"):
                source.refresh_if_stale()
        for ev in browse_turn(self.session, self.messages, self.browser, **options):
            view.handle(ev)
        if not view.final:
            del self.messages[asked:]
            return
        from engine.browser import citations

        seen = set()
        for c in citations("".join(view.final), self.browser):  # where each citation leads, once
            if c.url and (c.url, c.lines) not in seen:
                seen.add((c.url, c.lines))
                lines = f"#L{c.lines[0]}-L{c.lines[1]}" if c.lines else ""
                view.write(view.dim(f"【{c.cursor}†{c.text}】 {c.title}: {c.url}{lines}") + "\n")

    def run(self, read=input) -> None:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and threading.current_thread() is threading.main_thread():
            # Started with SIGINT ignored (a background job of a script): answers would still stop
            # on Ctrl-C (answer() sets its own handler) but the prompt would ignore it. Ctrl-C is
            # this chat's stop key in both places.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"Chatting with {self.args.model} (reasoning effort {self.effort}). {HELP}", file=self.out)
        while True:
            try:
                line = read("\n>>> ").strip()
            except EOFError:
                print(file=self.out)
                return
            except KeyboardInterrupt:
                print("\n(type /quit or press Ctrl-D to leave)", file=self.out)
                continue
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return
                continue
            try:
                self.answer(line)
            except KeyboardInterrupt:  # Ctrl-C in the instant before the answer's handler was set
                print("\n(stopped)", file=self.out)
                if self.messages and self.messages[-1]["role"] == "user":
                    self.messages.pop()
            except ModelError as e:  # e.g. NaN logits from damaged weights: say so, keep the chat
                print(f"\n{e}", file=self.out)
                if self.messages and self.messages[-1]["role"] == "user":
                    self.messages.pop()


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m engine.chat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None,
                    help="folder holding config.json, tokenizer.json and the weights (models/demo: the tiny "
                         "demo model that ships with this checkout)")
    ap.add_argument("--effort", choices=EFFORTS, default="medium", help="reasoning effort")
    ap.add_argument("--show-reasoning", action="store_true", help="print the raw chain of thought (dimmed)")
    ap.add_argument("--temperature", type=float, default=None,
                    help="default: 1, or 0 (greedy) when the model folder asks for it, as the demo model does")
    ap.add_argument("--top-p", type=float, default=None, help="default: the model folder's, else 1")
    ap.add_argument("--max-tokens", type=int, default=4096, help="longest answer, reasoning included")
    ap.add_argument("--context", type=int, default=8192, help="context length in tokens")
    ap.add_argument("--developer", default=None, help="developer instructions (a system prompt)")
    ap.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                    help="compute dtype (default: bfloat16 on the GPU, float32 on the CPU)")
    ap.add_argument("--library", action="append", default=[], metavar="FOLDER",
                    help="a folder of documents the model may search, open and cite (repeatable)")
    ap.add_argument("--zim", action="append", default=[], metavar="FILE",
                    help="an offline encyclopedia (Kiwix .zim) the model may browse (repeatable)")
    ap.add_argument("--index", default=None, metavar="FOLDER",
                    help="where the library's search index is kept (default: under ~/.cache/gpt-oss-chat)")
    ap.add_argument("--distributed", action="store_true",
                    help="run as one rank of a pipeline across Macs, under mlx.launch (docs/distributed.md)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.model is None:  # the engine knows no model registry: the caller names the folder
        print("Pass --model with a model folder: a gpt-oss-20b folder, or models/demo (the tiny demo model "
              "that ships with this checkout).", file=sys.stderr)
        return 2
    if not Path(args.model).is_dir():
        print(f"The model folder {args.model} does not exist; pass --model the folder that holds "
              "config.json, tokenizer.json and the weights.", file=sys.stderr)
        return 1
    backends = None
    if args.library or args.zim:  # indexed before the model loads: a bad folder is said at once
        backends = open_browser_sources(args)
        if backends is None:
            return 1
    if args.distributed:  # several Macs under mlx.launch: rank 0 chats, the others serve its requests
        from engine.distributed import chat_main

        return chat_main(args, Chat)
    try:
        from engine.front_door import open_chat

        session = open_chat(args.model, context_length=args.context, dtype=args.dtype,  # refuses before loading
                            on_loading=lambda: print(f"Loading {args.model}…", file=sys.stderr))
    except ModelError as e:
        print(str(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as e:
        print(f"The model in {args.model} could not be loaded ({e}); check the folder or download it again.",
              file=sys.stderr)
        return 1
    browser = None
    if backends is not None:
        from engine.browser import BrowserTool

        browser = BrowserTool(backends, lambda text: len(session.enc.encode_ordinary(text)))
    Chat(session, args, browser=browser).run()
    return 0


def open_browser_sources(args):
    """The browser's backends over --library/--zim (indexing with a progress line; Ctrl-C stops
    indexing and keeps what is done), or None after saying why they can't be opened."""
    from engine.browser.sources import open_sources

    def progress(done, total, path):
        if done == total or done % 50 == 0:
            print(f"\rIndexing the library: {done}/{total} files", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        backends = open_sources(args.library, args.zim, args.index, progress, cancel)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return None
    finally:
        signal.signal(signal.SIGINT, previous)
    if cancel.is_set():
        print("\nIndexing stopped: the files indexed so far can be searched.", file=sys.stderr)
    return backends


if __name__ == "__main__":
    sys.exit(main())
