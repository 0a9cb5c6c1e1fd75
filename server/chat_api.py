"""POST /v1/chat/completions: OpenAI's Chat Completions over the engine, streaming or not."""

from __future__ import annotations

import json
import secrets
import time

from server.convert import chat_messages, effort_of, stop_strings
from server.openai_format import openai_tool_call, openai_tool_call_opened
from server.reply import Piece, ReplyReader
from server.requests import check_model, logprobs_of, sampling_job


def parse(body: dict, names):
    """Request body (checked against server.schemas.ChatRequest) -> (job, stream, include_usage, stop
    strings). `names`: the model's id and aliases."""
    check_model(body, names)
    messages, developer = chat_messages(body.get("messages"))
    job = sampling_job(body, messages, developer, effort_of(body.get("reasoning_effort"), "reasoning_effort"),
                       ("max_tokens", "max_completion_tokens"))
    job.logprobs = logprobs_of(body)
    # read into the engine's types and checked on the engine thread (openai_format.engine_options,
    # engine.structured.reply_setup): a bad one is a 400 there
    job.extra = {"tools": body.get("tools"), "tool_choice": body.get("tool_choice"),
                 "response_format": body.get("response_format")}
    options = body.get("stream_options") or {}
    return job, bool(body.get("stream")), bool(options.get("include_usage")), stop_strings(body.get("stop"))


class ChatCompletion:
    """Builds the response objects of one completion (ids and timestamps fixed at the start)."""

    def __init__(self, model_id: str, reader: ReplyReader, count_tokens):
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model, self.reader, self.count_tokens = model_id, reader, count_tokens
        # A streamed text delta is these two around its delta: one json.dumps of the text per chunk.
        head, tail = self.chunk({"@": 0}).split('{"@": 0}')
        self._head, self._tail = "data: " + head, tail + "\n\n"

    def whole(self) -> dict:
        r = self.reader
        message = {"role": "assistant", "content": r.content if (r.content or not r.calls) else None,
                   "refusal": None}
        if r.reasoning:
            message["reasoning"] = message["reasoning_content"] = r.reasoning
        if r.calls:
            message["tool_calls"] = [openai_tool_call(c, i) for c, i in zip(r.calls, r.call_ids)]
        logprobs = None if r.logprobs is None else {"content": r.logprobs, "refusal": None}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "message": message, "finish_reason": r.finish_reason, "logprobs": logprobs}],
                "usage": r.usage(self.count_tokens)}

    def chunk(self, delta: dict, finish_reason: str | None = None, logprobs: list | None = None) -> str:
        shown = None if logprobs is None else {"content": logprobs, "refusal": None}
        return json.dumps({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "system_fingerprint": None,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                        "logprobs": shown}]})

    def piece_frame(self, piece: Piece) -> str:
        """The SSE frame (data: chunk) of one piece; the same JSON as chunk(delta(piece))."""
        if piece.logprobs is not None:  # asked for log-probabilities: the whole chunk, built as JSON
            return f"data: {self.chunk(self.delta(piece), logprobs=piece.logprobs)}\n\n"
        if piece.kind == "content":
            delta = '{"content": %s}' % json.dumps(piece.text)
        elif piece.kind == "reasoning":
            text = json.dumps(piece.text)
            delta = '{"reasoning": %s, "reasoning_content": %s}' % (text, text)
        else:
            delta = json.dumps(self.delta(piece))
        return self._head + delta + self._tail

    def delta(self, piece: Piece) -> dict:
        if piece.kind == "reasoning":
            return {"reasoning": piece.text, "reasoning_content": piece.text}
        if piece.kind == "content":
            return {"content": piece.text}
        if piece.kind == "call":
            call, call_id = self.reader.calls[piece.call], self.reader.call_ids[piece.call]
            return {"tool_calls": [openai_tool_call_opened(call, call_id, piece.call)]}
        return {"tool_calls": [{"index": piece.call, "function": {"arguments": piece.text}}]}

    def usage_chunk(self) -> str:
        return json.dumps({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "system_fingerprint": None, "choices": [],
                           "usage": self.reader.usage(self.count_tokens)})
