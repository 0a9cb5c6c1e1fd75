"""The browser's documents index, measured: search quality on a corpus with known answers, SQLite
FTS5 (BM25) vs tantivy side by side on the same 10,000 files, indexing speed by format, search
latency, memory while indexing, and the tokens the model reads per browser step.

    python -m bench.browser_index                 # quality (1,200 docs, 250 questions) + 10,000 files
    python -m bench.browser_index --docs 2000     # a smaller "large" corpus on a busy machine

Documents come from bench/browser_corpus.py (mixed .txt .md .html .py .pdf .docx). Both engines
index the same converted text (the conversion is timed once, per format); tantivy uses its English
stemmer and the same title boost (5x). Latency is per query over the corpus's questions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.browser_corpus import make_corpus
from engine.browser import BrowserTool, Library
from engine.browser.convert import to_text
from engine.browser.library import STOPWORDS, fts_query
from engine.tokenizer import load_tokenizer
from models.tokenizer_json import shared_o200k_harmony_folder


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


class PeakRSS:
    """The process's resident memory, sampled every 20 ms on a thread, while a block runs."""

    def __enter__(self):
        self.proc, self.base, self.peak, self.stop = psutil.Process(), psutil.Process().memory_info().rss, 0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 1e6


def quality(lib_search, questions, folder: Path) -> dict:
    ranks = []
    for q in questions:
        urls = [h for h in lib_search(q.text, 10)]
        want = (folder / q.answer_file).resolve().as_uri()
        ranks.append(urls.index(want) + 1 if want in urls else None)
    n = len(ranks)
    return {"questions": n, "top1": sum(r == 1 for r in ranks) / n, "top5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr": sum(1 / r for r in ranks if r) / n}


def latency(search, questions, repeat=2) -> dict:
    times = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            search(q.text, 10)
            times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(pct(times, 0.5), 3), "p95_ms": round(pct(times, 0.95), 3)}


# ------------------------------------------------------------------ tantivy, on the same texts


class Tantivy:
    def __init__(self, folder: Path):
        import tantivy

        b = tantivy.SchemaBuilder()
        b.add_text_field("title", stored=True, tokenizer_name="en_stem")
        b.add_text_field("body", stored=False, tokenizer_name="en_stem")
        b.add_text_field("url", stored=True, tokenizer_name="raw")
        self.schema = b.build()
        self.index = tantivy.Index(self.schema, path=str(folder))
        self.tantivy = tantivy

    def add_all(self, docs):
        writer = self.index.writer(heap_size=100_000_000, num_threads=1)
        for url, title, body in docs:
            writer.add_document(self.tantivy.Document(url=url, title=title, body=body))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    def search(self, text: str, topn: int):
        words = [w for w in fts_query(text).replace('"', "").split(" OR ")] if fts_query(text) else []
        if not words:
            return []
        query = self.index.parse_query(" ".join(words), ["title", "body"], field_boosts={"title": 5.0})
        searcher = self.index.searcher()
        return [searcher.doc(addr)["url"][0] for _, addr in searcher.search(query, topn).hits]


def texts_of(lib: Library):
    return lib._db().execute("SELECT docs.url, fts.title, fts.body FROM docs JOIN fts ON fts.rowid = docs.id").fetchall()


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------ the runs


def run_quality(tmp: Path, enc) -> dict:
    folder = tmp / "quality"
    t = time.perf_counter()
    docs, questions = make_corpus(folder, 1200, 250, seed=1)
    made = time.perf_counter() - t
    lib = Library(tmp / "quality_index", [folder])
    lib.update()
    fts = quality(lambda q, n: [h.url for h in lib.search(q, n)], questions, folder)
    tv = Tantivy(_mk(tmp / "quality_tantivy"))
    tv.add_all(texts_of(lib))
    tan = quality(tv.search, questions, folder)
    by_format = {}
    for d in docs:
        by_format[d.suffix] = by_format.get(d.suffix, 0) + 1
    return {"docs": len(docs), "formats": by_format, "generated_s": round(made, 1), "fts5": fts, "tantivy": tan,
            "tokens": tokens_per_step(lib, questions[:60], enc)}


def tokens_per_step(lib: Library, questions, enc) -> dict:
    count = lambda s: len(enc.encode_ordinary(s))  # noqa: E731
    steps = {"search": [], "open": [], "scroll": [], "find": []}
    for q in questions:
        tool = BrowserTool([lib], count)
        steps["search"].append(count(tool.run("browser.search", json.dumps({"query": q.text}))))
        steps["open"].append(count(tool.run("browser.open", '{"id": 0}')))
        page = tool.page(1)
        if page is not None and len(page.lines) > 10:
            steps["scroll"].append(count(tool.run("browser.open", '{"cursor": 1, "loc": 5}')))
        word = next((w for w in q.text.split() if w.lower() not in STOPWORDS), "the")
        steps["find"].append(count(tool.run("browser.find", json.dumps({"pattern": word, "cursor": 1}))))
    return {k: {"mean": round(statistics.mean(v), 1), "max": max(v)} for k, v in steps.items() if v} | \
        {"long_document_view": long_view_tokens(lib.index_folder.parent, enc), "reference_view_tokens": 1024}


