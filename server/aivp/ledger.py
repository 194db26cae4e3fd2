"""The durable job ledger: one SQLite file per project at `.aivp/ledger.sqlite3`.

A row is written *before* a submit leaves the process, so a paid job can never be forgotten. The
job runner (`jobs.py`) is the only writer of job state; tools and providers only read. Writes are
short single statements in WAL mode (`synchronous=NORMAL`: a killed process loses nothing; only an
OS crash could drop the last commit). Schema changes are append-only named migrations.

Job states and who moves them:

    pending ──► submitting ──► queued ──► running ──► fetching ──► completed
       │             │            │          │            ├──► unsaved (paid, not written: retried on request)
       │             └► unknown   └──────────┴────────────┴──► failed / canceled
       └► failed (interrupted before the submit: nothing was sent or charged)

`unknown` means the submit may have reached the provider but its answer was lost: aivp never
repeats such a submit by itself (that could charge twice).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .jobspec import JobSpec
from .migrations import MIGRATIONS

ACTIVE_STATES = ("pending", "submitting", "queued", "running", "fetching")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ulid_lock = threading.Lock()
_ulid_last: tuple[int, int] = (0, 0)


def new_id() -> str:
    """A monotonic ULID: 26 characters, sortable by creation time, unique within the process."""
    global _ulid_last
    with _ulid_lock:
        ms = int(time.time() * 1000)
        last_ms, last_rand = _ulid_last
        rand = last_rand + 1 if ms <= last_ms else int.from_bytes(secrets.token_bytes(10), "big")
        ms = max(ms, last_ms)
        _ulid_last = (ms, rand)
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StateChanged(Exception):
    """A compare-and-set update found the job in another state: another process moved it first."""


@dataclass
class JobRow:
    """One ledger row, decoded."""

    id: str
    idem_key: str
    tool: str
    model_id: str
    provider: str
    endpoint: str
    task: str
    state: str
    request: dict[str, Any]
    spec: JobSpec
    request_id: str | None
    handle: dict[str, Any] | None
    queue_position: int | None
    logs: list[str]
    result: dict[str, Any] | None
    outputs: list[dict[str, Any]]
    error: str | None
    error_code: str | None
    estimate_usd: float
    cost_usd: float | None
    created_at: str
    submitted_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str
    owner: str | None = None  # the server process driving the job ("host:pid:nonce")
    heartbeat_at: float | None = None  # when that process last said it is alive (unix time)
    started_by: str | None = None  # who started it over HTTP (the token's subject); None: a local client
    canceled_by: str | None = None  # who asked to cancel it, when someone did
    sandbox: bool = False  # sent to a sandbox: `cost_usd` is what the real provider would have charged

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def charged_usd(self) -> float | None:
        """What the provider charged: `cost_usd`, or 0 for a sandbox job."""
        return 0.0 if self.sandbox else self.cost_usd

    @property
    def would_cost_usd(self) -> float | None:
        """A sandbox job's price on the real provider (None for a real job, or when unknown)."""
        return self.cost_usd if self.sandbox else None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> JobRow:
        decoded: dict[str, Any] = {}
        for f in fields(cls):
            col = f"{f.name}_json" if f.name in _JSON_FIELDS else f.name
            value = row[col]
            if f.name in _JSON_FIELDS:
                value = json.loads(value) if value else _JSON_FIELDS[f.name]()
            decoded[f.name] = value
        decoded["sandbox"] = bool(decoded["sandbox"])
        decoded["spec"] = JobSpec.from_json(decoded["spec"])  # any stored version, read back typed
        return cls(**decoded)


_JSON_FIELDS: dict[str, Callable[[], Any]] = {
    "request": dict,
    "spec": dict,
    "handle": lambda: None,
    "logs": list,
    "result": lambda: None,
    "outputs": list,
}


