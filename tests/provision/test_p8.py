"""P8: the temporary 個人番号 area is erased so that it cannot be restored (PIA III(2).7 R3; ADR 0034).

The promise tested, exactly: after the delivery window (1) the entry is gone, and (2) the
installation — its master key, its key store as it is now — together with a byte copy of the
temporary area's files taken **before** the erasure recovers nothing, because the entry's own key
was destroyed (overwritten in place, then unlinked). The copy of the area is attacked with every
key the installation has.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet import retention
from jukinet.keyring import KeyRing
from jukinet.provision.kojin_bango_link import temp_store
from jukinet.provision.service import ProvideCommand
from jukinet.provision.tempstore import TempStore
from jukinet.store.repository import JST

from . import people as P

PURPOSES = ("kojin-bango-temp", "kojin-bango-temp-wrap", "chain", "search-keys")


def _provide_with_number(world):
    r = world.svc.provide(ProvideCommand(requester_code="SOMU", affair_code="SOMU-KENZEI-F",
                                         juminhyo_code=P.TARO), P.OPERATOR, "T0001")
    assert r.number_included
    return r


def _erase_after_window(world):
    later = datetime.now(JST).date() + timedelta(days=world.config.provision.kojin_bango_temp_days + 1)
    (rep,) = retention.run(world.registers, only=["fuhyo_kojin_bango_temp"], today=later, pause_seconds=0)
    return rep


def test_p8_each_entry_has_its_own_random_key_in_a_separate_key_store(world):
    _provide_with_number(world)
    _provide_with_number(world)
    store = temp_store(world.config, world.svc.keyring)
    assert store.count() == 2 and store.key_count() == 2
    assert store.key_dir != store.dir and store.key_dir.parent == store.dir.parent
    assert not any(store.key_dir.is_relative_to(p) or store.dir.is_relative_to(p)
                   for p in (world.config.data_dir / "keys", world.config.data_dir / "pki"))  # not in the backups
    entries = sorted(store.dir.glob("*.bin"))
    for e in entries:
        assert store.key_path(e).exists() and (store.key_path(e).stat().st_mode & 0o777) == 0o600
        assert store.open_entry(e, e.read_bytes()) == {P.TARO: P.TARO_NO}
        assert P.TARO_NO.encode() not in e.read_bytes() + store.key_path(e).read_bytes()
    # no key the installation derives opens an entry: each has a random key of its own
    ring = KeyRing(world.config.data_dir)
    for e in entries:
        blob = e.read_bytes()
        for purpose in PURPOSES:
            try:
                AESGCM(ring.key(purpose)).decrypt(blob[:12], blob[12:], e.name.encode())
                raise AssertionError(f"entry opened with the installation key {purpose}")
            except InvalidTag:
                pass


def test_p8_after_the_window_a_copy_taken_before_recovers_nothing(world, tmp_path):
    _provide_with_number(world)
    store = temp_store(world.config, world.svc.keyring)
    (entry,) = store.dir.glob("*.bin")
    key_file = store.key_path(entry)
    # the disk copy taken BEFORE the erasure window passed: every byte of the temporary area
    copy = tmp_path / "copy-of-area"
    shutil.copytree(store.dir, copy)
    copied = copy / entry.name
    assert store.open_entry(entry, copied.read_bytes()) == {P.TARO: P.TARO_NO}   # still readable now
    # a second name for the key's blocks, to see whether erasure overwrote them or only unlinked
    witness = tmp_path / "witness.key"
    os.link(key_file, witness)
    original_key_bytes = key_file.read_bytes()

    rep = _erase_after_window(world)
    assert rep.status == "completed" and rep.erased == 1

    # (1) the entry is gone, and its key with it
    assert store.count() == 0 and store.key_count() == 0 and not entry.exists() and not key_file.exists()
    assert store.get(entry.name.split("_", 1)[1][:-4], datetime.now(timezone.utc)) is None
    # the key was overwritten in place before it was unlinked (not just unlinked)
    assert witness.read_bytes() != original_key_bytes and len(witness.read_bytes()) == len(original_key_bytes)
    # (2) the installation's keys (master and every derived key, the key store as it is now) + the copy
    after = TempStore(copy, KeyRing(world.config.data_dir), key_dir=store.key_dir)
    assert after.open_entry(copied, copied.read_bytes()) is None
    assert after.get(entry.name.split("_", 1)[1][:-4], datetime.now(timezone.utc) - timedelta(days=1)) is None
    blob = copied.read_bytes()
    ring = KeyRing(world.config.data_dir)
    for purpose in PURPOSES:
        try:
            AESGCM(ring.key(purpose)).decrypt(blob[:12], blob[12:], copied.name.encode())
            raise AssertionError(f"the copy opened with {purpose}")
        except InvalidTag:
            pass
    # the overwritten key blocks (as a disk image might still hold them) open nothing either
    kb = witness.read_bytes()
    try:
        AESGCM(ring.key("kojin-bango-temp-wrap")).decrypt(kb[:12], kb[12:], entry.name.encode())
        raise AssertionError("overwritten key still unwraps")
    except InvalidTag:
        pass
    # nothing anywhere in the data directory still holds the number in clear
    for p in world.config.data_dir.rglob("*"):
        if p.is_file() and p.stat().st_size < 5_000_000:
            assert P.TARO_NO.encode() not in p.read_bytes(), p
    # and the erasure is recorded (counts only)
    runs = [h for h in retention.history(world.registers) if h["rule"] == "fuhyo_kojin_bango_temp"]
    assert runs and runs[0]["erased_count"] == 1 and P.TARO_NO not in json.dumps(runs, default=str)


def test_p8_a_failed_provision_destroys_the_key_at_once(world):
    _provide_with_number(world)
    store = temp_store(world.config, world.svc.keyring)
    (entry,) = store.dir.glob("*.bin")
    ref = entry.name.split("_", 1)[1][:-4]
    blob = entry.read_bytes()
    assert store.erase(ref) == 1
    assert store.count() == 0 and store.key_count() == 0 and store.open_entry(entry, blob) is None


def test_p8_a_crash_between_key_and_entry_leaves_no_key_after_its_expiry(tmp_path):
    store = TempStore(tmp_path / "tmp", KeyRing(tmp_path))
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    p = store.put("R1", {"52601815907": "625276018957"}, now + timedelta(days=14))
    p.unlink()                               # as if the process died before the entry was written
    (store.key_dir / "x.key.tmp").write_bytes(b"partial")
    store.sweep(now)
    assert store.key_count() == 1 and not list(store.key_dir.glob("*.tmp"))   # not yet expired: kept
    store.sweep(now + timedelta(days=15))
    assert store.key_count() == 0
