"""Fitting a conversation into the model's context, in one pass over the history.

Every part of the prompt counts: the system message, the developer instructions, each message and
the closing `<|start|>assistant`, plus the room kept for the answer. When the conversation is too
long the oldest whole turns are dropped (a turn = a user message and the replies after it). The
last turn (from the last user message on) is never cut: when it cannot fit even alone, nothing is
rendered and a `PromptTooLong` says how long each part is, so the caller can tell the user before
anything is generated.

Linear: each message is tokenized once (and its size remembered for the next reply), the cut is
found from running sums, then the chosen slice is rendered once (the old loop re-rendered the
whole history per dropped turn: quadratic).
"""

from __future__ import annotations

from engine.events import ContextTrimmed, PromptTooLong
from engine.harmony import kept_messages, render_message, render_prompt


def prompt_budget(context_length: int, max_tokens: int) -> tuple[int, int]:
    """(tokens the prompt may use, tokens kept for the answer): at most half goes to the answer."""
    answer = min(max_tokens, context_length // 2)
    return context_length - answer, answer


def fit_prompt(messages: list[dict], enc, context_length: int, max_tokens: int,
               **render) -> tuple[list[int], ContextTrimmed | PromptTooLong | None]:
    """Render `messages` to fit `context_length` minus the answer's room.

    Returns (ids, None) when everything fits, (ids, ContextTrimmed) when old turns were dropped,
    ([], PromptTooLong) when even the last turn can't fit. `render` goes to render_prompt.
    """
    budget, answer = prompt_budget(context_length, max_tokens)
    messages = kept_messages(messages)
    fixed = len(render_prompt([], enc, **render))  # system + developer + `<|start|>assistant`
    costs = [_message_tokens(enc, m) for m in messages]
    total = fixed + sum(costs)
    if total <= budget:
        ids = render_prompt(messages, enc, **render)
        if len(ids) <= budget:
            return ids, None

    # cut points: where a turn begins. The last one (the last user message) is never passed.
    starts = [0] + [i for i, m in enumerate(messages) if i > 0 and m.get("role") == "user"]
    # Once trimming, go well below the budget so the next turns keep a stable prefix (and reuse
    # the cache) instead of dropping one turn, and re-prefilling, every time.
    target = budget * 3 // 4
    suffix = _suffix_sums(costs)
    fits_target = [s for s in starts if fixed + suffix[s] <= target]
    fits_budget = [s for s in starts if fixed + suffix[s] <= budget]
    first = (fits_target or fits_budget or starts[-1:])[0]
    for cut in (s for s in starts if s >= first):  # normally one render: the sums equal its length
        ids = render_prompt(messages[cut:], enc, **render)
        if len(ids) <= budget:
            return ids, (ContextTrimmed(cut) if cut else None)
    return [], _too_long(enc, messages[starts[-1]:], len(ids), fixed, budget, context_length, answer, render)


def _too_long(enc, last_turn, prompt_tokens, fixed, budget, context_length, answer, render) -> PromptTooLong:
    bare = len(render_prompt([], enc, **dict(render, developer=None)))
    instructions = fixed - bare
    message_tokens = prompt_tokens - fixed
    if fixed > budget:
        culprit = "instructions"
    elif instructions and bare + message_tokens <= budget:
        culprit = "both"  # each fits alone, not together
    else:
        culprit = "message"
    return PromptTooLong(culprit, prompt_tokens, message_tokens, sum(len(m.get("content") or "") for m in last_turn),
                         instructions, bare, budget, context_length, answer)


_sizes: dict[tuple, int] = {}  # (tokenizer, role, channel, hash, length of text) -> rendered length
_MAX_SIZES = 1 << 16


def _message_tokens(enc, m: dict) -> int:
    """Rendered length of one message. The history is sent whole before every reply: remembering
    sizes means only new messages are tokenized. Keyed by the text's hash, not the text (no copies
    kept); a collision could only misjudge the cut, and the final render is checked exactly."""
    role, content = m.get("role", ""), m.get("content") or ""
    channel = (m.get("channel") or "final") if role == "assistant" else None
    key = (id(enc), role, channel, hash(content), len(content))
    size = _sizes.get(key)
    if size is None:
        if len(_sizes) >= _MAX_SIZES:
            _sizes.clear()
        size = _sizes[key] = len(render_message(enc, role, content, channel))
    return size


def forget_message_sizes() -> None:
    """Drop the remembered message sizes (benchmarks time the first reply with this)."""
    _sizes.clear()


def _suffix_sums(costs: list[int]) -> list[int]:
    """suffix[i] = sum(costs[i:]), so the prompt from message i on costs fixed + suffix[i]."""
    out = [0] * (len(costs) + 1)
    for i in range(len(costs) - 1, -1, -1):
        out[i] = out[i + 1] + costs[i]
    return out
