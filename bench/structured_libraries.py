"""Which grammar library constrains JSON best on OUR tokenizer (o200k_harmony via tiktoken)?

    PYTHONPATH=. python bench/structured_libraries.py

For llguidance, xgrammar and outlines-core, side by side in one run: the time to build a
token-level matcher from our tiktoken vocabulary (201088 ids), the time to compile each schema,
the per-token mask time, and coverage: for a set of JSON Schema features, does the schema compile,
and do random walks through the mask (uniform among allowed short tokens) end in JSON that
jsonschema accepts? Findings are written up in docs/structured_outputs.md.
"""

from __future__ import annotations

import json
import random
import time

import jsonschema
import numpy as np

from engine.tokenizer import load_tokenizer
from models.tokenizer_json import shared_o200k_harmony_folder

S = {"type": "string", "maxLength": 6}
SCHEMAS = {
    "object+required": {"type": "object", "properties": {"name": S, "age": {"type": "integer", "minimum": 0, "maximum": 150}},
                        "required": ["name", "age"], "additionalProperties": False},
    "enum/const": {"type": "object", "properties": {"u": {"enum": ["c", "f", 3, None]}, "k": {"const": "x"}},
                   "required": ["u", "k"], "additionalProperties": False},
    "array bounds": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
    "anyOf": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, S]},
    "oneOf": {"oneOf": [{"type": "object", "properties": {"a": S}, "required": ["a"], "additionalProperties": False},
                        {"type": "array", "items": S, "maxItems": 2}]},
    "type list": {"type": ["string", "null"], "maxLength": 5},
    "$ref/$defs": {"$defs": {"p": {"type": "object", "properties": {"x": {"type": "integer", "minimum": -5, "maximum": 5}},
                                   "required": ["x"], "additionalProperties": False}},
                   "type": "object", "properties": {"a": {"$ref": "#/$defs/p"}}, "required": ["a"], "additionalProperties": False},
    "pattern": {"type": "string", "pattern": "^[a-z]{2}-[0-9]{3}$"},
    "format date": {"type": "string", "format": "date"},
    "number range": {"type": "number", "minimum": 0.5, "maximum": 2},
    "nested arrays": {"type": "array", "maxItems": 2, "items": {"type": "array", "maxItems": 2, "items": {"type": "integer", "minimum": 0, "maximum": 3}}},
    "recursive": {"$defs": {"n": {"type": "object", "properties": {"k": {"type": "array", "maxItems": 1, "items": {"$ref": "#/$defs/n"}}},
                                  "required": ["k"], "additionalProperties": False}}, "$ref": "#/$defs/n"},
}
WALKS, MAX_STEPS = 5, 200


class Llguidance:
    name = "llguidance"

    def __init__(self, enc):
        import llguidance
        import llguidance.tiktoken
        import llguidance.numpy
        self.llg, self.np = llguidance, llguidance.numpy
        self.eos = enc.encode_single_token("<|return|>")
        self.tok = llguidance.tiktoken.lltokenizer_from_encoding(enc, eos_token=self.eos)
        self.mask = llguidance.numpy.allocate_token_bitmask(1, enc.n_vocab)

    def compile(self, schema):
        grammar = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        m = self.llg.LLMatcher(self.tok, grammar)
        if m.is_error():
            raise ValueError(m.get_error())
        return m

    def allowed(self, m):
        self.np.fill_next_token_bitmask(m, self.mask)
        return self.mask[0]

    def advance(self, m, t):
        assert m.consume_token(t), m.get_error()


class Xgrammar:
    name = "xgrammar"

    def __init__(self, enc):
        import torch
        import xgrammar as xgr
        self.xgr, self.torch = xgr, torch
        self.eos = enc.encode_single_token("<|return|>")
        vocab = [b""] * enc.n_vocab
        for i in range(enc.n_vocab):
            try:
                vocab[i] = enc.decode_single_token_bytes(i)
            except KeyError:
                pass
        info = xgr.TokenizerInfo(vocab, xgr.VocabType.RAW, vocab_size=enc.n_vocab, stop_token_ids=[self.eos])
        self.compiler = xgr.GrammarCompiler(info)
        self.mask = xgr.allocate_token_bitmask(1, enc.n_vocab)

    def compile(self, schema):
        return self.xgr.GrammarMatcher(self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False))

    def allowed(self, m):
        m.fill_next_token_bitmask(self.mask)
        return self.mask[0].numpy()

    def advance(self, m, t):
        assert m.accept_token(t)


