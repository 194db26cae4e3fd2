"""The job ledger (ledger.py), its schema migrations (migrations.py) and the stored job spec (jobspec.py).

The upgrade test opens a ledger written by aivp 0.1.0 (tests/fixtures/ledger_v1.sql, spec version 1)
and checks that every row reads back as a version-2 `JobSpec` and still builds, byte for byte, the
records that version built (tests/fixtures/ledger_v1_records.json).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from aivp.jobs.records import build_record
from aivp.jobspec import RECORD_FIELDS, VERSION, JobSpec, ShotPart
from aivp.ledger import Ledger, StateChanged, new_id
from aivp.migrations import MIGRATIONS

FIXTURES = Path(__file__).parent / "fixtures"
V1_JOBS = ("01M9531RS8AJJHJQMZBGC4C5FZ", "01M9531TQ1FXF8EC2MTCYBVFWC", "01M9531WJCF5RRGAQW6B1R0Y8F")
MULTI_SHOT = "01M9531WJCF5RRGAQW6B1R0Y8F"


def load_v1(root: Path, *, extra_sql: str = "") -> Path:
    """The 0.1.0 ledger dump written to <root>/.aivp/ledger.sqlite3 (plus `extra_sql`, to make it older still)."""
    path = root / ".aivp" / "ledger.sqlite3"
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    try:
        db.executescript((FIXTURES / "ledger_v1.sql").read_text(encoding="utf-8"))
        if extra_sql:
            db.executescript(extra_sql)
    finally:
        db.close()
    return path


def raw_specs(path: Path) -> dict[str, dict[str, Any]]:
    """The spec_json of every row as stored, without going through aivp."""
    db = sqlite3.connect(path)
    try:
        return {job_id: json.loads(spec) for job_id, spec in db.execute("SELECT id, spec_json FROM jobs")}
    finally:
        db.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    led = Ledger(tmp_path / ".aivp" / "ledger.sqlite3")
    yield led
    led.close()


def add(ledger: Ledger, key: str = "k1", *, estimate: float = 0.15, owner: str | None = None, **kw: Any) -> Any:
    row, _ = ledger.insert(idem_key=key, tool="generate_image", model_id="nano-banana-pro", provider="fal",
                           endpoint="fal-ai/nano-banana-pro", task="t2i", request={"prompt": key},
                           spec=JobSpec(kind="image", mode="T2I", shape="images", model="nano-banana-pro"),
                           estimate_usd=estimate, owner=owner, **kw)
    return row


# ---------------------------------------------------------------- upgrading a ledger written by 0.1.0

def test_v1_ledger_upgrades_and_builds_the_records_it_built_before(tmp_path: Path) -> None:
    path = load_v1(tmp_path)
    before = raw_specs(path)
    assert set(before) == set(V1_JOBS) and all("extra" in s and "v" not in s for s in before.values())
    expected = json.loads((FIXTURES / "ledger_v1_records.json").read_text(encoding="utf-8"))

    led = Ledger(path)
    try:
        applied = {name for (name,) in led._db.execute("SELECT name FROM _migrations")}
        assert {name for name, _ in MIGRATIONS} <= applied
        rows = {r.id: r for r in led.recent(limit=100)}
        assert set(rows) == set(V1_JOBS)
        for job_id, row in rows.items():
            v1, spec = before[job_id], row.spec
            extra = v1["extra"]
            assert isinstance(spec, JobSpec) and spec.v == VERSION == 2
            for name in ("kind", "mode", "shape", "model", "prompt", "model_name", "overwrite", "record_type",
                         "plan_type", "estimate", "effective"):
                assert getattr(spec, name) == v1[name], (job_id, name)
            assert spec.targets == (tuple(v1["targets"]) if v1["targets"] else None)
            assert spec.warnings == tuple(v1["warnings"]) and spec.inputs == tuple(v1["inputs"])
            assert spec.record == {k: extra[k] for k in RECORD_FIELDS if k in extra}
            if job_id == MULTI_SHOT:
                assert spec.split is True and spec.group is True  # "default_stem": "group" in v1
                assert spec.shots == tuple(
                    ShotPart(s["index"], s["prompt"], s["sent_prompt"], s["duration"], s["output"])
                    for s in extra["shots"])
                assert [s.output for s in spec.shots] == ["video/clips/shot-03.mp4", "video/clips/shot-04.mp4",
                                                          "video/clips/shot-05.mp4"]
                assert spec.record["elements"] == ["Mara", "Theo"]
            else:
                assert spec.shots == () and spec.split is False and spec.group is False

            main = [o for o in row.outputs if not o.get("split_of")]
            built = [build_record(row, out, i, len(main))
                     for i, out in enumerate(row.outputs) if not out.get("split_of")]
            # the fixture's jobs ran on the demo's sandbox (m005 reads it from their 127.0.0.1 handles): the same
            # records, except that their cost is what the real provider would have charged, not a charge
            assert row.sandbox
            assert built == [{**e, "cost_usd": 0.0, "job_cost_usd": 0.0, "sandbox": True, "would_cost_usd": e["cost_usd"]}
                             for e in expected[job_id]]
    finally:
        led.close()


def test_v1_rows_keep_working_after_the_upgrade(tmp_path: Path) -> None:
    led = Ledger(load_v1(tmp_path))
    try:
        assert led.spend() == {"spent_usd": 0.0, "committed_usd": 0.0, "completed_jobs": 3,
                               "would_cost_usd": round(0.15 + 0.2592 + 4.76, 4)}  # sandbox jobs (m005)
        assert led.local_copy("http://127.0.0.1:35611/fal/cdn/files/out/7c417efa7708dc4b/placeholder.mp4") == \
            "video/clips/shot-01.mp4"
        # a write stores the spec as version 2, and it reads back the same
        old = led.get(MULTI_SHOT)
        assert old is not None
        again = led.update(MULTI_SHOT, spec=old.spec.with_warnings(["checked after the upgrade"]))
        assert raw_specs(led.path)[MULTI_SHOT]["v"] == 2 and "extra" not in raw_specs(led.path)[MULTI_SHOT]
        assert again.spec.shots == old.spec.shots and again.spec.warnings == ("checked after the upgrade",)
        new = add(led, "after-upgrade")
        assert new.state == "pending" and new.owner is None and led.get(new.id) == new
    finally:
        led.close()


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="DROP COLUMN needs SQLite 3.35")
def test_missing_migrations_are_applied_to_an_older_ledger(tmp_path: Path) -> None:
    # the same ledger as it was before m002 existed: no owner columns, one migration recorded
    older = """
        DROP INDEX jobs_owner;
        ALTER TABLE jobs DROP COLUMN owner;
        ALTER TABLE jobs DROP COLUMN heartbeat_at;
        DELETE FROM _migrations WHERE name = 'm002_owner';
    """
    path = load_v1(tmp_path, extra_sql=older)
    led = Ledger(path)
    try:
        applied = [name for (name,) in led._db.execute("SELECT name FROM _migrations ORDER BY name")]
        assert applied == sorted(name for name, _ in MIGRATIONS)
        columns = {r[1] for r in led._db.execute("PRAGMA table_info(jobs)")}
        assert {"owner", "heartbeat_at"} <= columns
        assert all(r.owner is None and r.heartbeat_at is None for r in led.recent())
        assert led.claim(V1_JOBS[0], "me", stale_before=time.time(), dead=lambda o: False)
    finally:
        led.close()
    Ledger(path).close()  # opening it again applies nothing twice
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    finally:
        db.close()


# ---------------------------------------------------------------- JobSpec

def full_spec() -> JobSpec:
    return JobSpec(
        kind="video", mode="MULTI", shape="video", model="kling-o3-pro", prompt="@Mara | @Theo",
        model_name="Kling O3 Pro", targets=("video/clips/group-01.mp4",), overwrite=True, record_type="group",
        plan_type="group-01", estimate={"usd": 1.0, "unit": "second", "quantity": 5.0, "unit_price": 0.2, "detail": "x"},
        warnings=("w1",), effective={"duration": "5", "prompt": "p"},
        inputs=({"kind": "path", "path": "image/characters/mara-front.png", "sha256": "ab"},),
        record={"elements": ["Mara"], "input_image": "image/frames/shot-03-ff.png"},
        shots=(ShotPart(1, "@Mara waits", "@Element1 waits", 2.5, "video/clips/shot-03.mp4"),
               ShotPart(2, "@Theo runs", "@Element2 runs", 2.5)),
        split=True, group=True,
    )


def test_jobspec_json_round_trip() -> None:
    spec = full_spec()
    data = json.loads(json.dumps(spec.to_json()))  # through text, as the ledger stores it
    assert data["v"] == VERSION and data["targets"] == ["video/clips/group-01.mp4"]
    assert data["shots"][1] == {"index": 2, "prompt": "@Theo runs", "sent_prompt": "@Element2 runs", "duration": 2.5,
                                "output": None}
    assert JobSpec.from_json(data) == spec
    plain = JobSpec(kind="image", mode="T2I", shape="images", model="m")
    assert JobSpec.from_json(json.loads(json.dumps(plain.to_json()))) == plain


def test_jobspec_defaults_and_v1_details() -> None:
    assert JobSpec.from_json(None) == JobSpec(kind="image", mode="-", shape="images", model="")
    v1 = {"kind": "video", "mode": "I2V", "shape": "video", "model": "m", "targets": [],
          "extra": {"default_stem": "shot", "split": False, "mask": "m.png", "not_a_record_field": 1,
                    "shots": [{"index": 1, "prompt": "only prompt", "duration": "4"}]}}
    spec = JobSpec.from_json(v1)
    assert spec.targets is None and spec.group is False and spec.split is False
    assert spec.record == {"mask": "m.png"} and spec.record_type == "video"
    assert spec.shots == (ShotPart(1, "only prompt", "only prompt", 4.0, None),)
    more = spec.with_warnings(["a", "b"]).with_warnings(["b", "c"])  # a warning already there is not repeated
    assert more.warnings == ("a", "b", "c") and spec.warnings == ()


# ---------------------------------------------------------------- insert: reuse and guard in one transaction

def test_guard_that_raises_leaves_no_row(ledger: Ledger) -> None:
    def over_budget() -> None:
        raise RuntimeError("over budget")

    with pytest.raises(RuntimeError, match="over budget"):
        add(ledger, guard=over_budget)
    assert ledger.recent() == []
    assert ledger._db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    add(ledger)  # the failed transaction left nothing locked
    assert len(ledger.recent()) == 1


def test_identical_keys_give_one_row(ledger: Ledger) -> None:
    def same(rows: list[Any]) -> Any:
        return rows[0] if rows else None

    first, created = ledger.insert(idem_key="same", tool="t", model_id="m", provider="fal", endpoint="e", task="t2i",
                                   request={}, spec=JobSpec("image", "T2I", "images", "m"), estimate_usd=0.1, reuse=same)
    again, created_again = ledger.insert(idem_key="same", tool="t", model_id="m", provider="fal", endpoint="e",
                                         task="t2i", request={}, spec=JobSpec("image", "T2I", "images", "m"),
                                         estimate_usd=0.1, reuse=same)
    assert created and not created_again and again.id == first.id
    assert [r.id for r in ledger.recent()] == [first.id]
    assert [e["state"] for e in ledger.events(first.id)] == ["pending"]
    # reuse that declines (e.g. fresh=True) inserts a second row with the same key
    other = add(ledger, "same", reuse=lambda rows: None)
    assert other.id != first.id and len(ledger.recent()) == 2


def test_lookup_guard_and_insert_hold_one_write_lock(tmp_path: Path, ledger: Ledger) -> None:
    # a second server process on the same project: its insert cannot slip between our lookup and our insert
    other = Ledger(ledger.path)
    seen: list[list[str]] = []
    blocked: list[Exception] = []

    def reuse(rows: list[Any]) -> Any:
        seen.append([r.id for r in rows])
        return rows[0] if rows else None

    def guard() -> None:
        other._db.execute("PRAGMA busy_timeout=0")  # fail at once instead of waiting for our commit
        try:
            add(other, "race", reuse=reuse)
        except sqlite3.OperationalError as exc:
            blocked.append(exc)
        finally:
            other._db.execute("PRAGMA busy_timeout=30000")

    try:
        mine = add(ledger, "race", reuse=reuse, guard=guard)
        assert len(blocked) == 1 and "locked" in str(blocked[0])
        assert seen == [[]]  # the other process never got to look
        theirs = add(other, "race", reuse=reuse)
        assert theirs.id == mine.id and seen[-1] == [mine.id]
        assert len(ledger.recent()) == 1
    finally:
        other.close()


def test_new_ids_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids) and sorted(ids) == ids and all(len(i) == 26 for i in ids)


# ---------------------------------------------------------------- update, claim

def test_update_with_expect_is_compare_and_set(ledger: Ledger) -> None:
    row = add(ledger)
    moved = ledger.update(row.id, state="submitting", expect=("pending",), request={"prompt": "sent"})
    assert moved.state == "submitting" and moved.request == {"prompt": "sent"}
    with pytest.raises(StateChanged):
        ledger.update(row.id, state="queued", expect=("pending",))  # someone else already moved it
    after = ledger.get(row.id)
    assert after is not None and after.state == "submitting"
    assert [e["state"] for e in ledger.events(row.id)] == ["pending", "submitting"]
    ledger.update(row.id, event="note", detail="no state change")
    last = ledger.events(row.id)[-1]
    assert (last["state"], last["detail"]) == ("note", "no state change")
    assert ledger.get(row.id).state == "submitting"  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        ledger.update("no-such-job", error="x")


def test_claim_refuses_a_live_owner_and_takes_over_a_dead_or_stale_one(ledger: Ledger) -> None:
    row = add(ledger, owner="elsewhere:1:aaaa")
    now = time.time()
    fresh_beat = now - 60  # the owner's heartbeat is newer than this
    alive, dead = (lambda o: False), (lambda o: True)
    assert not ledger.claim(row.id, "me:2:bbbb", stale_before=fresh_beat, dead=alive)
    assert ledger.get(row.id).owner == "elsewhere:1:aaaa"  # type: ignore[union-attr]
    assert ledger.claim(row.id, "me:2:bbbb", stale_before=fresh_beat, dead=dead)
    assert ledger.get(row.id).owner == "me:2:bbbb"  # type: ignore[union-attr]
    assert ledger.claim(row.id, "me:2:bbbb", stale_before=fresh_beat, dead=alive)  # its own job: yes

    stale = add(ledger, "k2", owner="elsewhere:1:aaaa")
    ledger._db.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (now - 3600, stale.id))  # silent for an hour
    assert ledger.claim(stale.id, "me:2:bbbb", stale_before=now - 30, dead=alive)
    assert ledger.get(stale.id).owner == "me:2:bbbb"  # type: ignore[union-attr]

    ledger.release("me:2:bbbb")
    assert {r.owner for r in ledger.recent()} == {None}
    assert ledger.claim(row.id, "third:3:cccc", stale_before=fresh_beat, dead=alive)  # released: free to take
    assert not ledger.claim("no-such-job", "me:2:bbbb", stale_before=fresh_beat, dead=dead)


# ---------------------------------------------------------------- money

def test_spend_sums_costs_and_commitments(ledger: Ledger) -> None:
    def job(key: str, estimate: float, state: str | None = None, cost: float | None = None) -> None:
        row = add(ledger, key, estimate=estimate)
        if state is not None:
            ledger.update(row.id, state=state, cost_usd=cost)

    job("done", 0.5, "completed", 0.45)
    job("done-too", 0.3, "completed", 0.3)
    job("refused", 0.2, "failed", 0.0)
    job("failed-billed?", 0.7, "failed", None)  # cost unknown: neither spent nor committed
    job("canceled", 9.0, "canceled", 0.0)
    job("pending", 0.25)
    job("queued", 1.0, "queued")
    job("running", 2.0, "running")
    job("unknown", 0.15, "unknown")  # may have been charged
    assert ledger.spend() == {"spent_usd": 0.75, "committed_usd": 3.4, "completed_jobs": 2, "would_cost_usd": 0.0}
    # sandbox jobs: what they would have cost is reported apart; they are neither spent nor committed
    done = add(ledger, "sandbox-done", estimate=5.0, sandbox=True)
    ledger.update(done.id, state="completed", cost_usd=4.5)
    add(ledger, "sandbox-running", estimate=7.0, sandbox=True)
    assert ledger.spend() == {"spent_usd": 0.75, "committed_usd": 3.4, "completed_jobs": 3, "would_cost_usd": 4.5}
    row = ledger.get(done.id)
    assert row is not None and row.sandbox and row.charged_usd == 0.0 and row.would_cost_usd == 4.5


def test_upload_cache_expires(ledger: Ledger) -> None:
    ledger.remember_upload("abc", "fal", "cdn-a", "https://cdn/one.png", 10)
    assert ledger.cached_upload("abc", "fal", "cdn-a", max_age_s=3600) == "https://cdn/one.png"
    assert ledger.cached_upload("abc", "replicate", "cdn-a", max_age_s=3600) is None  # per provider
    assert ledger.cached_upload("abc", "fal", "cdn-b", max_age_s=3600) is None  # per host (a sandbox's links)
    assert ledger.cached_upload("other", "fal", "cdn-a", max_age_s=3600) is None
    ledger._db.execute("UPDATE uploads SET created_at = '2020-01-01T00:00:00.000Z'")
    assert ledger.cached_upload("abc", "fal", "cdn-a", max_age_s=3600) is None  # older than the link lives
    assert ledger.cached_upload("abc", "fal", "cdn-a", max_age_s=1e10) == "https://cdn/one.png"
    ledger.remember_upload("abc", "fal", "cdn-a", "https://cdn/two.png", 10)  # uploaded again: replaces, fresh
    assert ledger.cached_upload("abc", "fal", "cdn-a", max_age_s=3600) == "https://cdn/two.png"
    ledger.forget_upload("abc", "fal")
    assert ledger.cached_upload("abc", "fal", "cdn-a", max_age_s=3600) is None


def test_local_copy_matches_the_url_literally(ledger: Ledger) -> None:
    a = add(ledger, "a")
    ledger.update(a.id, outputs=[{"path": "image/a.png", "url": "https://cdn/x_1%.png"}])
    b = add(ledger, "b")
    ledger.update(b.id, outputs=[{"path": "image/b.png", "url": "https://cdn/xy1%25.png"}])
    assert ledger.local_copy("https://cdn/x_1%.png") == "image/a.png"
    assert ledger.local_copy("https://cdn/xA1%.png") is None  # "_" and "%" are not wildcards
    assert ledger.local_copy("https://cdn/xy1%25.png") == "image/b.png"