def _dump(value: Any) -> str:
    if isinstance(value, JobSpec):
        value = value.to_json()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Ledger:
    """SQLite-backed job and upload records of one project. Thread-safe; calls are short."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._migrate()
        try:  # the ledger holds prompts and provider URLs: keep it private to the user
            os.chmod(path, 0o600)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now_iso()))

    # ---------------------------------------------------------------- jobs

    def insert(
        self,
        *,
        idem_key: str,
        tool: str,
        model_id: str,
        provider: str,
        endpoint: str,
        task: str,
        request: dict[str, Any],
        spec: JobSpec,
        estimate_usd: float,
        reuse: Callable[[list[JobRow]], JobRow | None] | None = None,
        guard: Callable[[], None] | None = None,
        owner: str | None = None,
        started_by: str | None = None,
        sandbox: bool = False,
    ) -> tuple[JobRow, bool]:
        """Insert a pending job, unless `reuse` picks an existing row with the same key.

        The lookup and the insert share one transaction, so two identical calls arriving together
        (even from two server processes on one project) create one job. `guard` runs inside the
        transaction before the insert (the budget check) and may raise to refuse. Returns (row, created).
        """
        with self._tx() as db:
            if reuse is not None:
                rows = [
                    JobRow.from_sql(r)
                    for r in db.execute("SELECT * FROM jobs WHERE idem_key = ? ORDER BY id DESC", (idem_key,))
                ]
                if (found := reuse(rows)) is not None:
                    return found, False
            if guard is not None:
                guard()
            job_id, at = new_id(), now_iso()
            db.execute(
                """INSERT INTO jobs (id, idem_key, tool, model_id, provider, endpoint, task, state,
                   request_json, spec_json, estimate_usd, created_at, updated_at, owner, heartbeat_at, started_by,
                   sandbox) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (job_id, idem_key, tool, model_id, provider, endpoint, task, _dump(request), _dump(spec),
                 estimate_usd, at, at, owner, time.time() if owner else None, started_by, int(sandbox)),
            )
            db.execute("INSERT INTO events VALUES (?, ?, 'pending', NULL)", (job_id, at))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return JobRow.from_sql(row), True

    def get(self, job_id: str) -> JobRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRow.from_sql(row) if row else None

    def find_request(self, provider: str, request_id: str) -> JobRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE provider = ? AND request_id = ? ORDER BY id DESC LIMIT 1",
                (provider, request_id),
            ).fetchone()
        return JobRow.from_sql(row) if row else None

    def local_copy(self, url: str) -> str | None:
        """The project path of a file aivp downloaded from `url`, if it has one (newest first)."""
        pattern = "%" + url.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._lock:
            rows = self._db.execute(
                "SELECT outputs_json FROM jobs WHERE outputs_json LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT 5", (pattern,)
            ).fetchall()
        for (outputs,) in rows:
            for o in json.loads(outputs or "[]"):
                if o.get("url") == url:
                    return str(o["path"])
        return None

    def recent(self, limit: int = 20, states: tuple[str, ...] | None = None, *,
               starter: tuple[str | None] | None = None) -> list[JobRow]:
        """The newest jobs, optionally only in these states, and only those `starter[0]` started (None: jobs with
        no recorded starter)."""
        where, args = list[str](), list[Any]()
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(states)
        if starter is not None:
            where.append("started_by IS ?")
            args.append(starter[0])
        query = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [JobRow.from_sql(r) for r in self._db.execute(query, args)]

    def unfinished(self) -> list[JobRow]:
        return list(reversed(self.recent(limit=10_000, states=ACTIVE_STATES)))

    def update(self, job_id: str, *, event: str | None = None, detail: str | None = None,
               expect: tuple[str, ...] | None = None, **values: Any) -> JobRow:
        """Set columns of a job (JSON fields by their plain name) and record an event when the state moves.

        With `expect`, only if the job is still in one of those states (compare-and-set): raises
        `StateChanged` otherwise, so two processes can never both move the same job.
        """
        at = now_iso()
        cols, args = ["updated_at = ?"], list[Any]([at])
        for name, value in values.items():
            if name in _JSON_FIELDS:
                cols.append(f"{name}_json = ?")
                args.append(None if value is None else _dump(value))
            else:
                cols.append(f"{name} = ?")
                args.append(value)
        where, where_args = "id = ?", [job_id]
        if expect:
            where += f" AND state IN ({','.join('?' * len(expect))})"
            where_args += list(expect)
        with self._tx() as db:
            changed = db.execute(f"UPDATE jobs SET {', '.join(cols)} WHERE {where}", (*args, *where_args)).rowcount
            if expect and not changed:
                raise StateChanged(job_id)
            if "state" in values or event:
                db.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?)", (job_id, at, values.get("state", event), detail)
                )
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return JobRow.from_sql(row)

    def claim(self, job_id: str, owner: str, *, stale_before: float, dead: Callable[[str], bool]) -> bool:
        """Make `owner` the process driving a job, unless another live process already is."""
        with self._tx() as db:
            row = db.execute("SELECT owner, heartbeat_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            current, beat = row["owner"], row["heartbeat_at"]
            if current not in (None, owner) and (beat or 0) >= stale_before and not dead(current):
                return False
            db.execute("UPDATE jobs SET owner = ?, heartbeat_at = ? WHERE id = ?", (owner, time.time(), job_id))
            return True

    def heartbeat(self, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                f"UPDATE jobs SET heartbeat_at = ? WHERE owner = ? AND state IN ({','.join('?' * len(ACTIVE_STATES))})",
                (time.time(), owner, *ACTIVE_STATES),
            )

    def release(self, owner: str) -> None:
        """A process stopping cleanly hands its unfinished jobs back, for the next one to take over at once."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET owner = NULL WHERE owner = ?", (owner,))

    def events(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT at, state, detail FROM events WHERE job_id = ?", (job_id,))]

    # ---------------------------------------------------------------- money

    def spend(self) -> dict[str, float]:
        """Spent (jobs that cost something) and committed (running jobs, and submits of unknown outcome), both real;
        `would_cost_usd`: what sandbox jobs would have cost on the real providers (never spent, never committed)."""
        maybe = (*ACTIVE_STATES, "unknown")  # 'unknown' jobs may have been charged: committed until someone checks
        with self._lock:
            spent, would, committed, jobs = self._db.execute(
                "SELECT COALESCE(SUM(CASE WHEN sandbox = 0 THEN cost_usd END), 0), COALESCE(SUM(CASE WHEN sandbox = 1 "
                f"THEN cost_usd END), 0), COALESCE(SUM(CASE WHEN sandbox = 0 AND state IN ({','.join('?' * len(maybe))}) "
                "THEN estimate_usd END), 0), COALESCE(SUM(state = 'completed'), 0) FROM jobs", maybe).fetchone()
        return {"spent_usd": round(spent, 4), "committed_usd": round(committed, 4), "completed_jobs": jobs,
                "would_cost_usd": round(would, 4)}

    def spend_since(self, since: str, started_by: str | None) -> float:
        """What the jobs one caller started since `since` cost or may cost (None: jobs with no recorded starter);
        sandbox jobs cost nothing."""
        maybe = (*ACTIVE_STATES, "unknown")
        with self._lock:
            value = self._db.execute(
                f"""SELECT COALESCE(SUM(CASE WHEN cost_usd IS NOT NULL THEN cost_usd
                       WHEN state IN ({','.join('?' * len(maybe))}) THEN estimate_usd ELSE 0 END), 0)
                   FROM jobs WHERE created_at >= ? AND started_by IS ? AND sandbox = 0""",
                (*maybe, since, started_by),
            ).fetchone()[0]
        return round(float(value), 4)

    # ---------------------------------------------------------------- uploads

    def cached_upload(self, sha256: str, provider: str, scope: str, max_age_s: float) -> str | None:
        """The URL of an earlier upload of these bytes to this provider at these base URLs, while it is fresh."""
        with self._lock:
            row = self._db.execute(
                "SELECT url, created_at FROM uploads WHERE sha256 = ? AND provider = ? AND scope = ?",
                (sha256, provider, scope),
            ).fetchone()
        if row is None:
            return None
        created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
        if (datetime.now(UTC) - created).total_seconds() > max_age_s:
            return None
        return str(row["url"])

    def remember_upload(self, sha256: str, provider: str, scope: str, url: str, size: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO uploads (sha256, provider, url, size, created_at, scope) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (sha256, provider, url, size, now_iso(), scope))

    def forget_upload(self, sha256: str, provider: str) -> None:
        """A provider could not read an earlier upload: it is not offered again."""
        with self._tx() as db:
            db.execute("DELETE FROM uploads WHERE sha256 = ? AND provider = ?", (sha256, provider))
