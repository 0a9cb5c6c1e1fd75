"""Seeded synthetic harmony conversations, rendered as text exactly as the harmony format does.

A conversation is a prompt (system message with the reasoning effort, optionally one earlier
question/answer turn, the user question, `<|start|>assistant`) and a completion the model learns:
`<|channel|>analysis<|message|>...<|end|><|start|>assistant<|channel|>final<|message|>...<|return|>`.
The prompt text matches openai-harmony's `render_conversation_for_completion` (checked in the tests),
so what the model is trained on is what the engine's renderer produces at chat time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from models.demo_train.tasks import EFFORTS, GENERATORS, TOOL_GENERATORS, Task

IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"
VALID_CHANNELS = "# Valid channels: analysis, commentary, final. Channel must be included for every message."


def system_text(effort: str, date: str | None) -> str:
    """The system message body harmony writes for our settings (no tools)."""
    lines = [IDENTITY, f"Knowledge cutoff: {KNOWLEDGE_CUTOFF}"]
    if date:
        lines.append(f"Current date: {date}")
    return "\n".join(lines) + f"\n\nReasoning: {effort}\n\n{VALID_CHANNELS}"


def render_prompt_text(turns: list[tuple[str, str]], question: str, effort: str, date: str | None) -> str:
    """Prompt text: system, earlier (question, final answer) turns, the question, `<|start|>assistant`.

    Earlier turns keep only their final answer, ending in `<|end|>`, as harmony does when a turn
    ended with a final answer.
    """
    parts = [f"<|start|>system<|message|>{system_text(effort, date)}<|end|>"]
    for q, a in turns:
        parts.append(f"<|start|>user<|message|>{q}<|end|>")
        parts.append(f"<|start|>assistant<|channel|>final<|message|>{a}<|end|>")
    parts.append(f"<|start|>user<|message|>{question}<|end|>")
    parts.append("<|start|>assistant")
    return "".join(parts)


def render_completion_text(analysis: str, final: str) -> str:
    """What the model writes after `<|start|>assistant`: analysis, then the final answer."""
    return (f"<|channel|>analysis<|message|>{analysis}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{final}<|return|>")


@dataclass(frozen=True)
class Example:
    task: Task
    effort: str
    date: str | None
    turns: tuple[tuple[str, str], ...]  # earlier (question, final answer) pairs
    python: str | None = None  # the python tool's description in the system message; None: no tools
    declined: bool = False  # with the tool: the user said "Don't run", so it says it can't answer reliably

    @property
    def prompt(self) -> str:
        return render_prompt_text(list(self.turns), self.task.question, self.effort, self.date)

    @property
    def completion(self) -> str:
        return render_completion_text(self.task.analysis, self.task.final)

    def messages(self) -> list[dict]:
        """The conversation as the app's message list (for rendering through engine.harmony)."""
        out = []
        for q, a in self.turns:
            out.append({"role": "user", "content": q})
            out.append({"role": "assistant", "channel": "final", "content": a})
        out.append({"role": "user", "content": self.task.question})
        return out


def random_date(rng: random.Random) -> str:
    return f"{rng.randint(2024, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def earlier_turns(rng: random.Random, effort: str, max_history: int, tool: bool) -> tuple[tuple[str, str], ...]:
    """1..max_history earlier (question, final answer) pairs. With the tool, earlier turns may be
    long multiplications answered from python's output (harmony keeps only their final answers)."""
    kinds = sorted(GENERATORS) + (sorted(TOOL_GENERATORS) if tool else [])
    out = []
    for _ in range(rng.randint(1, max_history) if max_history > 1 else 1):  # 1: the old stream's draws
        earlier = {**GENERATORS, **TOOL_GENERATORS}[rng.choice(kinds)](rng, effort)
        out.append((earlier.question, (earlier.tool_final or earlier.final) if tool else earlier.final))
    return tuple(out)


