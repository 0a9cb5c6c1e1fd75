"""The sentences the app shows when a conversation doesn't fit the model's context.

The engine reports sizes (engine.prompt_fit.PromptTooLong, as a plain dict through the worker);
the wording, with the names of this app's Settings, lives here.
"""
from __future__ import annotations


def trimmed_notice(dropped: int) -> str:
    """Under an answer written without the oldest messages ('' when nothing was dropped)."""
    if dropped <= 0:
        return ""
    if dropped == 1:
        return "The oldest message no longer fits in the context and was left out of this answer."
    return f"The oldest {dropped} messages no longer fit in the context and were left out of this answer."


def too_long_notice(info: dict, longer: bool = True) -> str:
    """Why nothing was generated: which part is too long, how long it is, and the limit. `longer`:
    a longer context is on offer in Settings (never suggest one the model or the memory refuses)."""
    context = int(info.get("context_length", 0))
    text = _too_long(info, context)
    return text if longer else text.replace(", or choose a longer context in Settings", "").replace(
        " or choose a longer context in Settings", "")


def _too_long(info: dict, context: int) -> str:
    answer = int(info.get("answer_tokens", 0))
    where = info.get("instructions_in") or "Settings"   # "this chat's settings" when the chat has its own
    if info.get("culprit") == "instructions":
        return (f"Nothing was sent: the developer instructions in {where} are {info.get('instructions_tokens', 0):,} "
                f"tokens, more than this chat's {context:,}-token context can take with {answer:,} tokens kept for "
                "the answer; shorten them or choose a longer context in Settings.")
    if info.get("culprit") == "both":
        return (f"Nothing was sent: your message ({info.get('message_tokens', 0):,} tokens) and the developer "
                f"instructions in {where} ({info.get('instructions_tokens', 0):,} tokens) don't fit together in this "
                f"chat's {context:,}-token context with {answer:,} tokens kept for the answer; shorten one of them, "
                "or choose a longer context in Settings.")
    room = max(0, int(info.get("budget", 0)) - int(info.get("system_tokens", 0)) - int(info.get("instructions_tokens", 0)))
    chars, tokens = int(info.get("message_chars", 0)), int(info.get("message_tokens", 0))
    fits_chars = chars * room // tokens if tokens else 0
    return (f"Nothing was sent: your message is {chars:,} characters ({tokens:,} tokens) but at most about "
            f"{room:,} tokens (roughly {fits_chars:,} characters) fit in this chat's {context:,}-token context "
            f"with {answer:,} tokens kept for the answer; shorten it (it is back in the message box), or choose a longer "
            "context in Settings.")
