"""A scripted model: a ChatSession stand-in that renders each prompt with the real harmony renderer
and "generates" the next scripted reply, token by token, through the real stream parser.

    model = ScriptedSession(enc, ['<|channel|>analysis to=browser.search code<|message|>{"query": "x"}<|call|>',
                                  '<|channel|>final<|message|>It is 7.9 m 【1†L2】.<|return|>'])
"""

from __future__ import annotations

from engine.events import Done, Stop
from engine.generate import GenerationStats, SamplingParams
from engine.harmony import StreamParser, render_prompt
from engine.session import ChatSession


class ScriptedSession:
    """Stands in for engine.open_chat's handle: scripted replies, the real renderer and parser."""

    defaults = SamplingParams()
    sampling = ChatSession.sampling  # the one rule, not a copy of it
    count_tokens = ChatSession.count_tokens

    def __init__(self, enc, replies: list[str], context_length: int = 8192, name: str = "scripted"):
        self.enc, self.replies, self.context_length = enc, list(replies), context_length
        self.name, self.greedy = name, True
        self.prompts: list[list[int]] = []  # every prompt the "model" was given, rendered for real

    def reply(self, messages, effort="medium", browser=None, tools=None, cancel=None, prompt=None, developer=None, **_):
        ids = prompt.ids if prompt is not None else render_prompt(
            messages, self.enc, effort=effort, date="2026-12-07", browser=browser, tools=tools, developer=developer)
        self.prompts.append(ids)
        text = self.replies.pop(0)
        out = self.enc.encode(text, allowed_special="all")
        offered = prompt.browser if prompt is not None else browser is not None
        parser = StreamParser(self.enc, tools=tools, browser=offered)
        stop = None
        for token in out:
            for ev in parser.feed(token):
                yield ev
                if isinstance(ev, Stop):
                    stop = ev
        yield Done(GenerationStats(generated_tokens=len(out)), stop.reason if stop else "return", 0, len(ids))

    def render(self, messages, effort="medium", developer=None, browser=None, tools=None, **_):
        from engine.session import RenderedPrompt

        return RenderedPrompt(render_prompt(messages, self.enc, effort=effort, date="2026-12-07", browser=browser,
                                            tools=tools, developer=developer), browser=browser is not None)

    def reset(self):
        pass
