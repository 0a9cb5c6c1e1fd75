"""The documents backend on real files of every format: conversion, ranked search, incremental
updates, progress and cancelling, and fetch refusing anything that is not in the index."""

from __future__ import annotations

import os
import threading

import pytest

from engine.browser.convert import html_to_text, to_text
from engine.browser.library import Library, fts_query


def test_every_format_is_converted(notes):
    for name, fact in [("tides.md", "7.9 metres"), ("groceries.txt", "saffron"), ("code/kiln.py", "1280 degrees"),
                       ("manual.html", "three months"), ("papers/glaciers.pdf", "40 percent"),
                       ("papers/grinder.docx", "setting 14")]:
        title, text, _ = to_text(notes / name)
        assert fact in text, name
    assert to_text(notes / "manual.html")[0] == "Espresso manual"
    assert to_text(notes / "papers/glaciers.pdf")[0] == "Glacier retreat"
    assert to_text(notes / "papers/grinder.docx")[0] == "Grinder notes"
    assert "arabica | 14" in to_text(notes / "papers/grinder.docx")[1]  # tables are read too
    assert "alert" not in to_text(notes / "manual.html")[1] and "color" not in to_text(notes / "manual.html")[1]


def test_a_damaged_file_is_skipped_not_fatal(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tmp_path / "broken.docx").write_bytes(b"PK not a zip")
    (tmp_path / "ok.txt").write_text("fine")
    lib = Library(tmp_path / "index", [tmp_path])
    report = lib.update()
    assert report.added == 1 and report.skipped == 2


def test_search_ranks_the_right_document_first(notes, tmp_path):
    lib = Library(tmp_path / "index", [notes])
    report = lib.update()
    assert report.added == 6 and report.skipped == 0  # the hidden folder is not read
    for query, name in [("spring tide Brest", "tides.md"), ("saffron quince", "groceries.txt"),
                        ("stoneware kiln temperature", "kiln.py"), ("descale boiler", "manual.html"),
                        ("Rhone glacier volume", "glaciers.pdf"), ("burr grinder setting", "grinder.docx")]:
        hits = lib.search(query, 5)
        assert hits and hits[0].url.endswith(name), (query, [h.url for h in hits])
    assert lib.search("volcano", 5) == []
    assert lib.search('"; NEAR( OR * ^ -- ) AND', 5) == []  # FTS syntax never gets through (no error)
    assert lib.search('saffron" OR "x', 5)[0].url.endswith('groceries.txt')
    assert lib.search("glaciers", 5)[0].snippet  # stemming: glaciers finds glacier


def test_fts_query_quotes_every_word():
    assert fts_query("what is the spring tide?") == '"spring" OR "tide"'
    assert fts_query("***") is None
    assert fts_query("spring tide", {"tide"}) == '"spring"'  # a word in most documents weighs nothing
    assert fts_query("tide", {"tide"}) == '"tide"'  # unless it is all there is


def test_updates_are_incremental(notes, tmp_path):
    lib = Library(tmp_path / "index", [notes])
    lib.update()
    again = lib.update()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 6)
    (notes / "groceries.txt").write_text("Groceries\n\nBuy rhubarb instead.\n")
    os.utime(notes / "groceries.txt", ns=(1, 1))  # a new modification time even on a coarse clock
    (notes / "tides.md").unlink()
    (notes / "new.md").write_text("# Bees\n\nThe hive swarmed in May.")
    changed = lib.update()
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 4)
    assert lib.search("rhubarb", 5)[0].url.endswith("groceries.txt")
    assert lib.search("saffron", 5) == [] and lib.search("Brest", 5) == []
    assert lib.search("hive swarmed", 5)[0].url.endswith("new.md")
    reopened = Library(tmp_path / "index", [notes])  # the index lives in the caller's folder
    assert reopened.count == 6 and reopened.update().unchanged == 6


def test_indexing_reports_progress_and_can_be_cancelled_off_thread(tmp_path):
    for i in range(300):
        (tmp_path / f"note{i:03}.txt").write_text(f"note number {i} about topic{i}")
    lib = Library(tmp_path / "index", [tmp_path])
    seen, threads = [], set()
    job_made = threading.Event()

    def progress(done, total, path):
        job_made.wait(30)  # `job` below is assigned
        seen.append((done, total))
        threads.add(threading.get_ident())
        if done == 50:
            job.cancel()

    job = lib.update_in_background(progress)
    job_made.set()
    report = job.wait(60)
    assert report.cancelled and 50 <= report.added < 300
    assert seen[0] == (1, 300) and threads == {job._thread.ident} != {threading.get_ident()}
    assert lib.count == report.added  # what was done is kept
    rest = lib.update()
    assert rest.added == 300 - report.added and lib.count == 300 and rest.removed == 0


def test_fetch_opens_only_what_is_indexed(notes, tmp_path):
    lib = Library(tmp_path / "index", [notes])
    lib.update()
    doc = lib.fetch((notes / "tides.md").as_uri())
    assert doc.title == "Tide tables" and "Brest" in doc.text
    assert lib.fetch((notes / ".hidden" / "secret.txt").as_uri()) is None
    assert lib.fetch("file:///etc/passwd") is None
    assert lib.fetch((notes / "papers" / ".." / "tides.md").as_uri()) is None  # not the indexed spelling


def test_html_links_stay_inside_the_library(notes, tmp_path):
    lib = Library(tmp_path / "index", [notes])
    lib.update()
    doc = lib.fetch((notes / "manual.html").as_uri())
    assert doc.links == [(notes / "papers" / "grinder.docx").resolve().as_uri()]  # the web and ../.. are text
    _, text, links = html_to_text("<a href='x.html'>x</a>", lambda href: None)
    assert links == [] and text == "x"


def test_a_result_shows_the_passage_where_the_query_words_meet():
    from engine.browser.library import passage

    text = "Intro about boats. " * 30 + "The spring tide at Brest peaks at 7.9 metres. " + "Other things. " * 30
    shown = passage(text, "how high is the spring tide at Brest")
    assert "spring tide at Brest peaks" in shown and shown.startswith("…") and shown.endswith("…")
    assert passage("short text", "nothing matches") == "short text"


def test_a_stale_index_is_refreshed_in_the_background(notes, tmp_path):
    lib = Library(tmp_path / "index", [notes])
    lib.update()
    assert lib.refresh_if_stale(60) is None  # just updated
    (notes / "late.md").write_text("# Late\n\nThe ferry leaves at dawn.")
    job = lib.refresh_if_stale(0)
    assert job is not None
    second = lib.refresh_if_stale(0)
    assert second is None or not job.running  # never two at once
    assert job.wait(60).added == 1 and lib.search("ferry dawn", 5)[0].url.endswith("late.md")
    if second is not None:
        second.wait(60)
