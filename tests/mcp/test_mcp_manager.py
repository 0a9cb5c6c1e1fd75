"""The manager against real MCP servers (the official SDK on both ends): stdio and streamable
HTTP, tools with schemas, a slow tool (timeout), a failing tool, an image, a server that crashes
mid-call, one that never starts, one that speaks garbage, a missing program; never the caller's
thread, secrets never in a sentence."""
from __future__ import annotations

import json
import threading

import psutil
import pytest
from mcp_fixtures import RAW, stdio_entry, wait_until

pytest.importorskip("mcp")
T = 60   # generous bound for a Future on a loaded 2-core machine; the calls themselves take ~1 s


def test_stdio_tools_call_results(manager_for):
    m = manager_for({"notes": stdio_entry(env={"TEST_TOKEN": "tok-SECRET-42"})})
    listing = m.list_tools(["notes"]).result(T)
    assert listing.problems == []
    fns = listing.by_function()
    assert {"notes__add", "notes__search_notes", "notes__slow", "notes__fail", "notes__picture"} <= set(fns)
    assert fns["notes__add"].parameters == {
        "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 999},
                       "b": {"type": "integer", "minimum": 0, "maximum": 999}},
        "required": ["a", "b"], "type": "object", "additionalProperties": False}
    assert fns["notes__picture"].parameters is None                   # no arguments: `() => any`

    assert m.call("notes__add", {"a": 2, "b": 40}).result(T).text == "42"
    out = m.call("notes__search_notes", {"query": "mcp", "filter": {"tag": "work"}}).result(T)
    assert out.error is None and "filter work" in out.text
    assert m.call("notes__whoami", {}).result(T).text == "token of 13 characters"   # env reached the server

    failed = m.call("notes__fail", {"reason": "test"}).result(T)
    assert failed.error == "Error executing tool fail: the disk is on fire: test"
    assert failed.text.startswith("Error: ")

    pic = m.call("notes__picture", {}).result(T)
    assert pic.error is None and pic.text == "[image 1: PNG, 1 KB, shown to the user]"
    assert len(pic.images) == 1 and pic.images[0][0].startswith(b"\x89PNG") and pic.images[0][1] == ".png"


def test_calls_run_on_the_managers_thread_and_return_at_once(manager_for):
    m = manager_for({"notes": stdio_entry()})
    m.list_tools(["notes"]).result(T)
    seen = []
    fut = m.call("notes__slow", {"seconds": 0.5})
    assert not fut.done()                      # returned before the server answered
    fut.add_done_callback(lambda f: seen.append(threading.current_thread().name))
    assert fut.result(T).text == "slept 0.5"
    assert wait_until(lambda: seen) and seen[0] in ("mcp-client", threading.current_thread().name)


def test_slow_tool_times_out_and_the_server_keeps_working(manager_for):
    m = manager_for({"notes": stdio_entry(timeout=1)})
    m.list_tools(["notes"]).result(T)
    out = m.call("notes__slow", {"seconds": 120}).result(T)
    assert out.error == 'The MCP tool "slow" of "notes" did not answer within 1 s.'
    assert m.call("notes__add", {"a": 1, "b": 1}).result(T).text == "2"


def test_crash_mid_call_gives_a_sentence_and_the_next_call_restarts_it(manager_for):
    m = manager_for({"notes": stdio_entry(env={"TEST_TOKEN": "tok-SECRET-42"})})
    m.list_tools(["notes"]).result(T)
    first_pid = int(m.call("notes__pid", {}).result(T).text)
    m.call("notes__whoami", {}).result(T)           # makes the server print its token on stderr
    out = m.call("notes__crash", {}).result(T)
    assert out.error.startswith('The MCP server "notes" stopped during the call')
    assert "tok-SECRET-42" not in out.error and "tok-SECRET-42" not in out.text
    assert out.text.startswith("Error: ")
    again = int(m.call("notes__pid", {}).result(T).text)
    assert again != first_pid


def test_servers_stop_with_the_app(manager_for):
    m = manager_for({"notes": stdio_entry()})
    m.list_tools(["notes"]).result(T)
    pid = int(m.call("notes__pid", {}).result(T).text)
    assert psutil.pid_exists(pid)
    m.shutdown()
    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    assert wait_until(gone)
    assert m.call("notes__add", {"a": 1, "b": 1}).result(T).error == "The app is closing; MCP tools are stopped."


def test_streamable_http(manager_for, http_server):
    m = manager_for({"remote": {"url": http_server, "headers": {"Authorization": "Bearer http-SECRET-7"}}})
    listing = m.list_tools(["remote"]).result(T)
    assert listing.problems == [] and "remote__add" in listing.by_function()
    assert m.call("remote__add", {"a": 20, "b": 22}).result(T).text == "42"
    assert m.call("remote__picture", {}).result(T).images[0][1] == ".png"
    assert m.call("remote__fail", {"reason": "http"}).result(T).error.endswith("on fire: http")


