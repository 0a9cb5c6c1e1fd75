"""Issue 29, copy and export: a chat exported as Markdown (reasoning optional) and as JSON with
everything (tool calls, outputs, images), and that JSON imported back whole; a bad file gets one
sentence."""
import json

from scripted import ScriptedSession, answer_script

from app.chat_export import ChatFileError, chat_json, chat_markdown, import_chat
from app.store import StoredMessage
from test_app_window import make_window, type_and_enter

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


def chat_with_tool_image(store, tmp_path):
    conv = store.create_conversation("Primes & <charts>", "high")
    store.add_message(conv.id, StoredMessage("user", "Chart the primes `<100>`"))
    answer = store.add_message(conv.id, StoredMessage("assistant", "Here: **25** primes.", "Count them.", "high",
                                                      "done", 2.5, {"generated_tokens": 9}))
    image = tmp_path / "plot.png"
    image.write_bytes(PNG)
    steps = [{"type": "call", "recipient": "python", "arguments": "print(25)", "status": "done",
              "result": "25", "images": [str(image)], "folder": "", "problem": None, "error": None}]
    store.set_tool_steps(answer.id, steps)
    return conv.id


def test_markdown_export_with_and_without_reasoning(store, tmp_path):
    cid = chat_with_tool_image(store, tmp_path)
    md = chat_markdown(store, cid)
    assert md.startswith("# Primes & <charts>\n") and "Chart the primes `<100>`" in md
    assert "Here: **25** primes." in md and "Count them." not in md
    assert "> Count them." in chat_markdown(store, cid, reasoning=True)


def test_json_export_imports_back_whole_with_its_images(store, tmp_path):
    cid = chat_with_tool_image(store, tmp_path)
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(chat_json(store, cid)))
    (tmp_path / "plot.png").unlink()                 # the copy must not need the original files
    new = import_chat(store, path, tmp_path / "imported")
    assert new != cid and store.conversation(new).title == "Primes & <charts>"
    assert store.conversation(new).effort == "high"
    old_msgs, new_msgs = store.messages(cid), store.messages(new)
    assert [(m.role, m.text, m.analysis, m.state, m.thought_seconds, m.stats) for m in new_msgs] == \
           [(m.role, m.text, m.analysis, m.state, m.thought_seconds, m.stats) for m in old_msgs]
    (steps,) = store.tool_steps(new).values()
    assert steps[0]["arguments"] == "print(25)" and steps[0]["result"] == "25"
    (img,) = steps[0]["images"]
    assert img.startswith(str(tmp_path / "imported")) and open(img, "rb").read() == PNG


def test_a_bad_file_gets_one_sentence_and_nothing_is_added(store, tmp_path):
    import pytest
    cases = {"not.json": "{oops", "other.json": json.dumps({"format": "x"}),
             "damaged.json": json.dumps({"format": "gpt-oss-chat/1", "title": "t", "messages": [{"role": "system"}]})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ChatFileError) as e:
            import_chat(store, tmp_path / name, tmp_path / "imported")
        assert str(e.value).endswith(".") and "\n" not in str(e.value)
    escape = {"format": "gpt-oss-chat/1", "title": "t", "messages": [{"role": "assistant", "text": "x", "tool_steps": [
        {"type": "call", "images": [{"name": "../../evil.png", "png_base64": "aGk="}]}]}]}
    (tmp_path / "escape.json").write_text(json.dumps(escape))
    import_chat(store, tmp_path / "escape.json", tmp_path / "imported")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()
    assert [c.title for c in store.conversations()] == ["t"]


def test_the_window_exports_and_imports_from_its_chat_menu(qtbot, store, clock, tmp_path, app_home):
    session = ScriptedSession(answer_script(final="Answer with `Vec<T>`."), clock=clock)
    c, w = make_window(qtbot, store, session, clock)
    assert "empty" in w.export_chat(str(tmp_path / "x.md"), "md")
    type_and_enter(qtbot, w, "question")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert w.export_chat(str(tmp_path / "chat.md"), "md") == ""
    assert "Answer with `Vec<T>`." in (tmp_path / "chat.md").read_text()
    assert w.export_chat(str(tmp_path / "chat.json"), "json") == ""
    assert w.import_chat_file(str(tmp_path / "chat.json")) == ""
    assert w.sidebar.list.count() == 2 and [m.text for m in c.model.messages()] == ["question", "Answer with `Vec<T>`."]
    assert "not valid JSON" in w.import_chat_file(str(tmp_path / "chat.md"))
    assert [a.text() for a in (w.export_md_action, w.export_json_action, w.import_action)] == [
        "Export Chat as Markdown…", "Export Chat as JSON…", "Import Chat…"]
    c.shutdown()
