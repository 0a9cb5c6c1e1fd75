"""The scripted stand-in must keep the real session's shape: a test fake whose methods drift from
engine.session.ChatSession would let the app call something the real engine doesn't take."""
import inspect

from scripted import ScriptedSession

from engine.session import ChatSession

USED_BY_THE_APP = ("reply", "render", "sampling", "count_tokens", "reset")  # render: the local API


def test_the_fake_takes_exactly_what_the_real_session_takes():
    for name in USED_BY_THE_APP:
        real, fake = inspect.signature(getattr(ChatSession, name)), inspect.signature(getattr(ScriptedSession, name))
        assert list(fake.parameters) == list(real.parameters), name
        assert [p.default for p in fake.parameters.values()] == [p.default for p in real.parameters.values()], name


def test_the_fake_carries_what_the_handle_carries():
    fake = ScriptedSession(greedy=True)
    for attribute in ("name", "greedy", "enc", "context_length", "defaults"):
        assert hasattr(fake, attribute), attribute
    assert fake.sampling(1.0, 0.9).temperature == 0.0  # the real rule: greedy folders stay greedy
