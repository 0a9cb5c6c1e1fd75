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

from models.demo_train.tasks import EFFORTS, GENERATORS, Task

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


def make_example(rng: random.Random, kind: str | None = None, effort: str | None = None,
                 history_prob: float = 0.2) -> Example:
    """One conversation. kind/effort are drawn uniformly when not given."""
    kind = kind or rng.choice(sorted(GENERATORS))
    effort = effort or rng.choice(EFFORTS)
    turns = ()
    if rng.random() < history_prob:
        earlier = GENERATORS[rng.choice(sorted(GENERATORS))](rng, effort)
        turns = ((earlier.question, earlier.final),)
    task = GENERATORS[kind](rng, effort)
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
