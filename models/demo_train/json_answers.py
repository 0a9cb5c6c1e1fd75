"""Training conversations that answer in JSON (an answer format), and their grader.

    d = json_dialog(rng, task, effort, date)          # models.demo_train.dialog.Dialog
    system, ids, trained = encode_dialog(enc, d)       # the engine's renderer, as at chat time
    stream = json_dialogs(TRAIN_SEED, 20000)           # a training stream, never a held-out question
    held = heldout_json(60)                            # held-out questions with the clients' schemas
    valid, right = grade_json(held[0], text)           # or grade_json((schema, task), text)

The model's turn is the task's analysis (the same text as without a format: one line at low) then
`<|start|>assistant<|channel|>final <|constrain|>json<|message|>{...}<|return|>`. The JSON is written
as engine/structured.py's llguidance grammar allows it, token for token: json.dumps's ", " and ": "
separators, no other whitespace, non-ASCII written as is (ensure_ascii=False: the grammar refuses
\\u escapes), keys in the schema's property order (llguidance enforces that order; "shuffled" keys
are shuffled in the schema, never in the answer). The demo fills EVERY property it knows a value
for, required or optional; an optional property it knows nothing about is left out (a required one
makes the schema unanswerable: training skips it). Integers stay integers even where the schema
says "number" (843, not 843.0: both valid, one way to write it). Every string is short (under ~40
characters): the failure this data fixes is junk written inside a never-closed string.

Key vocabulary (what the demo understands in a schema; any kind's keys may also sit inside a nested
object of any name, e.g. {"operands": {"a": .., "b": ..}}; key matching is exact, lower case):
  addition        a | first | x, b | second | y: the operands; sum | total | answer | result | value:
                  the sum; even | is_even: the sum is even; operands: {a, b}
  multiplication  number | a | first: the number; factor | b | multiplier: the digit; product |
                  answer | result | value | total: the product; even | is_even; operands: {number, factor}
  letters         word, letter; count | answer | result | total | occurrences: how many times;
                  present | contains | found: the letter is in the word
  sorting         numbers | sorted | answer | result | values | ordered: the numbers smallest first;
                  given | original | input: the numbers as asked; smallest | min, largest | max;
                  count | how_many: how many numbers
  weekday         start | start_day | from_day: the day asked from; days_later | days | offset: the
                  days moved (negative for "before"/"ago"); day | answer | result | weekday: the
                  answer; weekend | is_weekend: the answer is Saturday or Sunday
  units           value | amount: the amount asked; from_unit | source_unit; to_unit | unit |
                  target_unit; result | answer | converted: the converted amount; input: {value,
                  unit (from)}, output: {value (result), unit (to)}
  any kind        explanation | reasoning | note: a short free string, the low-effort line, e.g.
                  "486 + 357 = 843" (never graded)
Strings may be enums (the weekdays; the unit names); an integer answer asked as a string is written
"843", a sorted list asked as a string "3, 5, 9".

CLIENT_MODELS are the pydantic models the evaluation (and tests/server/test_client_schemas.py) ask
with, as the six OpenAI clients send them: `Model.model_json_schema()` (langchain, instructor, llm)
and the openai client's strict transform (additionalProperties false, all required; openai,
openai-agents); pydantic-ai's (no titles, $defs last) come from the capture,
models/demo_train/client_schemas.json, whose every schema joins the mix when the file exists.
The training mix (json_dialog): 35% a client's shape (the two above and every captured one), the
rest random variants (random_schema) so the model reads the schema rather than remembering it; 8%
of all with the schema only in the developer instructions and a json_object format, as
instructor's JSON mode sends it (grade_json then checks such a dialog against {"type": "object"}:
grade with (schema, task) to check it against the instructed schema).
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from engine.answer_format import ANY_JSON_OBJECT, AnswerFormat
from models.demo_train.conversations import HELDOUT_SEED, heldout_examples, make_example, random_date
from models.demo_train.dialog import Dialog
from models.demo_train.tasks import CONVERSIONS, DAYS, EFFORTS, GENERATORS, Task

CONSTRAIN_JSON = "<|constrain|>json"
HELDOUT_DATE = "2026-11-22"  # for held-out questions drawn without a date
CLIENT_SCHEMAS_FILE = Path(__file__).with_name("client_schemas.json")  # captured client bodies, if present

# ---------------------------------------------------------------- the clients' models

Day = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Sum(BaseModel):
    a: int
    b: int
    sum: int


class Product(BaseModel):
    number: int
    factor: int
    product: int


class LetterCount(BaseModel):
    word: str
    letter: str
    count: int


class Sorted(BaseModel):
    numbers: list[int]  # the numbers smallest first


class Weekday(BaseModel):
    start: Day
    days_later: int
    day: Day


class Conversion(BaseModel):
    value: int
    from_unit: str
    to_unit: str
    result: int


class Operands(BaseModel):
    a: int
    b: int


class Addition(BaseModel):  # nesting ($defs/$ref) and a free string
    operands: Operands
    sum: int
    explanation: str


class LetterCheck(BaseModel):  # a boolean
    word: str
    letter: str
    present: bool
    count: int


class Measure(BaseModel):  # a number
    result: float
    unit: str


CLIENT_MODELS: dict[str, list[type[BaseModel]]] = {
    "addition": [Sum, Addition],
    "multiplication": [Product],
    "letters": [LetterCount, LetterCheck],
    "sorting": [Sorted],
    "weekday": [Weekday],
    "units": [Conversion, Measure],
}
SHAPES = ("pydantic", "strict")  # Model.model_json_schema() and openai's to_strict_json_schema(Model)


@lru_cache(maxsize=64)
def client_schema(model: type[BaseModel], shape: str) -> dict:
    if shape == "strict":
        from openai.lib._pydantic import to_strict_json_schema  # what client.beta.chat.completions.parse sends

        return to_strict_json_schema(model)
    return model.model_json_schema()


def client_formats(kind: str) -> list[AnswerFormat]:
    """Every client shape for `kind`, named as the clients name them (the model's class name), plus
    the captured bodies of models/demo_train/client_schemas.json when that file exists."""
    out = [AnswerFormat(client_schema(m, s), m.__name__) for m in CLIENT_MODELS[kind] for s in SHAPES]
    return out + captured_formats().get(kind, [])


def _captured_items() -> list[dict]:
    if not CLIENT_SCHEMAS_FILE.exists():
        return []
    return _read_capture(str(CLIENT_SCHEMAS_FILE), CLIENT_SCHEMAS_FILE.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read_capture(path: str, mtime_ns: int) -> list[dict]:
    """Read once per file version (every training dialog asks)."""
    data = json.loads(Path(path).read_text())
    return [x for x in (data.values() if isinstance(data, dict) else data) if isinstance(x, dict)]


def _specs(item: dict) -> list[dict]:
    """The {"schema", "name"?, "description"?} specs an entry holds: OpenAI chat's response_format,
    the Responses API's text.format, a function's parameters (pydantic-ai's tool output), or bare."""
    out = []
    rf = item.get("response_format")
    if isinstance(rf, dict) and isinstance(rf.get("json_schema"), dict):
        out.append(rf["json_schema"])
    for key in ("text.format", "json_schema"):
        if isinstance(item.get(key), dict):
            out.append(item[key])
    for tool in item.get("tools") or ():
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("parameters"), dict):
            out.append({"schema": fn["parameters"], "name": fn.get("name"), "description": fn.get("description")})
    if isinstance(item.get("schema"), dict):
        out.append(item)
    return [x for x in out if isinstance(x.get("schema"), dict)]


def captured_formats() -> dict[str, list[AnswerFormat]]:
    """The schemas the six clients were seen sending (tests/server/test_client_schemas.py's capture,
    models/demo_train/client_schemas.json), by kind, without repeats. An entry's kind is its "kind",
    else its "model" (a CLIENT_MODELS class name), else the format's name or the schema's title.
    Entries this can't place (or with a schema the demo can't fill) are skipped."""
    by_name = {m.__name__.lower(): k for k, models in CLIENT_MODELS.items() for m in models}
    out: dict[str, list[AnswerFormat]] = {}
    for item in _captured_items():
        for spec in _specs(item):
            schema = spec["schema"]
            name = spec.get("name") or item.get("name") or schema.get("title") or "response"
            kind = item.get("kind") or next((by_name[str(n).lower()] for n in (item.get("model"), name,
                                             schema.get("title")) if str(n).lower() in by_name), None)
            if kind not in CLIENT_MODELS:
                continue
            fmt = AnswerFormat(schema, name, spec.get("description"))
            if fmt not in out.setdefault(kind, []):
                out[kind].append(fmt)
    return out


# ---------------------------------------------------------------- key vocabulary

# kind -> fact -> the keys that name it (the first is the canonical one).
KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "addition": {"a": ("a", "first", "x"), "b": ("b", "second", "y"),
                 "sum": ("sum", "total", "answer", "result", "value"), "even": ("even", "is_even")},
    "multiplication": {"number": ("number", "a", "first"), "factor": ("factor", "b", "multiplier"),
                       "product": ("product", "answer", "result", "value", "total"), "even": ("even", "is_even")},
    "letters": {"word": ("word",), "letter": ("letter",),
                "count": ("count", "answer", "result", "total", "occurrences"),
                "present": ("present", "contains", "found")},
    "sorting": {"sorted": ("numbers", "sorted", "answer", "result", "values", "ordered"),
                "numbers": ("given", "original", "input"), "smallest": ("smallest", "min"),
                "largest": ("largest", "max"), "size": ("count", "how_many")},
    "weekday": {"start": ("start", "start_day", "from_day"), "days_later": ("days_later", "days", "offset"),
                "day": ("day", "answer", "result", "weekday"), "weekend": ("weekend", "is_weekend")},
    "units": {"value": ("value", "amount"), "from_unit": ("from_unit", "source_unit"),
              "to_unit": ("to_unit", "unit", "target_unit"), "result": ("result", "answer", "converted")},
}
FREE_KEYS = ("explanation", "reasoning", "note")  # short free strings: written, never graded
ANSWER_FACT = {"addition": "sum", "multiplication": "product", "letters": "count", "sorting": "sorted",
               "weekday": "day", "units": "result"}
