"""Issue 29, per-chat instructions and presets: a chat's own developer instructions, effort and
temperature reach the model on every turn of that chat (other chats keep the app-wide ones);
presets are saved, applied, renamed, deleted and chosen for new chats, all kept in the history
file; bad input gets one sentence; a purged chat's options go with it; export/import carries them."""
import json

import pytest

from app.chat_export import chat_json, import_chat
from app.chat_options import ChatOptions, ChatOptionsStore, PresetError, parse_number
from app.store import ChatStore, StoredMessage


def ask(qtbot, c, text):
    assert c.send(text)
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)


def test_a_chats_own_values_reach_the_model_on_every_turn_and_others_keep_settings(qtbot, controller, scripted):
    c = controller
    c.settings.developer, c.settings.temperature, c.settings.top_p = "Answer in English.", 1.0, 1.0
    own = c.new_conversation()
    c.chat_options.set(own, ChatOptions("Answer like a pirate.", 0.3, 0.9))
    ask(qtbot, c, "Hello")
    ask(qtbot, c, "And again")
    for call in scripted.calls:
        assert call["developer"] == "Answer like a pirate."
        assert (call["sampling"].temperature, call["sampling"].top_p) == pytest.approx((0.3, 0.9))
    c.store.add_message(own, StoredMessage("user", "keep"))   # so New chat doesn't reuse it
    other = c.new_conversation()
    assert other != own
    ask(qtbot, c, "Hi")
    last = scripted.calls[-1]
    assert last["developer"] == "Answer in English."
    assert (last["sampling"].temperature, last["sampling"].top_p) == (1.0, 1.0)


def test_options_and_presets_survive_a_restart_and_go_with_a_purged_chat(tmp_path):
    path = tmp_path / "history.sqlite3"
    store = ChatStore(path)
    conv = store.create_conversation("Chat")
    store.add_message(conv.id, StoredMessage("user", "hi"))
    opts = ChatOptionsStore(store)
    opts.set(conv.id, ChatOptions("Be brief.", 0.5))
    opts.save_preset("Brief", ChatOptions("Be brief.", 0.5, effort="low"))
    opts.set_default_preset("brief")   # names compare without case
    store.close()
    store = ChatStore(path)
    opts = ChatOptionsStore(store)
    assert opts.get(conv.id) == ChatOptions("Be brief.", 0.5)
    assert opts.presets() == ["Brief"] and opts.default_preset() == "Brief"
    assert opts.preset("Brief") == ChatOptions("Be brief.", 0.5, effort="low", preset="Brief")
    store.delete(conv.id)
    assert opts.get(conv.id).own      # soft-deleted: Undo brings the chat back with its options
    store.purge_deleted()
    assert store.run("SELECT COUNT(*) FROM chat_options") == [(0,)]
    store.close()


def test_a_history_without_the_tables_opens_and_gets_them(tmp_path):
    path = tmp_path / "history.sqlite3"
    ChatStore(path).close()          # an older app's history: conversations, messages, settings only
    store = ChatStore(path)
    assert ChatOptionsStore(store).get(1) == ChatOptions()
    store.close()


def test_presets_rename_delete_and_bad_names_get_one_sentence(store):
    opts = ChatOptionsStore(store)
    conv = store.create_conversation("Chat")
    opts.save_preset("  Concise   answers ", ChatOptions("Be brief.", 0.2))
    assert opts.presets() == ["Concise answers"]
    opts.apply(conv.id, opts.preset("Concise answers"))
    assert opts.get(conv.id).preset == "Concise answers"
    with pytest.raises(PresetError, match="needs a name"):
        opts.save_preset("   ", ChatOptions("x"))
    with pytest.raises(PresetError, match="already exists"):
        opts.save_preset("concise ANSWERS", ChatOptions("y"))
    with pytest.raises(PresetError, match="longer than"):
        opts.save_preset("x" * 61, ChatOptions("y"))
    opts.save_preset("Pirate", ChatOptions("Arr.", effort="high"))
    with pytest.raises(PresetError, match="already exists"):
        opts.rename_preset("Pirate", "concise answers")
    opts.set_default_preset("Concise answers")
    assert opts.rename_preset("Concise answers", "Short") == "Short"
    assert opts.presets() == ["Pirate", "Short"] and opts.default_preset() == "Short"
    assert opts.get(conv.id).preset == "Short"        # the chat still names where its values came from
    opts.delete_preset("Short")
    assert opts.presets() == ["Pirate"] and opts.default_preset() == ""
    assert opts.get(conv.id) == ChatOptions("Be brief.", 0.2)   # its values stay, no longer named
    opts.apply(conv.id, opts.preset("Pirate"))
    assert store.conversation(conv.id).effort == "high"


