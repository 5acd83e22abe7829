"""Synthetic persons and codes for the simulators (all invented; never real people).

New 住民票コード and 個人番号 are random leading digits with the check digit of
:mod:`jukinet.codes`, so every code the simulators make passes the server's checks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Optional

from jukinet import codes, geo
from jukinet.geo import Municipality, random_address
from jukinet.seed.names import GAIJI_SURNAMES, SURNAME_WEIGHTS, SURNAMES, given_pool


def new_juminhyo_code(rng: random.Random) -> str:
    first = "".join(str(rng.randrange(10)) for _ in range(10))
    return first + codes.juminhyo_code_check_digit(first)


def new_kojin_bango(rng: random.Random) -> str:
    first = str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(10))
    return first + codes.kojin_bango_check_digit(first)


def surname(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.01:
        return rng.choice(GAIJI_SURNAMES)
    return rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]


def given(rng: random.Random, sex: str, birth_year: int) -> tuple[str, str]:
    return rng.choice(given_pool(sex, birth_year))


def full_name(sur: tuple[str, str], giv: tuple[str, str]) -> tuple[str, str]:
    return f"{sur[0]}\u3000{giv[0]}", f"{sur[1]}\u3000{giv[1]}"


def random_birth(rng: random.Random, today: date, min_age: int = 0, max_age: int = 95) -> date:
    days = rng.randrange(min_age * 365, max_age * 365 + 1)
    return today - timedelta(days=days)


@dataclass
class Person:
    """A synthetic person of another prefecture, as the national sims hold them."""

    juminhyo_code: str
    kojin_bango: Optional[str]
    name: str
    name_kana: str
    birth_date: date
    sex: str
    address: str
    municipality_code: str


def other_prefecture_people(n: int, seed: int, today: date, prefecture: Optional[str] = None) -> list[Person]:
    """``n`` deterministic persons living outside ``prefecture`` (三重県 when None), for the national
    sims' query API."""
    rng = random.Random(seed)
    others = geo.elsewhere(prefecture)
    weights = [m.weight for m in others]
    out = []
    for _ in range(n):
        m: Municipality = rng.choices(others, weights)[0]
        sex = rng.choice("12")
        birth = random_birth(rng, today)
        name, kana = full_name(surname(rng), given(rng, sex, birth.year))
        address, _ = random_address(rng, m)
        out.append(Person(new_juminhyo_code(rng), new_kojin_bango(rng), name, kana, birth, sex, address, m.code))
    return out