# Nested objects with a vocabulary of their own (fact -> keys inside that object).
NESTED: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "addition": {"operands": {"a": ("a",), "b": ("b",)}},
    "multiplication": {"operands": {"number": ("number", "a"), "factor": ("factor", "b")}},
    "units": {"input": {"value": ("value",), "from_unit": ("unit",)},
              "output": {"result": ("value",), "to_unit": ("unit",)}},
}
UNITS = tuple(sorted({u for src, dst, _ in CONVERSIONS for u in (src, dst)}))


def _lookup(kind: str, nest: str | None = None) -> dict:
    """key -> fact name (str) or, for a nested object, its own key -> fact dict."""
    keys = NESTED[kind][nest] if nest else KEYS[kind]
    table = {k: fact for fact, names in keys.items() for k in names}
    table.update({k: "explanation" for k in FREE_KEYS})
    if not nest:
        for name, inner in NESTED.get(kind, {}).items():
            table[name] = _lookup(kind, name)
    return table


def facts_of(task: Task) -> dict:
    """The task's facts plus the values derived from them (the explanation line, even, ...)."""
    f = dict(task.facts)
    if not f:
        raise ValueError(f"A {task.kind} task carries no facts to answer in JSON from.")
    k = task.kind
    if k == "addition":
        f |= {"even": f["sum"] % 2 == 0, "explanation": f"{f['a']} + {f['b']} = {f['sum']}"}
    elif k == "multiplication":
        f |= {"even": f["product"] % 2 == 0, "explanation": f"{f['number']} x {f['factor']} = {f['product']}"}
    elif k == "letters":
        f["explanation"] = f"{f['word']} has {f['count']} {f['letter']}"
    elif k == "sorting":
        s = f["sorted"]
        f |= {"smallest": s[0], "largest": s[-1], "size": len(s), "explanation": "Sorted: " + ", ".join(map(str, s))}
    elif k == "weekday":
        n = f["days_later"]
        f |= {"weekend": f["day"] in ("Saturday", "Sunday"),
              "explanation": f"{abs(n)} days {'after' if n >= 0 else 'before'} {f['start']} is {f['day']}"}
    elif k == "units":
        f["explanation"] = f"{f['value']} x {f['result'] // f['value']} = {f['result']}"
    return f


