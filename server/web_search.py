"""The browser behind OpenAI's built-in `web_search` tool, over the sources the server was given.

    python -m server --library ~/Notes --zim wikipedia_en_all_nopic.zim

Responses API: a request whose `tools` hold `{"type": "web_search"}` (or `web_search_preview`)
offers gpt-oss its own `browser` over those sources; each search/open/find it makes is answered on
the spot and shows up as a `web_search_call` output item (action `search` / `open_page` / `find`),
and the answer's citations (`【3†L9-L11】`) become `url_citation` annotations (file:// or zim://
URLs with #L9-L11). Chat Completions: `"web_search_options": {}` turns it on (OpenAI's own field for
its search models); the message carries the same citations as `annotations`. Nothing is ever
fetched from the web: with no sources, asking for web_search is a 400.

The calls run on a thread of their own (the engine thread only waits the milliseconds a search
takes), never on the thread that owns the model.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import secrets
import threading

from engine.browser import BrowserTool, url_citations
from engine.browser.spec import BROWSER
from engine.browser.turn import MAX_STEPS, BrowserStep
from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta
from engine.tools import ToolCall, tool_result_message
from server.errors import APIError, bad_request
from server.openai_format import engine_options

WEB_SEARCH_TYPES = ("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11")
KEPT_TOOLS = 200  # browser states kept for previous_response_id (cursors go on across turns)


class Sources:
    """The server's backends (opened once at start) and the browser state of recent responses."""

    def __init__(self, backends: list):
        self.backends = list(backends)
        self._tools: collections.OrderedDict[str, BrowserTool] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="browser")

    def tool(self, count_tokens, previous: str | None = None) -> BrowserTool:
        for b in self.backends:  # files changed since the last request: re-index them in the background
            if hasattr(b, "refresh_if_stale"):
                b.refresh_if_stale()
        with self._lock:
            if previous and previous in self._tools:
                return self._tools[previous]
        return BrowserTool(self.backends, count_tokens)

    def keep(self, response_id: str, tool: BrowserTool) -> None:
        with self._lock:
            self._tools[response_id] = tool
            while len(self._tools) > KEPT_TOOLS:
                self._tools.popitem(last=False)

    def run(self, tool: BrowserTool, call: ToolCall) -> str:
        """One call on the browser's own thread (this one only waits for it)."""
        return self._pool.submit(tool.run, call.recipient, call.arguments).result()


def split_tools(tools) -> tuple[list | None, bool]:
    """Responses `tools` -> (the other tools, whether web_search was asked for)."""
    if not isinstance(tools, list):
        return tools, False
    rest = [t for t in tools if not (isinstance(t, dict) and t.get("type") in WEB_SEARCH_TYPES)]
    return (rest if rest or len(rest) == len(tools) else None), len(rest) != len(tools)


def check_sources(sources: Sources | None, param: str) -> None:
    if sources is None or not sources.backends:
        raise bad_request("This server has no sources to search: start it with --library FOLDER or --zim FILE "
                          "(nothing is searched on the web).", param, "no_search_sources")


def call_item(step: BrowserStep) -> dict:
    """A web_search_call output item for one browser step."""
    a, page_url = step.call.parsed, _page_url(step)
    if step.action == "search" and a is not None:
        action = {"type": "search", "query": a.query}
    elif step.action == "find" and a is not None:
        action = {"type": "find", "pattern": a.pattern, "url": page_url}
    else:
        action = {"type": "open_page", "url": page_url}
    status = "failed" if step.cursor is None else "completed"
    return {"type": "web_search_call", "id": "ws_" + secrets.token_hex(12), "status": status, "action": action}


def _page_url(step: BrowserStep) -> str | None:
    first = step.output.split("\n", 1)[0]
    if step.cursor is None or not first.endswith(")") or " (" not in first:
        return None
    return first.rsplit(" (", 1)[1][:-1]


def annotations(text: str, tool: BrowserTool | None) -> list[dict]:
    return url_citations(text, tool) if tool is not None else []


def chat_annotations(text: str, tool: BrowserTool | None) -> list[dict]:
    """Chat Completions' shape: {"type": "url_citation", "url_citation": {...}}."""
    return [{"type": "url_citation", "url_citation": {k: v for k, v in a.items() if k != "type"}}
            for a in annotations(text, tool)]


