"""The uid and timestamp every create stamps: their form, and uids never repeating."""

from __future__ import annotations

import datetime
import os
import re
import uuid

from kajitori.registry.generic import hooks, store

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_new_uid_is_a_random_uuid_in_canonical_form() -> None:
    uids = [store.new_uid() for _ in range(3 * store._UID_BATCH + 7)]
    assert len(set(uids)) == len(uids)
    for uid in uids[:600]:
        parsed = uuid.UUID(uid)
        assert str(parsed) == uid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_forked_child_draws_other_uids() -> None:
    store.new_uid()  # the batch is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next uid, then leave without cleanup
        os.write(write, store.new_uid().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_uid = os.read(read, 64).decode()
    os.close(read)
    assert child_uid and child_uid != store.new_uid()


def test_now_rfc3339_is_the_current_utc_second() -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    text = hooks.now_rfc3339()
    after = datetime.datetime.now(datetime.UTC)
    assert _RFC3339.fullmatch(text)
    stamped = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    assert before <= stamped <= after