# ---------------------------------------------------------------- filling a schema


class Unmapped(Exception):
    """A property the vocabulary has no value for (or not of the schema's type)."""


def _resolve(schema: dict, root: dict) -> dict:
    """Follow local $refs and the anyOf/allOf wrappers pydantic writes (Optional: the non-null branch)."""
    for _ in range(20):
        if "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise Unmapped(ref)
            node = root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = node
        elif "anyOf" in schema or "oneOf" in schema or "allOf" in schema:
            branches = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
            schema = next((b for b in branches if b.get("type") != "null"), branches[0])
        else:
            return schema
    raise Unmapped("$ref cycle")


def _type(schema: dict) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t


def _coerce(value, schema: dict, root: dict):
    """`value` as the schema's type wants it (Unmapped when it can't be)."""
    s = _resolve(schema, root)
    t = _type(s)
    if "enum" in s:
        for option in s["enum"]:
            if isinstance(option, str) and isinstance(value, str) and option.lower() == value.lower():
                return option
            if option == value and type(option) is type(value):
                return option
        raise Unmapped(value)
    if isinstance(value, tuple):
        if t == "array" or t is None:
            return [_coerce(v, s.get("items", {}), root) for v in value]
        if t == "string":
            return ", ".join(map(str, value))
        raise Unmapped(value)
    if isinstance(value, bool):
        if t in ("boolean", None):
            return value
        raise Unmapped(value)
    if isinstance(value, int):
        if t in ("integer", "number", None):
            return value
        if t == "string":
            return str(value)
        raise Unmapped(value)
    if isinstance(value, str) and t in ("string", None):
        return value
    raise Unmapped(value)


