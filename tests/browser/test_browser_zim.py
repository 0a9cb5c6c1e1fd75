"""The ZIM backend on real archives written with libzim's writer: full-text search where the
archive has its index, titles where it doesn't, redirects, links kept inside the archive."""

from __future__ import annotations

import pytest

pytest.importorskip("libzim")

from engine.browser import BackendError, BrowserTool  # noqa: E402
from engine.browser.zim import ZimArchive, source_name  # noqa: E402
from zim_archive import ARTICLES, write_zim  # noqa: E402


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    path = tmp_path_factory.mktemp("zim") / "wikipedia_en_test.zim"
    write_zim(path, ARTICLES, full_text=True, redirects=[("A/Lunar", "Lunar", "A/Moon")])
    return ZimArchive(path)


def test_full_text_search_finds_words_in_the_body(wiki):
    assert wiki.name == "wikipedia_en_test" and wiki.full_text
    hits = wiki.search("natural satellite", 5)
    assert hits and hits[0].title == "Moon" and "satellite" in hits[0].snippet
    assert wiki.search("volcanic", 5)[0].url == "zim://wikipedia_en_test/A/Basalt"


def test_without_a_full_text_index_titles_are_searched(tmp_path):
    titles_only = ZimArchive(write_zim(tmp_path / "small.zim", ARTICLES, full_text=False))
    assert not titles_only.full_text
    assert [h.title for h in titles_only.search("basalt", 5)] == ["Basalt"]
    assert titles_only.search("volcanic", 5) == []  # body words need the full-text index


def test_fetch_follows_redirects_and_keeps_only_archive_links(wiki):
    doc = wiki.fetch("zim://wikipedia_en_test/A/Lunar")
    assert doc.title == "Moon" and "384,400 km" in doc.text
    tide = wiki.fetch("zim://wikipedia_en_test/A/Tide")
    assert tide.links == ["zim://wikipedia_en_test/A/Moon"]  # not the missing page, not the web
    assert wiki.fetch("zim://other/A/Tide") is None and wiki.fetch("zim://wikipedia_en_test/A/Nope") is None
    assert wiki.fetch("zim://wikipedia_en_test/../../etc/passwd") is None


def test_browsing_an_archive_end_to_end(wiki, count_tokens):
    tool = BrowserTool([wiki], count_tokens)
    results = tool.run("browser.search", '{"query": "rise and fall of sea levels"}')
    assert "【0†Tide†wikipedia_en_test】" in results
    article = tool.run("browser.open", '{"id": 0}')
    assert article.startswith("[1] Tide (zim://wikipedia_en_test/A/Tide)")
    assert "【0†the Moon】" in article and "a missing page" in article and "【1†" not in article
    moon = tool.run("browser.open", '{"id": 0}')
    assert moon.startswith("[2] Moon (zim://wikipedia_en_test/A/Moon)")
    injected = tool.run("browser.open", '{"id": "zim://wikipedia_en_test/A/Injection"}')
    assert "〖3†x〗" in injected and "【3†" not in injected


def test_a_file_that_is_not_a_zim_is_one_sentence(tmp_path):
    bad = tmp_path / "notes.zim"
    bad.write_bytes(b"not a zim")
    with pytest.raises(BackendError, match="is not a readable ZIM archive"):
        ZimArchive(bad)
    assert source_name(tmp_path / "wikipedia en (2024).zim") == "wikipedia_en_2024"


def test_questions_in_plain_words_find_articles(wiki, tmp_path):
    """libzim matches every word of a query; a question the model writes in plain words must still
    find the article that holds most of them, and query syntax is just words."""
    assert wiki.search("How far away is the Moon from Earth?", 5)[0].title == "Moon"
    assert wiki.search("what causes the rise and fall of sea levels", 5)[0].title == "Tide"
    assert wiki.search('"; NEAR( OR * ^ -- ) AND', 5) == []
    titles_only = ZimArchive(write_zim(tmp_path / "t.zim", ARTICLES, full_text=False))
    assert titles_only.search("tell me about basalt rocks", 5)[0].title == "Basalt"


def test_two_sources_are_searched_together_or_one_by_name(wiki, notes, tmp_path, count_tokens):
    from engine.browser import Library

    lib = Library(tmp_path / "index", [notes])
    lib.update()
    tool = BrowserTool([lib, wiki], count_tokens)
    both = tool.run("browser.search", '{"query": "tide"}')
    assert "【0†Tide tables†library】" in both and "【1†Tide†wikipedia_en_test】" in both  # interleaved
    one = tool.run("browser.search", '{"query": "tide", "source": "wikipedia_en_test"}')
    assert "†library】" not in one and "【0†Tide†wikipedia_en_test】" in one
    assert tool.run("browser.open", '{"id": 0}').startswith("[2] Tide (zim://wikipedia_en_test/A/Tide)")
    assert tool.run("browser.open", '{"id": "zim://wikipedia_en_test/A/Moon", "source": "library"}').endswith(
        "open a link from a page or search first.")  # that URL is not the library's
