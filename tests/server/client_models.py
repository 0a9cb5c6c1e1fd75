"""The answer schemas issue 27's JSON goal is measured with: the pydantic models the six clients are
given, in the order tests/server/test_client_schemas.py asks with them. They are defined once, in
models/demo_train/json_answers.py (CLIENT_MODELS, by kind), which the demo is trained and graded on."""

from __future__ import annotations

from models.demo_train.json_answers import CLIENT_MODELS as BY_KIND

_ORDER = ("Sum", "Product", "LetterCount", "Sorted", "Weekday", "Conversion", "Addition", "LetterCheck", "Measure")
CLIENT_MODELS = sorted((m for ms in BY_KIND.values() for m in ms), key=lambda m: _ORDER.index(m.__name__))
