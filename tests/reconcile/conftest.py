"""Fixtures for the consistency-check tests: a few hundred synthetic persons in both registers."""

import pytest

from reconcile_people import TSU, YOKKAICHI, fuhyo, juki


@pytest.fixture
def populated(registers):
    """300 persons in each register: 0..199 in 津市, 200..299 in 四日市市; 290..299 removed."""
    jr = [juki(i, TSU if i < 200 else YOKKAICHI, deleted=i >= 290, retention_flag=i >= 290) for i in range(300)]
    fr = [fuhyo(i, TSU if i < 200 else YOKKAICHI, status="消除" if i >= 290 else "現存") for i in range(300)]
    with registers.juki_uow() as uow:
        uow.repo.bulk_load(jr)
        uow.repo.set_seq_at_least(1000)
    with registers.fuhyo_uow() as uow:
        uow.repo.bulk_load(fr)
        uow.repo.set_seq_at_least(1000)
    return registers