def make_example(rng: random.Random, kind: str | None = None, effort: str | None = None,
                 history_prob: float = 0.2, max_history: int = 1) -> Example:
    """One conversation. kind/effort are drawn uniformly when not given. With probability
    history_prob it carries 1..max_history earlier turns (max_history 1: the base model's stream)."""
    kind = kind or rng.choice(sorted(GENERATORS))
    effort = effort or rng.choice(EFFORTS)
    turns = ()
    if rng.random() < history_prob:
        turns = earlier_turns(rng, effort, max_history, tool=False)
    task = {**GENERATORS, **TOOL_GENERATORS}[kind](rng, effort)
    date = random_date(rng) if rng.random() < 0.9 else None
    return Example(task, effort, date, turns)


def examples(seed: int, count: int, **kwargs) -> list[Example]:
    """`count` examples, reproducible from `seed`."""
    rng = random.Random(seed)
    return [make_example(rng, **kwargs) for _ in range(count)]


# Seeds kept apart so held-out questions never come from the training stream.
TRAIN_SEED = 1
HELDOUT_SEED = 2026


def heldout_examples(count: int = 300, seed: int = HELDOUT_SEED) -> list[Example]:
    """Held-out evaluation questions: kinds cycle evenly; effort is chosen at evaluation time."""
    rng = random.Random(seed)
    kinds = sorted(GENERATORS)
    return [make_example(rng, kind=kinds[i % len(kinds)], effort="high", history_prob=0.0)
            for i in range(count)]


# ---------------------------------------------------------------- conversations with the python tool
#
# With the python tool in the system message the model sends to it what it cannot do in its head
# (the long multiplications, TOOL_GENERATORS), at every effort, then answers from its result:
#   prompt  ... <|start|>user<|message|>Q<|end|><|start|>assistant
#   model   <|channel|>analysis<|message|>PLAN<|end|>              (medium and high only)
#           <|start|>assistant<|channel|>analysis to=python code<|message|>CODE<|call|>
#   tool    <|start|>python to=assistant<|channel|>analysis<|message|>OUTPUT<|end|><|start|>assistant
#   model   <|channel|>final<|message|>FINAL<|return|>
# and answers the six kinds it can work out in its head as it does without the tool (so a tool in
# the system message changes nothing for them). Every piece is rendered by the engine's own
# harmony renderer (engine.harmony.render_message), so the ids trained on are the ids the session
# renders when it sends the call and result back. When the user declines to run the code, the
# tool's result says so and the model says it can't answer reliably. Without the tool nothing
# changes (the conversations above; a long multiplication is declined there).

TOOL_PLAN = {"medium": "Too many digits to multiply in my head: use python.",
             "high": "Too many digits to multiply reliably in my head, so compute it with python and answer from its result."}


def python_descriptions() -> tuple[str, ...]:
    """The python tool's description as harmony writes it, and as engine/python_tool words it with
    its real limits (the app may show either): the model learns the tool from both."""
    from engine.python_tool import tool_description
    from engine.tools import PYTHON_DESCRIPTION

    return PYTHON_DESCRIPTION, tool_description()


def tool_system_text(effort: str, date: str, description: str) -> str:
    """The engine's system message with the python tool, described by `description`."""
    from engine.harmony import system_text as engine_system_text
    from engine.tools import PYTHON_DESCRIPTION

    return engine_system_text(effort, date, python=True).replace(PYTHON_DESCRIPTION, description)


def tool_turn(ex: Example) -> list[tuple[dict, bool]]:
    """The turn after the user's question as harmony messages, each with whether the model writes it
    (True) or it is the tool's result (False). Only for examples with the python tool."""
    from engine.tools import DECLINED_CODE, PYTHON  # the words a tool answers when the user says "Don't run"

    t = ex.task
    if t.kind not in TOOL_GENERATORS:  # worked out in its head, as without the tool
        return [({"role": "assistant", "channel": "analysis", "content": t.analysis}, True),
                ({"role": "assistant", "channel": "final", "content": t.final}, True)]
    out = []
    if ex.effort in TOOL_PLAN:
        out.append(({"role": "assistant", "channel": "analysis", "content": TOOL_PLAN[ex.effort]}, True))
    out.append(({"role": "assistant", "channel": "analysis", "recipient": PYTHON, "content_type": "code",
                 "recipient_after_channel": True, "content": t.code}, True))
    out.append(({"role": "tool", "name": PYTHON, "channel": "analysis",
                 "content": DECLINED_CODE if ex.declined else t.output}, False))
    if ex.declined:
        final = "I can't multiply numbers this long reliably without running the code."
        out.append(({"role": "assistant", "channel": "analysis", "content": t.analysis}, True))
    else:
        final = t.tool_final
    out.append(({"role": "assistant", "channel": "final", "content": final}, True))
    return out


