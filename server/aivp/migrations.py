"""The ledger's schema, as append-only named migrations (applied in order, each once, in one transaction).

Never edit a migration that has shipped: a ledger written by an older aivp is upgraded by running
the ones it has not seen (the `_migrations` table records which).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = []


def migration(name: str, sql: str) -> None:
    MIGRATIONS.append((name, sql))


migration(
    "m001_jobs",
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        idem_key TEXT NOT NULL,
        tool TEXT NOT NULL,
        model_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        task TEXT NOT NULL,
        state TEXT NOT NULL,
        request_json TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        request_id TEXT,
        handle_json TEXT,
        queue_position INTEGER,
        logs_json TEXT,
        result_json TEXT,
        outputs_json TEXT,
        error TEXT,
        error_code TEXT,
        estimate_usd REAL NOT NULL DEFAULT 0,
        cost_usd REAL,
        created_at TEXT NOT NULL,
        submitted_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX jobs_idem ON jobs(idem_key);
    CREATE INDEX jobs_state ON jobs(state);
    CREATE INDEX jobs_request ON jobs(provider, request_id);
    CREATE TABLE events (
        job_id TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX events_job ON events(job_id);
    CREATE TABLE uploads (
        sha256 TEXT NOT NULL,
        provider TEXT NOT NULL,
        url TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (sha256, provider)
    );
    """,
)


migration(
    "m002_owner",
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN heartbeat_at REAL;
    CREATE INDEX jobs_owner ON jobs(owner)
    """,
)


migration(
    "m003_started_by",
    """
    ALTER TABLE jobs ADD COLUMN started_by TEXT;
    ALTER TABLE jobs ADD COLUMN canceled_by TEXT;
    CREATE INDEX jobs_started_by ON jobs(started_by)
    """,
)


# An upload URL belongs to the provider's host it was made on: a project used with a sandbox (aivp demo)
# and then with fal must not hand fal the sandbox's links. Earlier rows have no scope and match nothing.
migration(
    "m004_upload_scope",
    """
    ALTER TABLE uploads ADD COLUMN scope TEXT NOT NULL DEFAULT ''
    """,
)


# A job sent to a sandbox (a provider whose base URLs are on this machine) costs nothing: its cost is what the
# real provider would have charged, reported apart and never counted against a budget. Earlier rows are judged by
# the URLs they kept: a handle (fal's and Replicate's status URLs) or an output on a loopback host is a sandbox
# job. A row with neither (BytePlus keeps no URL in its handle; jobs that ended before the submit) stays a real
# job: counted, never hidden, since a real charge must not be lost from the budget.
migration(
    "m005_sandbox",
    """
    ALTER TABLE jobs ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET sandbox = 1 WHERE handle_json LIKE '%://127.0.0.1:%' OR handle_json LIKE '%://localhost:%'
        OR handle_json LIKE '%://[::1]:%' OR outputs_json LIKE '%://127.0.0.1:%'
        OR outputs_json LIKE '%://localhost:%' OR outputs_json LIKE '%://[::1]:%'
    """,
)
