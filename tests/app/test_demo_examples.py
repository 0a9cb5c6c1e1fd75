"""Every example question the app, README.md and the model card show for the demo model is one the
shipped model answers right, at the effort it is shown with, through the app's own load path
(app.engine_bridge.load_engine -> ChatSession.reply, greedy as the folder asks)."""
import re
from pathlib import Path

import pytest

from app.demo_examples import EFFORT, EXAMPLES
from models.demo_train.evaluate import grade
from models.registry import demo_folder

ROOT = Path(__file__).resolve().parents[2]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def plain_answer(kind: str, question: str) -> str:
    """The right answer worked out from the question with plain Python (not the model's data code)."""
    nums = [int(n) for n in re.findall(r"\d+", question)]
    if kind == "addition":
        return str(sum(nums))
    if kind == "multiplication":
        return str(nums[0] * nums[1])
    if kind == "sorting":
        return ", ".join(map(str, sorted(nums)))
    if kind == "letters":
        letter, word = re.search(r"letter (\w) appear in (\w+)", question).groups()
        return str(word.count(letter))
    if kind == "weekday":
        start = next(i for i, d in enumerate(DAYS) if d in question)
        return DAYS[(start + (nums[0] if "after" in question else -nums[0])) % 7]
    if kind == "units":
        return str(nums[0] * {"hours": 60, "days": 24}[re.search(r"in \d+ (\w+)", question).group(1)])
    raise AssertionError(kind)


def test_examples_cover_every_kind_and_their_answers_are_right():
    assert {e.kind for e in EXAMPLES} == {"addition", "multiplication", "letters", "sorting", "weekday", "units"}
    for e in EXAMPLES:
        assert e.answer == plain_answer(e.kind, e.question), e


def test_readmes_show_only_these_examples():
    questions = {e.question for e in EXAMPLES}
    card = (ROOT / "models" / "demo" / "README.md").read_text()
    table = card.split("| kind | example |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ")[1].rstrip(" |") for line in table.strip().splitlines()[1:]]
    assert len(rows) == 6 and set(rows) <= questions, rows
    assert "42, 7, 19, 88, 3" not in card     # the old example the model sorts wrongly
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"“([^”]+[?.])”", readme)
    assert shown and set(shown) <= questions, shown


@pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")
def test_the_demo_model_answers_every_shown_example_right():
    pytest.importorskip("mlx.core")
    from app.engine_bridge import load_engine

    engine = load_engine(str(demo_folder()), 8192)
    assert engine.greedy
    wrong = []
    for e in EXAMPLES:
        final, reason = "", ""
        for ev in engine.reply([{"role": "user", "content": e.question}], effort=EFFORT,
                                sampling=engine.sampling(1.0, 1.0), max_tokens=600):
            if type(ev).__name__ == "TextDelta" and ev.channel == "final":
                final += ev.text
            elif type(ev).__name__ == "Done":
                reason = ev.stop_reason
        if reason != "return" or not grade(e.kind, e.answer, final):
            wrong.append((e.question, final, reason))
    assert wrong == []