@pytest.mark.parametrize("typed,ok", [("0.7", 0.7), ("", None), ("1,5", 1.5), ("2", 2.0), ("0", 0.0)])
def test_a_temperature_in_range_is_taken(typed, ok):
    assert parse_number(typed, "Temperature", (0.0, 2.0), 1.0) == (ok, "")


@pytest.mark.parametrize("typed", ["3", "-0.1", "warm", "nan", "inf", "1e9"])
def test_a_temperature_out_of_range_gets_one_sentence(typed):
    value, problem = parse_number(typed, "Temperature", (0.0, 2.0), 1.0)
    assert value is None
    assert problem == ("Temperature must be a number from 0 to 2 (e.g. 1); leave it empty to use the app-wide "
                       "value.")


def test_untrusted_options_are_checked_field_by_field():
    data = {"developer": 5, "temperature": 9.0, "top_p": 0.5, "effort": "extreme", "preset": ["x"]}
    assert ChatOptions.from_json(data) == ChatOptions(top_p=0.5)
    assert ChatOptions.from_json("nonsense") == ChatOptions()
    assert ChatOptions.from_json({"temperature": True}) == ChatOptions()


def test_new_chats_start_from_the_default_preset(qtbot, controller, scripted):
    c = controller
    c.chat_options.save_preset("Terse", ChatOptions("One line only.", 0.4, effort="low"))
    c.chat_options.set_default_preset("Terse")
    conv = c.new_conversation()
    assert c.chat_options.get(conv) == ChatOptions("One line only.", 0.4, preset="Terse")
    assert c.effort == "low" and c.store.conversation(conv).effort == "low"
    ask(qtbot, c, "Hi")
    assert scripted.calls[-1]["developer"] == "One line only." and scripted.calls[-1]["effort"] == "low"
    c.chat_options.set_default_preset("")
    second = c.new_conversation()
    assert second != conv and not c.chat_options.get(second).own


def test_export_and_import_carry_the_chats_options(store, tmp_path):
    opts = ChatOptionsStore(store)
    conv = store.create_conversation("Pirate chat", "high")
    store.add_message(conv.id, StoredMessage("user", "Ahoy"))
    opts.set(conv.id, ChatOptions("Answer like a pirate.", 0.8, preset="Pirate"))
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(chat_json(store, conv.id)))
    back = import_chat(store, path, tmp_path / "images")
    assert back != conv.id
    assert opts.get(back) == ChatOptions("Answer like a pirate.", 0.8, preset="Pirate")
    data = json.loads(path.read_text())
    data["options"] = {"developer": "ok", "temperature": 50}      # a hand-edited file: the bad value is dropped
    path.write_text(json.dumps(data))
    assert opts.get(import_chat(store, path, tmp_path / "images")) == ChatOptions("ok")


def test_an_unreadable_options_row_never_stops_an_answer(qtbot, controller, scripted):
    c = controller
    c.settings.developer = "App-wide."
    conv = c.new_conversation()
    c.store.run("INSERT INTO chat_options (conversation_id, options) VALUES (?, ?)", (conv, "{not json"))
    ask(qtbot, c, "Hi")
    assert scripted.calls[-1]["developer"] == "App-wide."
