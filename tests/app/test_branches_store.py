"""The history keeps a chat's alternatives and branches (app/branches.py): across a restart, in the
shown branch's place when switched, gone with the chat, carried by the JSON export."""
import json
import sqlite3

from app.branches import Branches
from app.chat_export import chat_json, import_chat
from app.store import SCHEMA_VERSION, ChatStore, StoredMessage


def texts(store, cid):
    return [m.text for m in store.messages(cid)]


def chat(store, *pairs):
    conv = store.create_conversation("A chat")
    for q, a in pairs:
        store.add_message(conv.id, StoredMessage("user", q))
        store.add_message(conv.id, StoredMessage("assistant", a, analysis=f"thinking about {q}",
                                                 stats={"generated_tokens": len(a)}))
    return conv.id


def test_regenerated_answers_survive_a_restart_with_reasoning_stats_and_tool_steps(tmp_path):
    store = ChatStore(tmp_path / "h.sqlite3")
    cid = chat(store, ("Q1", "A1"), ("Q2", "first answer"))
    first = store.messages(cid)[-1]
    store.set_tool_steps(first.id, [{"kind": "call", "recipient": "python", "arguments": "1+1", "result": "2"}])
    b = Branches(store)
    b.fork(cid, 3)                                    # Regenerate: the answer at position 3
    assert texts(store, cid) == ["Q1", "A1", "Q2"]
    store.add_message(cid, StoredMessage("assistant", "second answer"))
    assert b.counts(cid) == {3: (2, 2)}
    store.close()

    store = ChatStore(tmp_path / "h.sqlite3")         # a restart
    b = Branches(store)
    assert b.counts(cid) == {3: (2, 2)}
    assert texts(store, cid) == ["Q1", "A1", "Q2", "second answer"]
    assert b.switch(cid, 3, -1)
    back = store.messages(cid)[-1]
    assert (back.text, back.analysis, back.stats) == ("first answer", "thinking about Q2", {"generated_tokens": 12})
    assert store.tool_steps(cid)[back.id][0]["result"] == "2"
    assert b.counts(cid) == {3: (1, 2)}
    assert not b.switch(cid, 3, -1)                   # nothing before the first
    assert b.switch(cid, 3, +1)
    assert texts(store, cid)[-1] == "second answer"
    store.close()


def test_an_edit_forks_there_and_switching_swaps_the_whole_tail(store):
    cid = chat(store, ("Q1", "A1"), ("Q2", "A2"), ("Q3", "A3"))
    b = Branches(store)
    b.fork(cid, 3)                                    # an alternative inside the old branch, at A2
    store.add_message(cid, StoredMessage("assistant", "A2 again"))
    new = b.fork(cid, 0, StoredMessage("user", "Q1 edited"))   # edit the very first message
    assert new.position == 0 and texts(store, cid) == ["Q1 edited"]
    assert b.counts(cid) == {0: (2, 2)}              # the fork inside the old branch went with it
    store.add_message(cid, StoredMessage("assistant", "B1"))
    assert b.switch(cid, 0, -1)
    assert texts(store, cid) == ["Q1", "A1", "Q2", "A2 again"]
    assert b.counts(cid) == {0: (1, 2), 3: (2, 2)}    # and came back with it
    assert b.switch(cid, 3, -1)
    assert texts(store, cid) == ["Q1", "A1", "Q2", "A2", "Q3", "A3"]
    assert b.switch(cid, 0, +1)
    assert texts(store, cid) == ["Q1 edited", "B1"]


def test_a_refused_edit_shows_the_old_branch_again(store):
    cid = chat(store, ("Q1", "A1"), ("Q2", "A2"))
    b = Branches(store)
    b.fork(cid, 2, StoredMessage("user", "far too long"))
    store.delete_messages_from(cid, 2)                # the controller takes the refused message back
    assert b.heal(cid)
    assert texts(store, cid) == ["Q1", "A1", "Q2", "A2"]
    assert b.counts(cid) == {}
    assert not b.heal(cid)