def _fill(facts: dict, table: dict, schema: dict, root: dict, strict: bool, kind: str) -> dict:
    s = _resolve(schema, root)
    required = set(s.get("required", ()))
    out = {}
    for key, prop in s.get("properties", {}).items():
        try:
            out[key] = _value(facts, table, key, prop, root, strict, kind)
        except Unmapped:
            if strict and key in required:
                raise
    return out


def _value(facts: dict, table: dict, key: str, prop: dict, root: dict, strict: bool, kind: str):
    entry = table.get(key)
    p = _resolve(prop, root)
    if _type(p) == "object" or "properties" in p:
        # A nested object: its own vocabulary if it has one, else the kind's keys inside any name.
        inner = entry if isinstance(entry, dict) else _lookup(kind)
        return _fill(facts, inner, p, root, strict, kind)
    if not isinstance(entry, str) or entry not in facts:
        raise Unmapped(key)
    return _coerce(facts[entry], p, root)


def answer_object(task: Task, schema: dict) -> dict:
    """What the demo writes for `schema` (every property it knows, in the schema's order).
    Unmapped: a required property it has no value for."""
    return _fill(facts_of(task), _lookup(task.kind), schema, schema, True, task.kind)


def answer_json(task: Task, schema: dict) -> str:
    """The final message's text, as the engine's grammar lets the model write it."""
    return json.dumps(answer_object(task, schema), ensure_ascii=False)


def _drop_free(value):
    if isinstance(value, dict):
        return {k: _drop_free(v) for k, v in value.items() if k not in FREE_KEYS}
    return value


def expected_values(task: Task, schema: dict) -> dict:
    """What a right answer holds: every property the schema names that maps to a fact (free strings
    such as "explanation" left out), nested as in the schema."""
    return _drop_free(_fill(facts_of(task), _lookup(task.kind), schema, schema, False, task.kind))


def _matches(expected, actual) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_matches, expected, actual))
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.strip().lower() == expected.lower()
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    return isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual == expected


def grade_json(case, text: str) -> tuple[bool, bool]:
    """(valid, right) for a model's final `text`. case: a JSON Dialog (its answer is the perfect
    JSON) or (schema, task). valid: parses and jsonschema accepts it; right: every property that maps
    to a fact holds the right value (strings case-insensitively; free strings not graded; a mapped
    property left out is wrong)."""
    import jsonschema

    if isinstance(case, Dialog):
        schema = case.answer_format.schema
        expected = _drop_free(json.loads(case.answer))
    else:
        schema, task = case
        expected = expected_values(task, schema)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False, False
    valid = jsonschema.validators.validator_for(schema)(schema).is_valid(value)
    return valid, valid and _matches(expected, value)


# ---------------------------------------------------------------- random schemas