class OutlinesCore:
    name = "outlines-core"

    def __init__(self, enc):
        import outlines_core as oc
        self.oc = oc
        self.eos = enc.encode_single_token("<|return|>")
        ids: dict[bytes, list[int]] = {}
        for i in range(enc.n_vocab):
            try:
                b = enc.decode_single_token_bytes(i)
            except KeyError:
                continue
            if i != self.eos and i < 199998:  # ordinary tokens only; specials are not text
                ids.setdefault(b, []).append(i)
        self.vocab = oc.Vocabulary(self.eos, ids)
        self.mask = np.zeros((1, (enc.n_vocab + 31) // 32), dtype=np.int32)

    def compile(self, schema):
        regex = self.oc.json_schema.build_regex_from_schema(json.dumps(schema))
        return self.oc.Guide(self.oc.Index(regex, self.vocab))

    def allowed(self, m):
        m.write_mask_into(self.mask.ctypes.data, self.mask.size, 4)
        return self.mask[0]

    def advance(self, m, t):
        m.advance(t)


def walk(lib, schema, enc, short_ids, rng):
    """One random path through the mask; returns (text or None if unfinished, mask times)."""
    m, times, out = lib.compile(schema), [], []
    for _ in range(MAX_STEPS):
        t0 = time.perf_counter()
        bits = lib.allowed(m)
        times.append(time.perf_counter() - t0)
        allowed = np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")[:enc.n_vocab])
        if lib.eos in allowed and rng.random() < 0.5:
            return enc.decode(out), times
        pick = [t for t in allowed if t in short_ids] or list(allowed)
        t = int(rng.choice(pick))
        if t == lib.eos:
            return enc.decode(out), times
        lib.advance(m, t)
        out.append(t)
    return None, times


def main():
    enc = load_tokenizer(shared_o200k_harmony_folder())
    short_ids = {i for i in range(199998) if len(enc.decode_single_token_bytes(i)) <= 2}
    rng = random.Random(0)
    for cls in (Llguidance, Xgrammar, OutlinesCore):
        t0 = time.perf_counter()
        try:
            lib = cls(enc)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"{cls.name}: can't build from our vocabulary: {e}")
            continue
        print(f"\n{cls.name}: matcher from our tiktoken vocabulary in {time.perf_counter() - t0:.1f} s")
        all_times = []
        for name, schema in SCHEMAS.items():
            t0 = time.perf_counter()
            try:
                lib.compile(schema)
            except Exception as e:  # noqa: BLE001
                print(f"  {name:16s} does not compile: {str(e).splitlines()[0][:90]}")
                continue
            compile_s = time.perf_counter() - t0
            valid = unfinished = 0
            bad = []
            for _ in range(WALKS):
                text, times = walk(lib, schema, enc, short_ids, rng)
                all_times += times
                if text is None:
                    unfinished += 1
                    continue
                try:
                    jsonschema.validate(json.loads(text), schema)
                    valid += 1
                except (ValueError, jsonschema.ValidationError):
                    bad.append(text)
            print(f"  {name:16s} compile {compile_s * 1e3:7.1f} ms  valid {valid}/{WALKS}  unfinished {unfinished}"
                  + (f"  INVALID e.g. {bad[0][:60]!r}" if bad else ""))
        if all_times:
            ms = np.array(all_times) * 1e3
            print(f"  mask per token: median {np.median(ms):.3f} ms, p95 {np.percentile(ms, 95):.3f} ms, max {ms.max():.2f} ms")


if __name__ == "__main__":
    main()
