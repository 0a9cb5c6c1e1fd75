"""Seeded synthetic questions whose reasoning does real work, written at three reasoning efforts.

Each generator takes a `random.Random` and an effort ("low" | "medium" | "high") and returns a
`Task`: the user's question, the analysis-channel reasoning, the final answer text, and the
canonical answer used for grading. The analysis follows the effort:
  low    one line (the result, no steps)
  medium the same steps as high, every line of them
  high   every step, one per line (column additions with carries, each comparison, ...)
(Medium was once the key steps condensed on one line, which the shipped weights were trained on
and get 48% right, e.g. 486 + 357 = 543. Then high's steps without its opening line, tried in issue
14's first candidate: 68%. The opening line restates the operands right after the question, and that
is what keeps a tiny model's copies right, so medium now keeps every line; see models/demo/README.md,
"Python tool". Medium and high still differ in the system message's "Reasoning:" line.)
Numbers are written without separators so every digit is one token (the tokenizer never merges
digits), which keeps column arithmetic learnable for a tiny model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

EFFORTS = ("low", "medium", "high")
PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Short common words for letter counting; the model learns their spellings from training.
WORDS = (
    "apple banana cherry strawberry mississippi letter bookkeeper balloon coffee committee "
    "address success pepper puzzle giraffe hippopotamus banana summer winter butterfly "
    "elephant tomorrow parallel assessment possession occurrence necessary beginning "
    "grammar rhythm syllable programming engineering accommodate embarrass millennium "
    "bubble cucumber daffodil excellent football goalkeeper happiness illusion jellyfish "
    "kangaroo lemonade marshmallow noodle orange pineapple quilt raccoon sunflower teddy "
    "umbrella volleyball watermelon xylophone yellow zucchini river mountain ocean forest "
    "chocolate vanilla cinnamon pizza spaghetti tomato potato carrot broccoli avocado "
    "keyboard computer monitor window kitchen blanket pillow mirror tunnel bridge"
).split()

# Conversions: (question unit, answer unit, factor); the factor is what the reasoning multiplies by.
CONVERSIONS = (
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("days", "hours", 24),
    ("weeks", "days", 7),
    ("feet", "inches", 12),
    ("kilometers", "meters", 1000),
    ("meters", "centimeters", 100),
    ("kilograms", "grams", 1000),
    ("liters", "milliliters", 1000),
    ("years", "months", 12),
)


@dataclass(frozen=True)
class Task:
    kind: str
    question: str
    analysis: str
    final: str
    answer: str  # canonical answer the grader looks for in the final text
    code: str = ""  # Python that prints the answer (what the model sends to the python tool)
    output: str = ""  # what that code prints (the tool's result the model reads back)
    tool_final: str = ""  # the final answer after the tool's result, when not `final`
    # The question's structured facts, e.g. (("a", 486), ("b", 357), ("sum", 843)): what a JSON
    # answer is filled from and graded by (models/demo_train/json_answers.py). Tuples: hashable.
    facts: tuple = ()


def _digits_right_to_left(n: int) -> list[int]:
    return [int(c) for c in reversed(str(n))]


def _places(n: int) -> str:
    """"524: hundreds 5, tens 2, ones 4." Each digit follows its place name, so a later step can
    find "the tens digit" by looking for the word instead of counting positions from the right."""
    digits = str(n)
    named = [f"{PLACES[len(digits) - 1 - i]} {d}" for i, d in enumerate(digits)]
    return f"{n}: {', '.join(named)}."


def addition(rng: random.Random, effort: str) -> Task:
    """a + b with 2..3-digit operands, worked column by column from the ones place."""
    a = rng.randint(10, 999)
    b = rng.randint(10, 999)
    total = a + b
    da, db = _digits_right_to_left(a), _digits_right_to_left(b)
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = da[i] if i < len(da) else 0
        y = db[i] if i < len(db) else 0
        s = x + y + carry
        expr = f"{x}+{y}" + (f"+{carry}" if carry else "")
        if s >= 10:
            steps.append(f"{PLACES[i]}: {expr}={s}, write {s % 10} carry 1.")
        else:
            steps.append(f"{PLACES[i]}: {expr}={s}, write {s}.")
        carry = s // 10
    if carry:
        steps.append(f"{PLACES[len(steps)]}: carry 1, write 1.")
    q = rng.choice(("What is {a} + {b}?", "Compute {a} + {b}.", "Add {a} and {b}.", "{a} + {b} = ?"))
    final = f"{a} + {b} = {total}."
    if effort == "low":
        analysis = f"{a} + {b} = {total}."
    else:
        analysis = "\n".join([f"Add {a} and {b} column by column, starting from the ones.", _places(a), _places(b)]
                             + steps + [f"Reading from the highest place down: {total}."])
    return Task("addition", q.format(a=a, b=b), analysis, final, str(total), f"print({a} + {b})", f"{total}\n",
                facts=(("a", a), ("b", b), ("sum", total)))


def multiplication(rng: random.Random, effort: str) -> Task:
    """A 2..3-digit number times a single digit, with carries."""
    a = rng.randint(12, 999)
    d = rng.randint(2, 9)
    product = a * d
    steps, carry = [], 0
    digits = _digits_right_to_left(a)
    for i, x in enumerate(digits):
        p = x * d + carry
        # The carry is added in a step of its own: one times-table fact, then one small sum. A
        # tiny model got "8x5+1" wrong far more often than either "8x5" or "40+1".
        expr = f"{x}x{d}={x * d}" + (f", {x * d}+{carry}={p}" if carry else "")
        last = i == len(digits) - 1
        if last:
            steps.append(f"{PLACES[i]}: {expr}, write {p}.")
        elif p >= 10:
            steps.append(f"{PLACES[i]}: {expr}, write {p % 10} carry {p // 10}.")
        else:
            steps.append(f"{PLACES[i]}: {expr}, write {p}.")
        carry = p // 10
    q = rng.choice(("What is {a} times {d}?", "Compute {a} x {d}.", "Multiply {a} by {d}.", "{a} x {d} = ?"))
    final = f"{a} x {d} = {product}."
    if effort == "low":
        analysis = f"{a} x {d} = {product}."
    else:
        analysis = "\n".join([f"Multiply {a} by {d} one digit at a time, starting from the ones.", _places(a)]
                             + steps + [f"Reading from the highest place down: {product}."])
    return Task("multiplication", q.format(a=a, d=d), analysis, final, str(product), f"print({a} * {d})", f"{product}\n",
                facts=(("number", a), ("factor", d), ("product", product)))


def letter_count(rng: random.Random, effort: str) -> Task:
    """How many times a letter occurs in a word (the letter is usually present)."""
    word = rng.choice(WORDS)
    letter = rng.choice(word) if rng.random() < 0.85 else rng.choice("abcdefghijklmnopqrstuvwxyz")
    count = word.count(letter)
    q = rng.choice((
        "How many times does the letter {l} appear in {w}?",
        "How many {l}'s are in the word {w}?",
        "Count the letter {l} in {w}.",
    )).format(l=letter, w=word)
    times = "time" if count == 1 else "times"
    final = f"The letter {letter} appears {count} {times} in {word}."
    if effort == "low":
        analysis = f"{word} has {count} {letter}."
    else:
        lines = [f"Spell {word} and check each letter against {letter}."]
        seen = 0
        # "Letter s vs r:" writes both letters as the same token as the question's " r", side by
        # side, so the yes/no is a comparison of the two tokens just before it. (With only the
        # spelled letter on the line, the model had to look back to the question and often missed.)
        for ch in word:
            if ch == letter:
                seen += 1
                lines.append(f"Letter {ch} vs {letter}: yes, count {seen}.")
            else:
                lines.append(f"Letter {ch} vs {letter}: no.")
        lines.append(f"Total: {count}.")
        analysis = "\n".join(lines)
    return Task("letters", q, analysis, final, str(count), f'print("{word}".count("{letter}"))', f"{count}\n",
                facts=(("word", word), ("letter", letter), ("count", count), ("present", count > 0)))


def sorting(rng: random.Random, effort: str) -> Task:
    """Sort 3..5 distinct numbers below 100 by repeatedly taking the smallest."""
    n = rng.randint(3, 5)
    values = rng.sample(range(1, 100), n)
    ordered = sorted(values)
    listed = ", ".join(map(str, values))
    q = rng.choice((
        "Sort these numbers from smallest to largest: {v}.",
        "Put in increasing order: {v}.",
        "Order from least to greatest: {v}.",
    )).format(v=listed)
    answer = ", ".join(map(str, ordered))
    final = f"In order: {answer}."
    if effort == "low":
        analysis = f"Sorted: {answer}."
    else:
        # Each line finds the smallest remaining number by walking the list with a running
        # minimum: every comparison is between two numbers written side by side.
        lines = ["Take the smallest remaining number each time."]
        remaining = list(values)
        while len(remaining) > 1:
            low, walk = remaining[0], []
            for v in remaining[1:]:
                walk.append(f"{low} vs {v} keep {min(low, v)}")
                low = min(low, v)
            lines.append(f"From {', '.join(map(str, remaining))}: {', '.join(walk)}. Smallest: {low}.")
            remaining.remove(low)
        lines.append(f"Last is {remaining[0]}.")
        lines.append(f"Sorted: {answer}.")
        analysis = "\n".join(lines)
    return Task("sorting", q, analysis, final, answer, f"print(sorted([{listed}]))", f"[{answer}]\n",
                facts=(("numbers", tuple(values)), ("sorted", tuple(ordered))))


def day_of_week(rng: random.Random, effort: str) -> Task:
    """The weekday n days after (or before) a given weekday."""
    start = rng.randrange(7)
    n = rng.randint(1, 60)
    after = rng.random() < 0.7
    shift = n % 7
    end = (start + shift) % 7 if after else (start - shift) % 7
    word = "after" if after else "before"
    q = rng.choice((
        "What day of the week is {n} days {w} {d}?",
        "If today is {d}, what day is it {n} days {w}?",
    ))
    q = q.format(n=n, d=DAYS[start], w=word if "If today" not in q else ("later" if after else "earlier"))
    q = q.replace("days later", "days from now").replace("days earlier", "days ago")
    final = f"{DAYS[end]}."
    if effort == "low":
        analysis = f"{n} days {word} {DAYS[start]} is {DAYS[end]}."
    else:
        move = "forward" if after else "back"
        walk, day = [], start
        for i in range(1, shift + 1):
            day = (day + 1) % 7 if after else (day - 1) % 7
            walk.append(f"{i}: {DAYS[day]}")
        split = f"{n} = {n // 7}x7 + {shift}"
        lines = ["A week has 7 days, so only the remainder matters.",
                 f"{split}.", f"Count {shift} days {move} from {DAYS[start]}."]
        lines += walk if walk else ["No days to move: same weekday."]
        lines.append(f"So it is {DAYS[end]}.")
        analysis = "\n".join(lines)
    # The code only copies the question's weekday and number: no lookup for the model to get wrong.
    days = ", ".join(f'"{d}"' for d in DAYS)
    code = f'days = [{days}]\nprint(days[(days.index("{DAYS[start]}") {"+" if after else "-"} {n}) % 7])'
    # days_later is negative for "before"/"ago" questions.
    return Task("weekday", q, analysis, final, DAYS[end], code, f"{DAYS[end]}\n",
                facts=(("start", DAYS[start]), ("days_later", n if after else -n), ("day", DAYS[end])))


def unit_conversion(rng: random.Random, effort: str) -> Task:
    """Convert a whole amount to a smaller unit: amount x factor, with the product worked out."""
    src, dst, factor = rng.choice(CONVERSIONS)
    amount = rng.randint(2, 30)
    result = amount * factor
    q = rng.choice((
        "How many {dst} are in {n} {src}?",
        "Convert {n} {src} to {dst}.",
        "{n} {src} is how many {dst}?",
    )).format(n=amount, src=src, dst=dst)
    final = f"{amount} {src} is {result} {dst}."
    rule = f"1 {src[:-1] if src.endswith('s') else src} = {factor} {dst}."
    if effort == "low":
        analysis = f"{amount} x {factor} = {result}."
    else:
        lines = [rule, f"So multiply {amount} by {factor}."]
        if factor in (100, 1000):
            zeros = str(factor).count("0")
            lines.append(f"Times {factor} appends {zeros} zeros: {amount} becomes {result}.")
        elif factor >= 10:
            tens, ones = factor // 10 * 10, factor % 10
            a, b = amount * tens, amount * ones
            if ones:
                lines.append(f"{amount} x {factor} = {amount} x {tens} + {amount} x {ones}.")
                lines.append(f"{amount} x {tens} = {a}.")
                lines.append(f"{amount} x {ones} = {b}.")
                lines.append(f"{a} + {b} = {result}.")
            else:
                lines.append(f"{amount} x {factor // 10} = {amount * factor // 10}, then append a zero: {result}.")
        elif amount >= 10:
            tens, ones = amount // 10 * 10, amount % 10
            lines.append(f"{amount} x {factor} = {tens} x {factor} + {ones} x {factor} = {tens * factor} + {ones * factor} = {result}.")
        else:
            lines.append(f"{amount} x {factor} = {result}.")
        lines.append(f"Answer: {result} {dst}.")
        analysis = "\n".join(lines)
    return Task("units", q, analysis, final, str(result), f"print({amount} * {factor})", f"{result}\n",
                facts=(("value", amount), ("from_unit", src), ("to_unit", dst), ("result", result)))


def long_multiplication(rng: random.Random, effort: str) -> Task:
    """Two numbers of 2..4 digits each: more than the model can work out in its head, so with the
    python tool it calls it, and without it it says so (its `answer` is the product all the same)."""
    a = rng.randint(10, 9999)
    b = rng.randint(10, 9999)
    product = a * b
    q = rng.choice(("What is {a} times {b}?", "Compute {a} x {b}.", "Multiply {a} by {b}.", "{a} x {b} = ?"))
    analysis = f"{a} x {b} has too many digits to multiply reliably without a tool."
    final = f"I can't multiply {a} by {b} reliably in my head. Turn on the Python tool in Settings and ask again."
    return Task("long multiplication", q.format(a=a, b=b), analysis, final, str(product), f"print({a} * {b})",
                f"{product}\n", f"{a} x {b} = {product}.")


GENERATORS = {
    "addition": addition,
    "multiplication": multiplication,
    "letters": letter_count,
    "sorting": sorting,
    "weekday": day_of_week,
    "units": unit_conversion,
}
# Kinds only the tool-use data has (kept out of GENERATORS, which fixes the held-out questions).
TOOL_GENERATORS = {"long multiplication": long_multiplication}
