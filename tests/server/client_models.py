"""The answer schemas issue 27's JSON goal is measured with, as pydantic models the six clients are
given. A copy of models/demo_train/json_answers.py's CLIENT_MODELS (branch `json`): the lead points
both at one place when merging."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Day = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Sum(BaseModel):  # addition
    a: int
    b: int
    sum: int


class Product(BaseModel):  # multiplication
    number: int
    factor: int
    product: int


class LetterCount(BaseModel):  # letters
    word: str
    letter: str
    count: int


class Sorted(BaseModel):  # sorting
    numbers: list[int]


class Weekday(BaseModel):  # weekday
    start: Day
    days_later: int
    day: Day


class Conversion(BaseModel):  # units
    value: int
    from_unit: str
    to_unit: str
    result: int


class Operands(BaseModel):
    a: int
    b: int


class Addition(BaseModel):  # nested: an object inside, and a free string
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


CLIENT_MODELS = [Sum, Product, LetterCount, Sorted, Weekday, Conversion, Addition, LetterCheck, Measure]
