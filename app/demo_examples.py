"""The questions the app suggests for the tiny demo model, one per kind it was trained on.

Each is one the shipped model answers right at EFFORT (checked by running the real model in
tests/app/test_demo_examples.py); README.md and models/demo/README.md show only these.
"""
from __future__ import annotations

from dataclasses import dataclass

EFFORT = "high"        # the demo model shows its worked steps at medium and high effort, and is right there
ACCURACY = "about 85% of them right at medium and high effort"   # models/demo/README.md: 85.7% of 300 held-out at both


@dataclass(frozen=True)
class Example:
    kind: str
    question: str
    answer: str


EXAMPLES = (
    Example("addition", "What is 486 + 357?", "843"),
    Example("multiplication", "Multiply 248 by 7.", "1736"),
    Example("letters", "How many times does the letter r appear in strawberry?", "3"),
    Example("sorting", "Sort these numbers from smallest to largest: 35, 12, 64, 8.", "8, 12, 35, 64"),
    Example("weekday", "What day of the week is 9 days after Friday?", "Sunday"),
    Example("units", "How many minutes are in 7 hours?", "420"),
)
