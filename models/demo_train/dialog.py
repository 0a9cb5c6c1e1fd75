"""A training conversation rendered by the engine's own harmony renderer, for any tools and formats.

    d = Dialog("documents", "medium", "2026-11-22", history=(user message,), turn=((msg, True), ...),
               browser=("library",), answer_format=None)
    system, ids, trained = encode_dialog(enc, d)

`history` is what comes before the model's turn (earlier turns and the user's question last), as
the app sends it; `turn` is the turn's messages in order, each with whether the model writes it
(True) or it is a tool's answer (False). The prompt is `engine.harmony.render_prompt`'s, so the ids
trained on are the ids the session renders at chat time (with the browser, python, an answer
format, long histories); the turn's pieces are `render_chat_message`'s, the last one ending in
`<|return|>` and every tool answer followed by the `<|start|>assistant` the session renders next.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.answer_format import AnswerFormat


@dataclass(frozen=True)
class Dialog:
    kind: str
    effort: str
    date: str
    history: tuple[dict, ...]              # messages before the turn; the user's question last
    turn: tuple[tuple[dict, bool], ...]    # (message, written by the model)
    python: bool = False
    browser: tuple[str, ...] | None = None  # the browser's source names (None: no browser)
    answer_format: AnswerFormat | None = None
    answer: str = ""                       # the canonical answer, for grading
    files: tuple[tuple[str, str], ...] = ()  # documents (name, text) the browser reads, if any
    developer: str | None = None           # the client's system/developer text (harmony's # Instructions)

    @property
    def question(self) -> str:
        return self.history[-1]["content"]

    def system_key(self) -> tuple:
        """What the system message depends on: a batch shares one."""
        return (self.effort, self.date, self.python, self.browser)


def system_ids(enc, d: Dialog) -> list[int]:
    from engine.harmony import render_message, system_text

    return render_message(enc, "system", system_text(d.effort, d.date, python=d.python,
                                                     browser=list(d.browser) if d.browser is not None else None))


def encode_dialog(enc, d: Dialog) -> tuple[list[int], list[int], list[bool]]:
    """(system ids, the ids after them, trained): trained[i] says whether ids[i] is the model's."""
    from engine.harmony import render_prompt
    from models.demo_train.conversations import encode_turn

    system = system_ids(enc, d)
    prompt = render_prompt(list(d.history), enc, d.effort, d.date, python=d.python, answer_format=d.answer_format,
                           browser=list(d.browser) if d.browser is not None else None, developer=d.developer)
    assert prompt[:len(system)] == system
    last, written = d.turn[-1]
    assert written and last.get("channel") == "final"   # the turn ends with the model's answer
    ids, trained = encode_turn(enc, list(d.turn))
    return system, prompt[len(system):] + ids, [False] * (len(prompt) - len(system)) + trained