def long_view_tokens(tmp: Path, enc) -> dict:
    """Tokens of one view of a long document (the corpus's paragraphs, 60 times over): where the
    view budget, not the document, decides the size, as in the reference (view_tokens=1024)."""
    from bench.browser_corpus import FILLER

    folder = _mk(tmp / "long_doc")
    (folder / "long.md").write_text("# A long report\n\n" + "\n\n".join(FILLER * 60))
    lib = Library(tmp / "long_index", [folder])
    lib.update()
    count = lambda s: len(enc.encode_ordinary(s))  # noqa: E731
    tool = BrowserTool([lib], count)
    views = [count(tool.run("browser.open", json.dumps({"id": (folder / "long.md").as_uri()})))]
    views += [count(tool.run("browser.open", json.dumps({"cursor": 0, "loc": loc}))) for loc in (50, 200, 400)]
    return {"views": views, "lines_in_doc": len(tool.page(0).lines)}


def run_formats(tmp: Path, per_format: dict) -> dict:
    out = {}
    for fmt, n in per_format.items():
        folder = tmp / f"format_{fmt}"
        make_corpus(folder, n, 0, seed=2, formats=[(fmt, 1)])
        size = folder_size(folder)
        lib = Library(tmp / f"format_{fmt}_index", [folder])
        t = time.perf_counter()
        lib.update()
        s = time.perf_counter() - t
        out[fmt] = {"files": n, "mb": round(size / 1e6, 2), "files_per_s": round(n / s, 1), "mb_per_s": round(size / 1e6 / s, 2)}
    return out


def run_large(tmp: Path, n_docs: int) -> dict:
    folder = tmp / "large"
    t = time.perf_counter()
    # txt/md/html/py carry the volume; pdf and docx are a share as in a real folder (their speed: run_formats)
    docs, questions = make_corpus(folder, n_docs, 250, seed=3,
                                  formats=[("txt", 30), ("md", 30), ("html", 20), ("py", 14), ("pdf", 3), ("docx", 3)])
    made = time.perf_counter() - t
    size = folder_size(folder)
    lib = Library(tmp / "large_index", [folder])
    with PeakRSS() as mem:
        t = time.perf_counter()
        report = lib.update()
        fts_index_s = time.perf_counter() - t
    t = time.perf_counter()
    again = lib.update()
    noop_s = time.perf_counter() - t
    texts = texts_of(lib)
    fresh = fresh_process_rss(folder, tmp / "fresh_index")
    # FTS5 indexing alone (no conversion), for the side-by-side with tantivy on the same texts
    import sqlite3

    db_path = tmp / "fts_only.sqlite3"
    db = sqlite3.connect(db_path)
    db.execute("CREATE VIRTUAL TABLE fts USING fts5(title, body, tokenize = 'porter unicode61 remove_diacritics 2')")
    with PeakRSS() as fts_mem:
        t = time.perf_counter()
        db.executemany("INSERT INTO fts (title, body) VALUES (?, ?)", [(ti, b) for _, ti, b in texts])
        db.commit()
        fts_only_s = time.perf_counter() - t
    db.close()
    tv = Tantivy(_mk(tmp / "large_tantivy"))
    with PeakRSS() as tv_mem:
        t = time.perf_counter()
        tv.add_all(texts)
        tv_s = time.perf_counter() - t
    fts = {"index_only_s": round(fts_only_s, 2), "index_only_peak_mb": round(fts_mem.mb, 1),
           "index_mb": round(db_path.stat().st_size / 1e6, 1),
           **latency(lambda q, n: lib.search(q, n), questions),
           **quality(lambda q, n: [h.url for h in lib.search(q, n)], questions, folder)}
    tan = {"index_only_s": round(tv_s, 2), "index_only_peak_mb": round(tv_mem.mb, 1),
           "index_mb": round(folder_size(tmp / "large_tantivy") / 1e6, 1),
           **latency(tv.search, questions), **quality(tv.search, questions, folder)}
    return {"files": n_docs, "mb": round(size / 1e6, 1), "generated_s": round(made, 1),
            "library_update": {"seconds": round(fts_index_s, 1), "files_per_s": round(report.added / fts_index_s, 1),
                               "mb_per_s": round(size / 1e6 / fts_index_s, 2), "peak_rss_mb": round(mem.mb, 1),
                               "noop_update_s": round(noop_s, 2), "unchanged": again.unchanged,
                               "fresh_process_peak_rss_mb": fresh},
            "fts5": fts, "tantivy": tan}


_RSS = """
import resource, sys
from engine.browser import Library
lib = Library(sys.argv[2], [sys.argv[1]])
if sys.argv[3] == "index":
    lib.update()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def fresh_process_rss(folder: Path, index: Path) -> dict:
    """Peak RSS (MB) of a new process that indexes `folder` from scratch, and of one that only opens
    the library (imports included): the difference is what indexing itself holds."""
    import subprocess
    import sys

    def run(mode: str, where: Path) -> float:
        out = subprocess.run([sys.executable, "-c", _RSS, str(folder), str(where), mode], capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        return round(float(out.stdout.strip()), 1)

    return {"indexing": run("index", index), "opened_only": run("open", index.with_name("empty_index"))}


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--per-format", type=int, default=300)
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--large-only", action="store_true", help="only the 10,000-file run")
    args = ap.parse_args(argv)
    enc = load_tokenizer(shared_o200k_harmony_folder())
    machine = f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {"machine": machine}
        if not args.large_only:
            result["quality"] = run_quality(tmp, enc)
            print(json.dumps(result, indent=1), flush=True)
            result["formats"] = run_formats(tmp, {f: args.per_format for f in ("txt", "md", "html", "py", "pdf", "docx")})
            print(json.dumps(result["formats"], indent=1), flush=True)
        result["large"] = run_large(tmp, args.docs)
        print(json.dumps(result["large"], indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
