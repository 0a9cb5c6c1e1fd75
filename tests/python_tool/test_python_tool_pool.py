"""The app's handle on the Python tool: per-chat tools and folders, Stop, the off switch."""

from __future__ import annotations

import time

from engine.python_tool import Limits, PythonToolPool, tool_description


def test_each_chat_has_its_own_kernel_and_folder(needs_sandbox, tmp_path, run_in_background, wait_until):
    pool = PythonToolPool(tmp_path / "chats", Limits(timeout=30))
    try:
        a, b = pool.tool("chat-a"), pool.tool("chat-b")
        assert pool.tool("chat-a") is a
        a.run("x = 'a'\nopen('who.txt', 'w').write('a')")
        assert "NameError" in b.run("x").error  # no shared state
        assert b.run("import os\nprint(os.path.exists('who.txt'))").text == "False\n"
        assert (tmp_path / "chats" / "chat-a" / "who.txt").read_text() == "a"
        # Stop through the pool interrupts that chat's running code.
        started = time.monotonic()
        runner = run_in_background(a, "import time\nopen('started', 'w').close()\ntime.sleep(60)")
        wait_until(lambda: (tmp_path / "chats" / "chat-a" / "started").exists(), what="the code to start")
        pool.interrupt("chat-a")
        runner.join(timeout=20)
        assert runner.result.error == "The code was stopped."
        assert time.monotonic() - started < 10
        # Switched off: every kernel ends now, no tool is handed out, the folders stay.
        pool.enabled = False
        assert pool.tool("chat-a") is None and not pool.offered()
        assert a.run("1").error == "The Python tool is closed for this chat."
        assert (tmp_path / "chats" / "chat-a" / "who.txt").exists()
        pool.enabled = True
        assert pool.offered()
        assert "NameError" in pool.tool("chat-a").run("x").error  # a new kernel after switching on
    finally:
        pool.close_all()


def test_a_chat_id_cannot_name_a_folder_outside_the_root(tmp_path):
    pool = PythonToolPool(tmp_path / "chats")
    for chat_id in ("../../etc", "/etc/passwd", "..", "a/../../b"):
        folder = pool.folder(chat_id)
        assert folder.parent == tmp_path / "chats" and folder.name not in ("..", ".")


def test_the_description_tells_the_model_the_real_limits():
    text = tool_description(Limits(timeout=30))
    assert "stateful Jupyter notebook environment" in text and "time out after 30.0 seconds" in text
    assert "Internet access for this session is disabled." in text and "/mnt/data" not in text


def test_start_ahead_makes_the_first_run_quick(needs_sandbox, tmp_path):
    from engine.python_tool import PythonTool

    with PythonTool(tmp_path / "chat") as tool:
        assert tool.start() is None
        started = time.monotonic()
        assert tool.run("print('warm')").text == "warm\n"
        assert time.monotonic() - started < 1.5  # a cold start takes 2.5-4 s here
        tool.close()
        assert tool.start() == "The Python tool is closed for this chat."


def test_the_least_recently_used_kernels_end_and_their_chats_are_told(needs_sandbox, tmp_path):
    pool = PythonToolPool(tmp_path / "chats", Limits(timeout=30), max_kernels=2)
    try:
        for chat in ("a", "b"):
            assert pool.tool(chat).run(f"x = {chat!r}").error is None
        pool.tool("a").run("print(x)")                 # a is now more recent than b
        assert pool.tool("c").run("x = 'c'").error is None
        assert [pool._tools[c].has_kernel for c in "abc"] == [True, False, True]
        b = pool.tool("b").run("print('b again')")    # b comes back: a fresh kernel, and it says so
        assert b.restarted and "more than 2 chats had their Python running at once" in b.text
        assert b.text.endswith("b again\n")
        assert [pool._tools[c].has_kernel for c in "abc"] == [False, True, True]  # a went this time
        assert pool.tool("c").run("print(x)").text == "c\n"   # c, used recently, kept its state
        assert not pool.tool("c").run("1").restarted
    finally:
        pool.close_all()