def test_unreachable_http_server_is_one_sentence_without_its_secret(manager_for):
    m = manager_for({"gone": {"url": "http://127.0.0.1:9/mcp?key=QUERY-SECRET", "headers": {"X-Key": "hdr-SECRET-9"}}},
                    start_timeout=30)
    listing = m.list_tools(["gone"]).result(T)
    assert listing.tools == [] and len(listing.problems) == 1
    p = listing.problems[0]
    assert p.startswith('The MCP server "gone" could not start') and "SECRET" not in p and "\n" not in p


def test_missing_program_says_what_to_install(manager_for):
    m = manager_for({"node": {"command": "npx-does-not-exist-here", "args": []},
                     "npx": {"command": "npx", "args": [], "env": {"PATH": "/nonexistent"}}})
    listing = m.list_tools(["node"]).result(T)
    assert listing.problems == ['The MCP server "node" could not start: The program "npx-does-not-exist-here" was '
                                'not found; put its full path in "command".']
    out = m.call_tool("node", "anything", {}).result(T)
    assert out.error == listing.problems[0]


def test_a_server_that_never_answers_times_out(manager_for):
    m = manager_for({"silent": stdio_entry("silent"), "garbage": stdio_entry("garbage")}, start_timeout=2)
    listing = m.list_tools(["silent", "garbage"]).result(T)
    assert listing.tools == []
    assert sorted(listing.problems) == ['The MCP server "garbage" did not start within 2 s.',
                                        'The MCP server "silent" did not start within 2 s.']


def test_garbage_result_and_bad_schema(manager_for):
    m = manager_for({"raw": stdio_entry("bad_result", RAW), "schema": stdio_entry("bad_schema", RAW)})
    listing = m.list_tools(["raw", "schema"]).result(T)
    assert [t.function for t in listing.tools] == ["raw__ok", "schema__ok"]
    assert listing.problems == ['The tool "weird" of "schema" is left out: its input schema is not valid '
                                "(12 is not valid under any of the given schemas)."]
    out = m.call("raw__ok", {"x": "y"}).result(T)
    assert out.error == 'The MCP tool "ok" of "raw" failed (its answer was not valid MCP).'


def test_off_and_unknown_servers(manager_for):
    m = manager_for({"off": stdio_entry(disabled=True)})
    assert m.list_tools(["off", "nope"]).result(T).problems == [
        'There is no MCP server "nope" in the settings.',
        'The MCP server "off" is turned off in mcp.json ("disabled": true).']
    assert m.call("nope__x", {}).result(T).error == "There is no MCP tool 'nope__x' (its server may have been removed)."


def test_changed_settings_restart_the_server(manager_for):
    m = manager_for({"notes": stdio_entry(env={"TEST_TOKEN": "aaaa"})})
    m.list_tools(["notes"]).result(T)
    assert m.call("notes__whoami", {}).result(T).text == "token of 4 characters"
    from mcp_fixtures import servers_of
    m.configure(servers_of({"notes": stdio_entry(env={"TEST_TOKEN": "bbbbbbbb"})})).result(T)
    assert m.call("notes__whoami", {}).result(T).text == "token of 8 characters"
    assert json.dumps(m.running()) == '["notes"]'


def test_a_cancelled_call_leaves_the_server_working(manager_for):
    m = manager_for({"notes": stdio_entry()})
    m.list_tools(["notes"]).result(T)
    fut = m.call("notes__slow", {"seconds": 120})
    assert fut.cancel() or fut.done()            # the user pressed Stop
    assert m.call("notes__add", {"a": 3, "b": 4}).result(T).text == "7"


def test_logs_never_carry_a_secret(manager_for, caplog):
    import logging
    m = manager_for({"gone": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer log-SECRET-5"}}})
    with caplog.at_level(logging.DEBUG):
        m.list_tools(["gone"]).result(T)
        logging.getLogger("mcp.client").warning("sent header Bearer log-SECRET-5 to %s", "http://127.0.0.1:9/mcp")
    assert caplog.records and all("log-SECRET-5" not in r.getMessage() for r in caplog.records)


def test_http_server_that_dies_mid_call(manager_for):
    import subprocess
    import sys
    from mcp_fixtures import SERVER
    proc = subprocess.Popen([sys.executable, str(SERVER), "http"], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}/mcp"
        m = manager_for({"remote": {"url": url}}, start_timeout=20)
        m.list_tools(["remote"]).result(T)
        out = m.call("remote__crash", {}).result(T)
        assert out.error is not None and out.error.startswith('The MCP server "remote" stopped during the call')
        proc.wait(10)
        again = m.call("remote__add", {"a": 1, "b": 2}).result(T)       # gone for good: a sentence, no hang
        assert again.error.startswith('The MCP server "remote" could not start')
    finally:
        proc.kill()
        proc.wait(10)