def test_deleting_a_chat_drops_its_branches(store):
    cid = chat(store, ("Q1", "A1"))
    Branches(store).fork(cid, 1)
    store.delete(cid)
    store.purge_deleted()
    assert store._db.execute("SELECT COUNT(*) FROM branches").fetchone()[0] == 0


def test_an_old_history_opens_unchanged_and_gains_only_the_table(tmp_path):
    path = tmp_path / "old.sqlite3"
    store = ChatStore(path)
    cid = chat(store, ("Q1", "A1"))
    store._db.execute("DROP TABLE branches")          # as an app before this feature left it
    store.close()
    store = ChatStore(path)
    assert texts(store, cid) == ["Q1", "A1"] and Branches(store).counts(cid) == {}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
    store.close()


def test_the_json_export_carries_the_branches_and_imports_them_back(store, tmp_path):
    cid = chat(store, ("Q1", "A1"), ("Q2", "A2"))
    b = Branches(store)
    b.fork(cid, 3)
    store.add_message(cid, StoredMessage("assistant", "A2 again"))
    b.fork(cid, 2, StoredMessage("user", "Q2 edited"))
    store.add_message(cid, StoredMessage("assistant", "B2"))
    data = chat_json(store, cid)
    assert [m["text"] for m in data["messages"]] == ["Q1", "A1", "Q2 edited", "B2"]
    (tmp_path / "c.json").write_text(json.dumps(data))
    new = import_chat(store, tmp_path / "c.json", tmp_path / "img")
    b.switch(new, 2, -1)
    assert texts(store, new) == ["Q1", "A1", "Q2", "A2 again"]
    assert b.switch(new, 3, -1) and texts(store, new)[-1] == "A2"


def test_a_malformed_branch_in_an_imported_file_is_left_out(store, tmp_path):
    cid = chat(store, ("Q1", "A1"))
    data = chat_json(store, cid)
    data["branches"] = [{"position": 1, "alternatives": [{"messages": [{"role": "system", "position": 1}]}, None]},
                        {"position": 1, "alternatives": [{"messages": [{"role": "user", "text": "x", "position": 0}]},
                                                         None]}]      # before its own fork
    (tmp_path / "c.json").write_text(json.dumps(data))
    new = import_chat(store, tmp_path / "c.json", tmp_path / "img")
    assert texts(store, new) == ["Q1", "A1"] and Branches(store).counts(new) == {}


def test_the_markdown_export_says_it_is_the_branch_shown(store):
    from app.chat_export import chat_markdown
    cid = chat(store, ("Q1", "A1"))
    assert "branch shown" not in chat_markdown(store, cid)
    Branches(store).fork(cid, 1)
    store.add_message(cid, StoredMessage("assistant", "A1 again"))
    text = chat_markdown(store, cid)
    assert "A1 again" in text and "A1\n" not in text and "branch shown in the app" in text


def test_a_refused_regenerate_that_took_its_question_leaves_no_gap_and_keeps_the_answers(store):
    cid = chat(store, ("Q1", "A1"), ("Q2", "A2"))
    b = Branches(store)
    b.fork(cid, 3)                                    # Regenerate, then the question was refused (too long now)
    store.delete_messages_from(cid, 2)
    assert not b.heal(cid)
    assert texts(store, cid) == ["Q1", "A1"]          # no answer without its question
    assert "A2" in json.dumps(chat_json(store, cid)["branches"])


def test_a_refused_edit_goes_back_to_the_branch_it_was_made_from_not_the_newest(store):
    cid = chat(store, ("Q1", "A1"))
    b = Branches(store)
    for q in ("Q1 b", "Q1 c"):
        b.fork(cid, 0, StoredMessage("user", q))
    assert b.switch(cid, 0, -1) and b.switch(cid, 0, -1)
    assert texts(store, cid) == ["Q1", "A1"] and b.counts(cid) == {0: (1, 3)}
    b.fork(cid, 0, StoredMessage("user", "refused"))
    store.delete_messages_from(cid, 0)
    assert b.heal(cid)
    assert texts(store, cid) == ["Q1", "A1"] and b.counts(cid) == {0: (1, 3)}