def _title(key: str) -> str:
    return key.replace("_", " ").title()  # as pydantic titles a field


def _leaf(rng: random.Random, value, o: dict, enum: tuple | None = None) -> dict:
    """A property schema for `value` (its type varied where the value allows), bounded when o says."""
    bounded = o["bounded"]
    if isinstance(value, bool):
        s = {"type": "boolean"}
    elif isinstance(value, tuple):
        s = {"type": "array", "items": {"type": "integer"}}
        if bounded:
            s["maxItems"] = rng.choice([n for n in (5, 6, 8, 10) if n >= len(value)])
            if rng.random() < 0.5:
                s["minItems"] = 1
        if o["bounded"] and rng.random() < 0.3:
            s["items"] |= {"minimum": 0, "maximum": 100}
    elif isinstance(value, int):
        s = {"type": rng.choices(("integer", "number", "string"), (0.8, 0.12, 0.08))[0]}
        if s["type"] != "string" and bounded:
            lows = [x for x in (-100, -60, 0, 1) if x <= value]
            s["minimum"] = rng.choice(lows)
            if rng.random() < 0.7:
                s["maximum"] = rng.choice([x for x in (60, 100, 1000, 10000, 100000, 1000000) if x >= value])
    else:
        s = {"type": "string"}
        if enum and rng.random() < 0.5:
            s["enum"] = list(enum)
        elif bounded:
            s["maxLength"] = rng.choice([n for n in (12, 20, 32, 40, 64, 100) if n >= len(value)])
            if rng.random() < 0.3:
                s["minLength"] = 1
    return s


def _dress(rng: random.Random, key: str, s: dict, o: dict) -> dict:
    """Titles and descriptions (as often as the variant says), keys in pydantic's or a hand's order."""
    if o["titles"]:
        s["title"] = _title(key)
    if o["descriptions"] and rng.random() < 0.6:
        s["description"] = rng.choice((f"The {key.replace('_', ' ')}.", f"{_title(key)} of the question.",
                                       "Short.", f"The {key.replace('_', ' ')}, as a value."))
    return dict(sorted(s.items())) if o["sorted_keys"] else dict(sorted(s.items(), key=lambda kv: kv[0] != "type"))


def _object(rng: random.Random, props: dict, o: dict, answer_key: str | None, title: str | None) -> dict:
    keys = list(props)
    if rng.random() < o["shuffle"]:
        rng.shuffle(keys)
    s = {"type": "object", "properties": {k: props[k] for k in keys}}
    r = rng.random()
    nullable = {k for k in keys if "anyOf" in props[k]}  # pydantic's `X | None = None`: never required
    if r < 0.6:
        s["required"] = [k for k in keys if k not in nullable]
    elif r < 0.85:  # a subset, the answer always among it
        s["required"] = [k for k in keys if k == answer_key or (k not in nullable and rng.random() < 0.5)]
    if o["closed"]:
        s["additionalProperties"] = False
    if title:
        s["title"] = title
    return dict(sorted(s.items())) if o["sorted_keys"] else s


ENUMS = {"start": DAYS, "day": DAYS, "from_unit": UNITS, "to_unit": UNITS}


