"""A scripted stand-in for the engine's ChatSession that gives every request the same final answer
(or the same broken one): what the server's own tests need when the model's words don't matter."""
from __future__ import annotations

from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta
from engine.generate import GenerationStats, SamplingParams
from engine.session import RenderedPrompt


class OneAnswerSession:
    """reply() writes `text` as the final answer and stops with `reason` ("return", or a
    "malformed: …" stop as the harmony parser reports a broken reply)."""

    context_length = 4096

    def __init__(self, text: str = "Hello", reason: str = "return"):
        self.text, self.reason = text, reason

    def sampling(self, temperature=None, top_p=None, seed=None):  # the runner asks; a script ignores it
        return SamplingParams(temperature=0.0)

    def count_tokens(self, text):
        return len(text.split())

    def render(self, messages, **options):
        return RenderedPrompt(list(range(len(messages) + 3)))

    def reply(self, messages, prompt=None, **kw):
        yield MessageStart("assistant", "final")
        yield TextDelta("final", self.text)
        yield MessageEnd("final")
        yield Stop(self.reason)
        prompt_tokens = len(prompt.ids) if prompt is not None else 3
        yield Done(GenerationStats(generated_tokens=len(self.text.split()), stop_reason="stop"), self.reason, 0,
                   prompt_tokens)
