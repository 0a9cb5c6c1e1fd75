"""A chat session: the model, its KV cache across turns, and harmony in and out.

    session = ChatSession(model, enc, context_length=8192)
    for ev in session.reply(messages, effort="medium"):
        ...  # engine.events: ContextTrimmed?, PrefillProgress*, MessageStart/TextDelta/MessageEnd..., Stop, Done

`reply` gets the whole conversation each time. The session's prompt cache (engine/prompt_cache.py)
holds several conversations' KV caches; the new prompt resumes from the longest prefix any of them
(or a file on disk, engine/prompt_store.py) still holds: harmony drops a finished turn's analysis,
so the history diverges from what was generated right after the previous prompt. Sliding-window
layers can't be trimmed, so each conversation keeps snapshots at the end of each prompt (minus
its last token) and rewinds to the newest one that is still a prefix; only the tokens after it
are prefilled. Regenerate, edit-and-resend and switching conversations fall out of the same rule.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

from engine.answer_format import AnswerFormat
from engine.events import ContextTrimmed, Done, Event, PrefillProgress, PromptTooLong, Stop, TokenLogprobs
from engine.generate import Generation, GenerationStats, SamplingParams
from engine.harmony import StreamParser, kept_messages, render_prompt
from engine.prompt_cache import MAX_SNAPSHOTS, PromptCache, common_prefix
from engine.prompt_fit import fit_prompt
from engine.tokenizer import special_id
from engine.structured import reply_setup

PREFILL_CHUNK = 512
PROGRESS_AFTER_S = 1.0  # a prompt read faster than this shows no progress


@dataclass
class RenderedPrompt:
    """A prompt rendered whole by ChatSession.render; reply(prompt=...) answers it as it is."""

    ids: list[int]
    tools: list | None = None
    constraint: object = None  # engine.structured.ReplyConstraint for tools / answer_format
    browser: bool = False  # the built-in browser is offered (its calls are checked, not refused)


class ChatSession:
    """The handle engine.open_chat returns: one per model, holding the KV cache between turns (not
    thread-safe: use it from the thread that opened it).

    What callers need besides reply(): `name` (the folder's name unless the opener chose one),
    `enc` (the tokenizer), `context_length`, `greedy` (the folder asks for greedy decoding),
    `sampling()` (the one place sampling is decided) and `count_tokens()`.
    """

    def __init__(self, model, enc, context_length: int = 8192, prefill_chunk: int = PREFILL_CHUNK,
                 defaults: SamplingParams = SamplingParams(), greedy: bool = False, wired_limit=None,
                 name: str = "model", prompt_cache: PromptCache | None = None):
        self.model, self.enc, self.name = model, enc, name
        self.context_length = context_length
        self.prefill_chunk = prefill_chunk  # the memory plan shrinks it for long contexts
        self.defaults, self.greedy = defaults, greedy  # the model folder's generation defaults
        # Held while answering (engine.memory.wired_limit when opened by engine.open_chat).
        self.wired_limit = wired_limit or contextlib.nullcontext
        self.plan = None  # engine.memory.Plan when opened by engine.open_chat
        # The conversations' caches; without a memory plan, only their number is bounded.
        self.prompt_cache = prompt_cache or PromptCache(model.make_cache)
        self.conversation = None  # engine.prompt_cache.Conversation answered last
        self.start_id = special_id(enc, "<|start|>")
        self.stop_ids = frozenset(special_id(enc, n) for n in ("<|return|>", "<|call|>"))

    def _last_message_start(self, ids: list[int]) -> int:
        return _last_start(ids, self.start_id)

    # The conversation in use: its cache, the ids it holds (in order) and its snapshots.
    @property
    def cache(self):
        return None if self.conversation is None else self.conversation.cache

    @property
    def held(self) -> list[int]:
        return [] if self.conversation is None else self.conversation.held

    @held.setter
    def held(self, ids: list[int]) -> None:
        self.conversation.held = ids

    @property
    def snapshots(self) -> list:
        return [] if self.conversation is None else self.conversation.snapshots

    def reset(self) -> None:
        """Forget the cached conversations in memory (the next reply prefills from scratch, unless
        the prompt cache's disk store holds it)."""
        self.prompt_cache.clear()
        self.conversation = None

    def close(self) -> None:
        """The app quits: write the conversations in memory to the disk store, if any, and wait."""
        self.prompt_cache.flush(wait=True)
        if self.prompt_cache.store is not None:
            self.prompt_cache.store.close()

    # ------------------------------------------------------------------ prompt fitting

    def fit_prompt(self, messages: list[dict], max_tokens: int, **render):
        """(ids, None | ContextTrimmed | PromptTooLong): see engine.prompt_fit.fit_prompt."""
        return fit_prompt(messages, self.enc, self.context_length, max_tokens, **render)

    def render(self, messages: list[dict], effort: str = "medium", developer: str | None = None,
               date: str | None = None, identity: str | None = None, tools: list | None = None,
               python: bool = False, tool_choice=None, answer_format: AnswerFormat | None = None,
               final_only: bool = False, browser: list[str] | None = None) -> RenderedPrompt:
        """The whole prompt as reply() would render it (no turn dropped), its tools and constraint:
        for a caller that checks the length itself (the local server's 413) and then passes it to
        reply(prompt=...), so the prompt is rendered and the grammar compiled once. Raises
        ValueError (one sentence) for bad tools, tool_choice or answer_format. One reply per render:
        the constraint keeps the answer's state."""
        tools, constraint, render = self._setup(effort, developer, date, identity, tools, python, tool_choice,
                                                answer_format, final_only, browser)
        return RenderedPrompt(render_prompt(kept_messages(messages), self.enc, **render), tools, constraint,
                              browser is not None)

    def _setup(self, effort, developer, date, identity, tools, python, tool_choice, answer_format, final_only,
               browser=None):
        """(tools, constraint, render_prompt's arguments) for one reply."""
        tools, constraint, extra = reply_setup(self.enc, tools, python, tool_choice, answer_format, final_only,
                                               browser=browser is not None)
        render = {"effort": effort, "date": date, "developer": developer, **extra}
        if browser is not None:  # the names of the sources the built-in browser reads (engine.browser)
            render["browser"] = list(browser)
        if identity:
            render["identity"] = identity
        return tools, constraint, render

    # ------------------------------------------------------------------ cache reuse

    def _rewind(self, ids: list[int], owner: str | None = None) -> int:
        """Take the cached conversation that holds the longest prefix of ids[:-1], rewound (or forked)
        to it; returns how many ids it holds."""
        self.conversation, reused = self.prompt_cache.resume(ids, owner)
        return reused

    def _snapshot_at(self, ids: list[int], position: int) -> None:
        """Called by the prefill when the cache holds ids[:position]: remember it, keep a snapshot."""
        self.conversation.add_snapshot(ids, position)

    def _forget_current(self) -> None:
        """The cache can't be accounted for: drop it (never reuse what we can't trust)."""
        self.prompt_cache.discard(self.conversation)
        self.conversation = None

    def _generation(self, ids: list[int], start: int, marks, **kw) -> Generation:
        """The one prefill/decode pipeline for ids[start:], snapshotting at `marks` and at ids[:-1]."""
        splits = tuple(m - start for m in marks if start < m < len(ids) - 1)
        return Generation(self.model, ids[start:], self.cache, prefill_chunk=self.prefill_chunk, splits=splits,
                          on_split=lambda n: self._snapshot_at(ids, start + n), **kw)

    def prepare(self, ids: list[int], cancel: threading.Event | None = None,
                marks: tuple[int, ...] = ()) -> int:
        """Make the cache hold exactly ids[:-1], reusing what it can. Returns the reused count.

        The last prompt token is always fed by the generation so that it yields the first token.
        A snapshot is kept at ids[:-1] and at each position in `marks` (e.g. where the last user
        message starts, so that editing it reuses everything before).
        """
        start = self._rewind(ids)
        for _ in self._generation(ids, start, marks, cancel=cancel).prefill_steps():
            pass
        self.held = list(ids[:self.cache.offset])
        return start

    # ------------------------------------------------------------------ one turn

    def sampling(self, temperature: float | None = None, top_p: float | None = None,
                 seed: int | None = None) -> SamplingParams:
        """The one place sampling is decided, for the window, the server and the terminal chat alike:
        the caller's settings (None: not set) over the folder's defaults, and greedy whatever was
        asked when the folder says so (the demo model: sampled, a model that small goes wrong)."""
        d = self.defaults
        seed = d.seed if seed is None else seed
        if self.greedy:
            return SamplingParams(temperature=0.0, top_p=d.top_p, min_p=d.min_p, seed=seed)
        return SamplingParams(temperature=d.temperature if temperature is None else temperature,
                              top_p=d.top_p if top_p is None else top_p, min_p=d.min_p, seed=seed)

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes as ordinary text (no control tokens)."""
        return len(self.enc.encode_ordinary(text)) if text else 0

    def reply(self, messages: list[dict], effort: str = "medium", developer: str | None = None,
              sampling: SamplingParams | None = None, max_tokens: int = 2048,
              cancel: threading.Event | None = None, date: str | None = None, identity: str | None = None,
              tools: list | None = None, python: bool = False, tool_choice=None,
              answer_format: AnswerFormat | None = None, final_only: bool = False, prompt: RenderedPrompt | None = None,
              browser: list[str] | None = None, owner: str | None = None):
        """Generate the assistant's answer to `messages` (ending with the user's message or a tool result).

        Yields ContextTrimmed (if needed), PrefillProgress (only once reading the prompt has taken
        more than PROGRESS_AFTER_S), then harmony parser events, then Done. Model output never
        raises: a malformed reply ends with Stop("malformed: ..."). sampling=None: self.sampling().
        With tools (engine.tools.Tool; tool_choice an engine.tools.ToolChoice), a reply that calls one yields a
        ToolCall then Stop("call"): append `call.message` and the tool's answer
        (tool_result_message) and call reply again; the cache carries on from the call.
        answer_format: an engine.answer_format.AnswerFormat: the final answer is held to its schema.
        prompt: from render(), answered as it is (no turn dropped; the caller made sure it fits) and
        the rendering arguments are unused.
        browser: offer the built-in browser over these named sources; its calls come as ToolCalls
        to "browser.search"/"browser.open"/"browser.find" (engine.browser.BrowserTool runs them).
        owner: who asks ("window", "api"): the prompt cache evicts each owner's newest conversation last.
        """
        started = time.perf_counter()
        if prompt is not None:
            with self.wired_limit():
                yield from self._answer(prompt.ids, started, sampling or self.sampling(), max_tokens, cancel,
                                        prompt.tools, prompt.constraint, prompt.browser, owner)
            return
        tools, constraint, render = self._setup(effort, developer, date, identity, tools, python, tool_choice,
                                                answer_format, final_only, browser)
        ids, trimmed = self.fit_prompt(messages, max_tokens, **render)
        if trimmed:
            yield trimmed
        if isinstance(trimmed, PromptTooLong):  # refused before any prefill: the caller says why
            yield Done(GenerationStats(stop_reason="too_long"), "too_long", 0, trimmed.prompt_tokens)
            return
        with self.wired_limit():
            yield from self._answer(ids, started, sampling or self.sampling(), max_tokens, cancel, tools, constraint,
                                    browser is not None, owner)

    def _answer(self, ids, started, sampling, max_tokens, cancel, tools=None, constraint=None, browser=False,
                owner=None):
        reused = self._rewind(ids, owner)
        room = max(1, self.context_length - len(ids))
        gen = self._generation(ids, reused, (self._last_message_start(ids),), sampling=sampling,
                               max_tokens=min(max_tokens, room), stop_ids=self.stop_ids, cancel=cancel,
                               constraint=constraint)
        parser = StreamParser(self.enc, tools=tools, browser=browser)
        body = len(ids) - 1 - reused
        for done in gen.prefill_steps():
            if time.perf_counter() - started > PROGRESS_AFTER_S:
                yield PrefillProgress(done, body)
        if self.cache.offset != len(ids) - 1:  # cancelled while prefilling: keep what is in
            self.held = list(ids[:self.cache.offset])
            stats = GenerationStats(prompt_tokens=len(ids) - reused, stop_reason="cancelled")
            yield from parser.finish("cancelled")
            yield Done(stats, "cancelled", reused, len(ids), 0.0)
            return

        self.held = list(ids)
        stop: Stop | None = None
        ttft = 0.0
        tokens = iter(gen)
        try:
            for token in tokens:
                if not ttft:
                    ttft = time.perf_counter() - started
                self.held.append(token)
                if gen.token_logprobs is not None:
                    logprob, top = gen.token_logprobs
                    yield TokenLogprobs(token, logprob, tuple(top))
                for ev in parser.feed(token):
                    yield ev
                    if isinstance(ev, Stop):
                        stop = ev
                if stop is not None:
                    break
        finally:
            tokens.close()  # its cleanup lets the queued decode step land in the cache
            if self.cache.offset != len(self.held):  # never trust a cache we can't account for
                self._forget_current()
        if stop is None:
            reason = {"stop": "return", "max_tokens": "max_tokens"}.get(gen.stats.stop_reason, "cancelled")
            events = parser.finish(reason)
            yield from events
            stop = events[-1] if events else Stop(reason)
        yield Done(gen.stats, stop.reason, reused, len(ids), ttft)


def _last_start(ids: list[int], start_id: int) -> int:
    """Index of the last <|start|> before the prompt's closing `<|start|>assistant`."""
    for i in range(len(ids) - 3, -1, -1):
        if ids[i] == start_id:
            return i
    return 0


__all__ = ["ChatSession", "ContextTrimmed", "Done", "Event", "PrefillProgress", "PromptTooLong", "RenderedPrompt",
           "common_prefix"]