def random_schema(rng: random.Random, task: Task) -> dict:
    """A random schema for the task's kind: the answer under one of its names, some of the question's
    facts, maybe a free string and a boolean, maybe one nested object (inline or $defs/$ref), with or
    without bounds, titles, descriptions and additionalProperties false, in shuffled order."""
    kind, facts = task.kind, facts_of(task)
    o = {"bounded": rng.random() < 0.45, "titles": rng.random() < 0.5, "descriptions": rng.random() < 0.25,
         "closed": rng.random() < 0.5, "sorted_keys": rng.random() < 0.5, "shuffle": 0.4}
    answer = ANSWER_FACT[kind]
    answer_key = rng.choice(KEYS[kind][answer])
    props = {}
    nested = None
    if kind in NESTED and rng.random() < 0.3:
        nested = rng.choice(sorted(NESTED[kind]))
    defs = {}
    for fact, names in KEYS[kind].items():
        if fact == answer:
            props[answer_key] = _dress(rng, answer_key, _leaf(rng, facts[fact], o, ENUMS.get(fact)), o)
            continue
        if nested and fact in NESTED[kind][nested] or rng.random() > 0.55:
            continue
        key = rng.choice(names)  # a kind's names are distinct across its facts
        leaf = _leaf(rng, facts[fact], o, ENUMS.get(fact))
        if rng.random() < 0.1:  # optional as pydantic writes `X | None = None`; the demo still fills it
            leaf = {"anyOf": [leaf, {"type": "null"}], "default": None}
        props[key] = _dress(rng, key, leaf, o)
    if nested:
        inner = {}
        for fact, names in NESTED[kind][nested].items():
            key = rng.choice(names)
            inner[key] = _dress(rng, key, _leaf(rng, facts[fact], o, ENUMS.get(fact)), o)
        inner_title = _title(nested).replace(" ", "")
        obj = _object(rng, inner, {**o, "shuffle": 0.0}, None, inner_title if o["titles"] else None)
        obj["required"] = list(inner)  # a nested object's own facts are all asked for
        if rng.random() < 0.5:  # as pydantic writes a nested model
            defs[inner_title] = obj
            props[nested] = {"$ref": f"#/$defs/{inner_title}"}
        else:
            props[nested] = obj
        if nested == "output":
            props.pop(answer_key, None)  # the answer sits inside
    if rng.random() < 0.35:
        free = rng.choice(FREE_KEYS) if rng.random() < 0.3 else "explanation"
        s = {"type": "string"}
        if o["bounded"]:
            s["maxLength"] = rng.choice((40, 64, 100, 200))
        props[free] = _dress(rng, free, s, o)
    title = rng.choice(("Answer", "Result", "Response", _title(kind).replace(" ", ""))) if o["titles"] else None
    schema = _object(rng, props, o, answer_key if answer_key in props else None, title)
    if defs:
        schema = {"$defs": defs, **schema}
    return schema


def random_format(rng: random.Random, task: Task, client_share: float = 0.35) -> AnswerFormat:
    """The answer format a training question is asked with: a client's shape (client_share of the
    time) or a random variant under a random name."""
    if rng.random() < client_share:
        return rng.choice(client_formats(task.kind))
    schema = random_schema(rng, task)
    name = rng.choice(("answer", "response", "result", f"{task.kind}_answer", schema.get("title") or "Answer"))
    description = rng.choice((None, None, None, "The answer as JSON.", f"Answer to the {task.kind} question."))
    return AnswerFormat(schema, name, description)


# ---------------------------------------------------------------- dialogs


def final_message(content: str) -> dict:
    return {"role": "assistant", "channel": "final", "content_type": CONSTRAIN_JSON, "content": content}


def _dialog(task: Task, effort: str, date: str | None, fmt: AnswerFormat, python: bool, history: tuple,
            instructions: tuple[str, dict] | None = None) -> Dialog:
    """instructions: (developer text, the schema it describes): the format is then any JSON object,
    not shown, and the schema comes only through the client's instructions."""
    content = answer_json(task, instructions[1] if instructions else fmt.schema)
    turn = (({"role": "assistant", "channel": "analysis", "content": task.analysis}, True),
            (final_message(content), True))
    return Dialog(task.kind, effort, date, history=(*history, {"role": "user", "content": task.question}),
                  turn=turn, python=python, answer_format=ANY_JSON_OBJECT if instructions else fmt, answer=content,
                  developer=instructions[0] if instructions else None)


# Our own wordings of "the schema is in the instructions" (instructor's JSON mode sends such a system
# message with a json_object response format); the captured clients' own texts join them.
INSTRUCTIONS = (
    "Answer with a JSON object that matches this JSON schema:\n{schema}",
    "Reply in JSON only, following this schema:\n\n{schema}",
    "Return the answer as JSON that matches the following json_schema:\n\n{schema}\n\n"
    "Return an instance of the JSON, not the schema itself.",
)


