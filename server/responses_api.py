"""POST /v1/responses: OpenAI's Responses API over the engine, with reasoning as its own items.

`previous_response_id` continues a conversation the server still holds (for its lifetime): the
earlier input and output are put back in front of the new input, so the session's prefix cache
serves the follow-up without prefilling it again.
"""

from __future__ import annotations

import secrets
import time

from server.convert import effort_of, text_of, tool_call, tool_result
from server.errors import APIError, bad_request
from server.reply import Piece, ReplyReader
from server.requests import check_model, flat_tools, logprobs_of, sampling_job, text_format, tool_choice_of

MAX_STORED = 1000  # responses kept for previous_response_id (oldest forgotten first)


class ResponseStore:
    """The responses this server made (unless `store: false`): id -> (the conversation as harmony
    messages, call id -> function name for every call in it, the response object)."""

    def __init__(self):
        self._items: dict[str, tuple[list[dict], dict, dict]] = {}

    def _held(self, response_id: str, param: str | None) -> tuple:
        if response_id not in self._items:
            raise APIError(404, f"No response {response_id[:100]!r} is held by this server (responses last while "
                                "it runs, unless sent with store: false); send the whole conversation instead.",
                           param, "response_not_found")
        return self._items[response_id]

    def get(self, response_id: str) -> tuple[list[dict], dict]:
        messages, names, _ = self._held(response_id, "previous_response_id")
        return list(messages), dict(names)

    def response(self, response_id: str) -> dict:
        return self._held(response_id, None)[2]

    def delete(self, response_id: str) -> None:
        self._held(response_id, None)
        del self._items[response_id]

    def put(self, response_id: str, messages: list[dict], names: dict, response: dict) -> None:
        self._items[response_id] = (messages, names, response)
        while len(self._items) > MAX_STORED:
            self._items.pop(next(iter(self._items)))


def input_messages(value, names: dict) -> list[dict]:
    """Responses `input` (a string or a list of items) -> harmony messages; names maps call ids."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise bad_request("`input` must be a string or a list of input items.", "input")
    out: list[dict] = []
    for i, item in enumerate(value):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request("Each input item must be an object.", param)
        kind = item.get("type", "message")
        if kind == "message":
            role, text = item.get("role"), text_of(item.get("content"), f"{param}.content")
            if role in ("system", "developer"):
                out.append({"role": "developer", "content": text})
            elif role in ("user", "assistant"):
                out.append({"role": role, "content": text} if role == "user" else
                           {"role": "assistant", "channel": "final", "content": text})
            else:
                raise bad_request(f"Unknown role {role!r}.", f"{param}.role")
        elif kind == "reasoning":
            parts = item.get("content") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            if text:
                out.append({"role": "assistant", "channel": "analysis", "content": text})
        elif kind == "function_call":
            names[item.get("call_id")] = item.get("name")
            out.append(tool_call(str(item.get("name")), item.get("arguments") or "{}"))
        elif kind == "function_call_output":
            name = names.get(item.get("call_id"))
            if not name:
                raise bad_request("A function_call_output's call_id must match an earlier function_call.",
                                  f"{param}.call_id", "unknown_call_id")
            output = item.get("output")
            out.append(tool_result(name, output if isinstance(output, str) else text_of(output, param)))
        elif kind == "web_search_call":
            continue  # a search this server ran, sent back by a client: the answer after it carries what it found
        else:
            raise bad_request(f"Input items of type {kind!r} are not supported.", param)
    return out


def parse(body: dict, names, store: ResponseStore):
    """Request body (checked against server.schemas.ResponsesRequest) -> (job, stream, the conversation
    so far, call id -> function name). `names`: the model's id and aliases."""
    check_model(body, names)
    previous = body.get("previous_response_id")
    history, names = store.get(previous) if previous else ([], {})
    messages = history + input_messages(body.get("input"), names)
    developer_parts = [m["content"] for m in messages if m["role"] == "developer"]
    messages = [m for m in messages if m["role"] != "developer"]
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("`instructions` must be a string.", "instructions")
    developer = "\n\n".join([p for p in [instructions, *developer_parts] if p]) or None
    reasoning = body.get("reasoning") or {}
    job = sampling_job(body, messages, developer, effort_of(reasoning.get("effort"), "reasoning.effort"),
                       ("max_output_tokens",))
    job.logprobs = logprobs_of(body)
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    job.extra = {"tools": flat_tools(body.get("tools")), "tool_choice": tool_choice_of(body.get("tool_choice")),
                 "response_format": text_format(text.get("format"))}
    return job, bool(body.get("stream")), messages, names