def serve(runner, job) -> None:
    """Answer `job` with the browser on (runner._serve's browsing twin, on the engine thread): each
    reply that ends in a browser call is answered and the model goes on, up to MAX_STEPS calls.
    The client sees one reply: the calls' Stop/Done stay inside; one Done at the end sums them."""
    session, tool, sources = runner.session, job.browser, job.sources
    messages = list(job.messages)
    try:
        options = engine_options(job.extra)  # tools, tool_choice, answer_format: the engine's types
        prompt = session.render(messages, effort=job.effort, developer=job.developer, browser=tool.source_names,
                                **options)
    except ValueError as e:
        raise APIError(400, str(e)) from None
    context = session.context_length
    if len(prompt.ids) >= context:
        raise APIError(413, f"The messages are {len(prompt.ids)} tokens, more than this model's context of "
                            f"{context} tokens; shorten them.", code="context_length_exceeded")
    sampling = session.sampling(job.temperature, job.top_p, job.seed)
    budget = job.max_tokens or context
    generated, last = 0, None
    for step in range(MAX_STEPS + 2):
        call, parts = None, []
        room = max(1, min(budget - generated, context - len(prompt.ids)))
        reply = session.reply(messages, sampling=sampling, max_tokens=room, cancel=job.cancel, prompt=prompt) \
            if step == 0 else session.reply(messages, effort=job.effort, developer=job.developer, sampling=sampling,
                                            max_tokens=room, cancel=job.cancel, browser=tool.source_names, **options)
        for ev in reply:
            if isinstance(ev, ToolCall) and ev.recipient.startswith(BROWSER + "."):
                call = ev
                continue
            if isinstance(ev, Done):
                generated += ev.stats.generated_tokens
                last = ev
                continue
            if isinstance(ev, Stop) and ev.reason == "call" and call is not None:
                continue
            _remember(ev, messages, parts)
            job.put(ev)
        if call is None or job.cancel.is_set() or step > MAX_STEPS or generated >= budget:
            break
        options.pop("tool_choice", None)  # a forced call is the first one only, as in OpenAI's API
        output = call.error or (f"That is {MAX_STEPS} browser calls in one answer; answer with what you have "
                                "found." if step >= MAX_STEPS else sources.run(tool, call))
        cursor = tool.next_cursor - 1 if output.startswith(f"[{tool.next_cursor - 1}] ") else None
        messages += [call.message, tool_result_message(call, output)]
        job.put(BrowserStep(call, output, cursor))
    job.browsed = messages
    if last is not None:
        stats = dataclasses.replace(last.stats, generated_tokens=generated)
        done = dataclasses.replace(last, stats=stats)
        runner.last_done = done
        job.put(done)


def _remember(ev, messages: list[dict], parts: list) -> None:
    """Keep the reply's own messages (analysis, preambles, the answer) in `messages`, as harmony
    needs them for the next reply of the same turn. parts: [MessageStart, text, ...] of the open one."""
    if isinstance(ev, MessageStart):
        parts.clear()
        parts.append(ev)
    elif isinstance(ev, TextDelta) and parts:
        parts.append(ev.text)
    elif isinstance(ev, MessageEnd) and parts and parts[0].recipient is None:
        messages.append({"role": "assistant", "channel": parts[0].channel, "content": "".join(parts[1:])})
        parts.clear()


# ---------------------------------------------------------------- the routes' hooks (server/app.py)


def responses_browser(browsing: bool, body: dict, sources: Sources | None, job, builder, count_tokens):
    """Turn web_search on for a Responses job: its browser (continuing a previous response's
    pages) and the builder's citations. None when the request didn't ask for it."""
    if not browsing:
        return None
    check_sources(sources, "tools")
    job.browser = sources.tool(count_tokens, body.get("previous_response_id"))
    job.sources = sources
    job.extra["tool_choice"] = forced_choice(body.get("tool_choice"), job.extra.get("tools"))
    builder.annotate = lambda text: annotations(text, job.browser)
    return job.browser


def chat_browser(body: dict, sources: Sources | None, job, count_tokens):
    """Chat Completions: `web_search_options` (an object) turns the browser on for this job."""
    options = body.get("web_search_options")
    if options is None:
        return None
    if not isinstance(options, dict):
        raise bad_request("`web_search_options` must be an object ({} is enough).", "web_search_options")
    check_sources(sources, "web_search_options")
    job.browser, job.sources = sources.tool(count_tokens), sources
    return job.browser


def forced_choice(choice, functions):
    """tool_choice {"type": "web_search"} (or "required" with no functions) forces the first reply
    to be a browser search (constrained decoding); anything else is left as it was."""
    from engine.tools import ToolChoice

    if (isinstance(choice, dict) and choice.get("type") in WEB_SEARCH_TYPES) or (choice == "required" and not functions):
        return ToolChoice(BROWSER, "search")
    return choice


def with_chat_annotations(completion: dict, reader, tool) -> dict:
    if tool is not None:
        completion["choices"][0]["message"]["annotations"] = chat_annotations(reader.content, tool)
    return completion