def captured_instructions() -> dict[str, list[tuple[str, dict]]]:
    """Per kind, (system text, schema) of the captured json_object requests whose added system message
    carries the schema (instructor's JSON mode)."""
    by_name = {m.__name__.lower(): k for k, models in CLIENT_MODELS.items() for m in models}
    out: dict[str, list[tuple[str, dict]]] = {}
    for item in _captured_items():
        kind = item.get("kind") or by_name.get(str(item.get("model")).lower())
        for m in item.get("messages_added") or ():
            text = m.get("content") if isinstance(m, dict) and m.get("role") in ("system", "developer") else None
            if kind in CLIENT_MODELS and isinstance(text, str) and "{" in text:
                try:
                    schema = json.loads(text[text.index("{"):text.rindex("}") + 1])
                except json.JSONDecodeError:
                    continue
                if isinstance(schema, dict) and (text, schema) not in out.setdefault(kind, []):
                    out[kind].append((text, schema))
    return out


def random_instructions(rng: random.Random, task: Task) -> tuple[str, dict]:
    captured = captured_instructions().get(task.kind, [])
    if captured and rng.random() < 0.5:
        return rng.choice(captured)
    schema = random_format(rng, task).schema
    text = rng.choice(INSTRUCTIONS).format(schema=json.dumps(schema, indent=rng.choice((None, 2))))
    return text, schema


def json_dialog(rng: random.Random, task: Task, effort: str, date: str, python: bool = False,
                history: tuple = (), instructions_share: float = 0.08) -> Dialog:
    """The task asked with an answer format drawn from rng; the model's turn: the task's analysis
    (per effort), then the JSON final. history: earlier messages before the question, if any.
    instructions_share of the time the schema comes in the developer instructions with a json_object
    format instead (as instructor's JSON mode sends it)."""
    for _ in range(20):  # a captured client schema may have a required field the demo can't fill
        try:
            if rng.random() < instructions_share:
                fmt, instructions = ANY_JSON_OBJECT, random_instructions(rng, task)
            else:
                fmt, instructions = random_format(rng, task), None
            return _dialog(task, effort, date, fmt, python, history, instructions)
        except Unmapped:
            continue
    raise ValueError(f"No answer format found for a {task.kind} question.")


def json_dialogs(seed: int, count: int, python_share: float = 0.3) -> list[Dialog]:
    """A training stream of JSON dialogs (kinds and efforts uniform), never a held-out question."""
    rng = random.Random(seed)
    held = {ex.task.question for ex in heldout_examples()}
    out = []
    while len(out) < count:
        kind, effort = rng.choice(sorted(GENERATORS)), rng.choice(EFFORTS)
        task = GENERATORS[kind](rng, effort)
        date = random_date(rng)
        python = rng.random() < python_share
        if task.question not in held:
            out.append(json_dialog(rng, task, effort, date, python=python))
    return out


def heldout_json(count: int = 60, seed: int = HELDOUT_SEED, effort: str = "medium") -> list[Dialog]:
    """Held-out questions (the first `count` of conversations.heldout_examples, so never trained on)
    asked with the CLIENT_MODELS schemas in both shapes; kinds cycle, then each kind's models and
    shapes. Each dialog's `answer` is the JSON a perfect model writes."""
    rng = random.Random(seed)
    kinds = sorted(GENERATORS)
    out = []
    for i in range(count):
        # heldout_examples' own draws (the generators draw the same at every effort), at `effort`
        ex = make_example(rng, kind=kinds[i % len(kinds)], effort=effort, history_prob=0.0)
        models = CLIENT_MODELS[ex.task.kind]
        j = i // len(kinds)
        model, shape = models[j % len(models)], SHAPES[(j // len(models)) % len(SHAPES)]
        fmt = AnswerFormat(client_schema(model, shape), model.__name__)
        out.append(_dialog(ex.task, effort, ex.date or HELDOUT_DATE, fmt, False, ()))  # a Dialog needs a date
    return out


# ---------------------------------------------------------------- the answer as a function call
#
# pydantic-ai's default (ToolOutput) sends no response format but one function, `final_result`, whose
# parameters are the schema, with tool_choice "required": the answer is a call, which the client
# takes as the output (no tool result follows). A Dialog can't carry functions yet (its turn must end
# with a final answer), so this is the message for the lead to wire in: the turn is the analysis,
# then this call, ending in <|call|> (engine.harmony.render_message).


def json_call_message(task: Task, schema: dict, function: str = "final_result") -> dict:
    """The model's call to functions.`function` with the answer as its JSON arguments."""
    return {"role": "assistant", "channel": "commentary", "recipient": f"functions.{function}",
            "content_type": CONSTRAIN_JSON, "content": answer_json(task, schema)}
