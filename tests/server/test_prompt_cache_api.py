"""usage.prompt_tokens_details.cached_tokens over the real API: two clients alternating each have
their conversation resumed (the one cache they shared before evicted the other's every turn), and
after a server restart with --prompt-cache a conversation comes back from disk."""

from __future__ import annotations

from models.registry import demo_folder
from served import Server


def ask(client, messages):
    return client.chat.completions.create(model="demo", messages=messages, max_tokens=4)


def test_two_clients_alternating_and_a_restart(tmp_path):
    cache = tmp_path / "prompt-cache"
    server = Server("--model", str(demo_folder()), "--context", "2048", "--prompt-cache", str(cache))
    try:
        one, two = server.client(), server.client()
        chats = {one: [{"role": "user", "content": "What is 12 times 13? Show the steps."}],
                 two: [{"role": "user", "content": "Name three rivers in Europe and one fact about each."}]}
        last = {}
        for turn in range(3):
            for client, messages in chats.items():
                r = ask(client, messages)
                cached = r.usage.prompt_tokens_details.cached_tokens
                if turn:
                    # only the new messages were prefilled: everything up to the last prompt's end was reused
                    assert cached >= last[client] - 1, (turn, cached, last[client])
                last[client] = r.usage.prompt_tokens
                messages += [{"role": "assistant", "content": f"Answer {turn}."},
                             {"role": "user", "content": f"Follow-up number {turn}, please explain."}]
    finally:
        server.stop()  # SIGTERM: the engine thread writes the conversations before it ends
    assert list(cache.glob("*/*.safetensors"))

    server = Server("--model", str(demo_folder()), "--context", "2048", "--prompt-cache", str(cache))
    try:
        r = ask(server.client(), chats[one])
        assert r.usage.prompt_tokens_details.cached_tokens >= last[one] - 1  # from disk
    finally:
        server.stop()