class ResponseBuilder:
    """Turns reply pieces into output items and, for streaming, Responses events."""

    def __init__(self, model_id: str, body: dict, reader: ReplyReader, count_tokens):
        self.id = "resp_" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model, self.body, self.reader, self.count_tokens = model_id, body, reader, count_tokens
        self.output: list[dict] = []
        self.open_kind: str | None = None
        self.seq = 0
        self.annotate = None  # text -> url_citation annotations, when web_search is on (server.web_search)

    # -- the response object

    def response(self, status: str) -> dict:
        r, b = self.reader, self.body
        incomplete = r.done is not None and r.finish_reason == "length"
        if status == "completed" and incomplete:
            status = "incomplete"
        usage = None
        if r.done is not None:
            u = r.usage(self.count_tokens)
            usage = {"input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"],
                     "total_tokens": u["total_tokens"],
                     "input_tokens_details": {"cached_tokens": u["prompt_tokens_details"]["cached_tokens"],
                                              "cache_write_tokens": 0},
                     "output_tokens_details": {"reasoning_tokens":
                                               u["completion_tokens_details"]["reasoning_tokens"]}}
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status,
                "model": self.model, "output": self.output, "usage": usage, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
                "instructions": b.get("instructions"), "previous_response_id": b.get("previous_response_id"),
                "reasoning": {"effort": (b.get("reasoning") or {}).get("effort", "medium"), "summary": None},
                "tools": b.get("tools") or [], "tool_choice": b.get("tool_choice", "auto"),
                "parallel_tool_calls": False, "temperature": b.get("temperature"), "top_p": b.get("top_p"),
                "max_output_tokens": b.get("max_output_tokens"), "text": b.get("text") or {"format": {"type": "text"}},
                "metadata": b.get("metadata") or {}, "store": self.stored}

    @property
    def stored(self) -> bool:
        """Kept for previous_response_id and GET /v1/responses/{id} unless the client said store: false."""
        return self.body.get("store") is not False

    def call_names(self, earlier: dict) -> dict:
        """Call id -> function name for the conversation so far: the calls the client sent and the ones
        this response made, so a function_call_output sent next with previous_response_id finds its call."""
        return {**earlier, **{item["call_id"]: item["name"] for item in self.output if item["type"] == "function_call"}}

    def conversation(self, messages: list[dict]) -> list[dict]:
        """The conversation to keep for previous_response_id: the input plus this output."""
        out = list(messages)
        for item in self.output:
            if item["type"] == "reasoning":
                out.append({"role": "assistant", "channel": "analysis", "content": item["content"][0]["text"]})
            elif item["type"] == "message":
                out.append({"role": "assistant", "channel": "final", "content": item["content"][0]["text"]})
            elif item["type"] == "web_search_call":
                continue  # its call and page are in the browsing job's own conversation (app.py keeps that)
            else:
                out.append(tool_call(item["name"], item["arguments"]))
        return out

    # -- items and events

    def event(self, kind: str, **fields) -> dict:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def feed(self, piece: Piece) -> list[dict]:
        if piece.kind == "web_search":
            return self.close() + self._web_search(piece)
        kind = {"content": "message", "reasoning": "reasoning"}.get(piece.kind, "function_call")
        events = []
        if piece.kind == "call" or kind != self.open_kind:
            events += self.close()
            events += self._open(kind, piece)
        item, index = self.output[-1], len(self.output) - 1
        if piece.kind in ("content", "reasoning") and piece.text:
            item["content"][0]["text"] += piece.text
            name = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
            extra = {"logprobs": piece.logprobs or []} if kind == "message" else {}
            if piece.logprobs:
                item["content"][0]["logprobs"] += piece.logprobs
            events.append(self.event(name, item_id=item["id"], output_index=index, content_index=0,
                                     delta=piece.text, **extra))
        elif piece.kind == "arguments":
            item["arguments"] += piece.text
            events.append(self.event("response.function_call_arguments.delta", item_id=item["id"],
                                     output_index=index, delta=piece.text))
        return events

    def _web_search(self, piece: Piece) -> list[dict]:
        """A web_search_call item, whole: added, searching, completed, done (the call is already answered)."""
        from server.web_search import call_item

        item = call_item(self.reader.searches[piece.call])
        self.output.append(item)
        index, stage = len(self.output) - 1, {**item, "status": "in_progress"}
        return [self.event("response.output_item.added", output_index=index, item=stage),
                self.event("response.web_search_call.in_progress", output_index=index, item_id=item["id"]),
                self.event("response.web_search_call.searching", output_index=index, item_id=item["id"]),
                self.event("response.web_search_call.completed", output_index=index, item_id=item["id"]),
                self.event("response.output_item.done", output_index=index, item=item)]

    def _open(self, kind: str, piece: Piece) -> list[dict]:
        self.open_kind = kind
        if kind == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            if self.reader.logprobs is not None:  # asked for log-probabilities
                part["logprobs"] = []
            item = {"type": "message", "id": "msg_" + secrets.token_hex(12), "status": "in_progress",
                    "role": "assistant", "content": [part]}
        elif kind == "reasoning":
            item = {"type": "reasoning", "id": "rs_" + secrets.token_hex(12), "summary": [],
                    "content": [{"type": "reasoning_text", "text": ""}]}
        else:
            call, call_id = self.reader.calls[piece.call], self.reader.call_ids[piece.call]
            item = {"type": "function_call", "id": "fc_" + secrets.token_hex(12), "call_id": call_id,
                    "name": call.name, "arguments": "", "status": "in_progress"}
        self.output.append(item)
        index = len(self.output) - 1
        shown = {**item, "content": [{**item["content"][0]}]} if "content" in item else dict(item)
        events = [self.event("response.output_item.added", output_index=index, item=shown)]
        if "content" in item:
            events.append(self.event("response.content_part.added", item_id=item["id"], output_index=index,
                                     content_index=0, part=dict(item["content"][0])))
        return events

    def close(self) -> list[dict]:
        """Finish the open item (its done events); nothing when none is open."""
        if self.open_kind is None:
            return []
        kind, self.open_kind = self.open_kind, None
        item, index = self.output[-1], len(self.output) - 1
        events = []
        if kind == "message":
            item["status"] = "completed"
            for i, note in enumerate(self.annotate(item["content"][0]["text"]) if self.annotate else []):
                item["content"][0]["annotations"].append(note)
                events.append(self.event("response.output_text.annotation.added", item_id=item["id"],
                                         output_index=index, content_index=0, annotation_index=i, annotation=note))
            events.append(self.event("response.output_text.done", item_id=item["id"], output_index=index,
                                     content_index=0, text=item["content"][0]["text"],
                                     logprobs=item["content"][0].get("logprobs", [])))
        elif kind == "reasoning":
            events.append(self.event("response.reasoning_text.done", item_id=item["id"], output_index=index,
                                     content_index=0, text=item["content"][0]["text"]))
        else:
            item["status"] = "completed"
            events.append(self.event("response.function_call_arguments.done", item_id=item["id"],
                                     output_index=index, name=item["name"], arguments=item["arguments"]))
        if "content" in item:
            events.append(self.event("response.content_part.done", item_id=item["id"], output_index=index,
                                     content_index=0, part=dict(item["content"][0])))
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events