def encode_example(enc, ex: Example) -> tuple[list[int], list[int], list[bool]]:
    """(system ids, the ids after them, trained): trained[i] says whether ids[i] is written by the
    model (the loss covers those only). Plain examples are encoded from their text; those with
    the python tool are rendered piece by piece by the engine's harmony renderer."""
    if ex.python is None:
        system = enc.encode(render_prompt_text([], "", ex.effort, ex.date).split("<|start|>user")[0],
                            allowed_special="all")
        prompt = enc.encode(ex.prompt, allowed_special="all")
        completion = enc.encode(ex.completion, allowed_special="all")
        # Specials split the text before BPE, so the prompt's ids begin with the system message's.
        assert prompt[:len(system)] == system
        rest = prompt[len(system):] + completion
        return system, rest, [False] * (len(prompt) - len(system)) + [True] * len(completion)

    from engine.harmony import render_chat_message, render_message
    from engine.tokenizer import encode_text, special_id

    system = render_message(enc, "system", tool_system_text(ex.effort, ex.date, ex.python))
    assistant = [special_id(enc, "<|start|>"), *encode_text(enc, "assistant")]
    ids: list[int] = []
    trained: list[bool] = []
    for m in ex.messages():
        ids += render_chat_message(enc, m)
    ids += assistant
    trained += [False] * len(ids)
    turn_ids, turn_trained = encode_turn(enc, tool_turn(ex))
    ids += turn_ids
    trained += turn_trained
    return system, ids, trained


def encode_turn(enc, turn: list[tuple[dict, bool]]) -> tuple[list[int], list[bool]]:
    """The ids of the model's turn (messages and whether the model wrote each) after a prompt that
    ends with `<|start|>assistant`, and which ids are trained on (what the model writes)."""
    from engine.harmony import render_chat_message
    from engine.tokenizer import encode_text, special_id

    assistant = [special_id(enc, "<|start|>"), *encode_text(enc, "assistant")]
    ids: list[int] = []
    trained: list[bool] = []
    opened = True  # the next message's header is already there
    for m, written in turn:
        piece = render_chat_message(enc, m)
        if opened:
            assert piece[:len(assistant)] == assistant
            piece = piece[len(assistant):]
        if m.get("channel") == "final":
            piece[-1] = special_id(enc, "<|return|>")  # the turn's end, as the model writes it
        opened = not written
        if not written:
            piece += assistant  # the prompt the session renders after a tool's result
        ids += piece
        trained += [written] * len(piece)
    return ids, trained


def make_tool_example(rng: random.Random, kind: str, effort: str, description: str, date: str,
                      declined_prob: float = 0.05, history_prob: float = 0.2, max_history: int = 1) -> Example:
    """One conversation with the python tool in the system message."""
    turns = ()
    if rng.random() < history_prob:
        if max_history == 1:  # the stream the shipped fine-tunes were trained on
            earlier = GENERATORS[rng.choice(sorted(GENERATORS))](rng, effort)
            turns = ((earlier.question, earlier.tool_final or earlier.final),)
        else:
            turns = earlier_turns(rng, effort, max_history, tool=True)
    task = {**GENERATORS, **TOOL_GENERATORS}[kind](rng, effort)
    declined = kind in TOOL_GENERATORS and rng.random() < declined_prob
    return Example(task, effort, date, turns, python=description, declined=declined)


def heldout_long_multiplications(count: int = 50, seed: int = HELDOUT_SEED + 1) -> list[Example]:
    """Held-out products of two multi-digit numbers (asked with and without the tool)."""
    rng = random.Random(seed)
    return [Example(TOOL_GENERATORS["long multiplication"](rng, "high"), "high", None, ()) for _ in range(count)]
