"""The team database's tables and their version: made, or migrated, in one transaction, one client at a time.

A version table says which schema the tables follow. A client that finds a
newer one than it knows refuses to touch them (:class:`NewerSchemaError`),
so an older kernel never writes rows a newer one would misread.
"""

from __future__ import annotations

from typing import Any

from .._errors import CacheError

SCHEMA_VERSION = 3
TABLE = "claude_force_nb_responses"
FLIGHTS = "claude_force_nb_flights"
BATCH_JOBS = "claude_force_nb_batch_jobs"
BATCH_REQUESTS = "claude_force_nb_batch_requests"

# The statements that bring version n-1 to version n.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            key text NOT NULL, origin text NOT NULL, synthetic integer NOT NULL, agent text NOT NULL,
            model text NOT NULL, task text NOT NULL, response text NOT NULL, request_id text,
            input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, latency double precision NOT NULL,
            created double precision NOT NULL, expires double precision NOT NULL, key_id text NOT NULL,
            signature bytea NOT NULL, PRIMARY KEY (key, origin, key_id))""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires)",
    ),
    # Requests in flight on some machine: who sends each, and until when its claim holds.
    2: (
        f"""CREATE TABLE IF NOT EXISTS {FLIGHTS} (
            key text NOT NULL, origin text NOT NULL, holder text NOT NULL, expires double precision NOT NULL,
            PRIMARY KEY (key, origin))""",
    ),
    # The Message Batches journal (see _batches.journal): the same columns as in a cache file.
    3: (
        f"""CREATE TABLE IF NOT EXISTS {BATCH_JOBS} (
            job bigserial PRIMARY KEY, batch_id text UNIQUE, origin text NOT NULL,
            created double precision NOT NULL, size integer NOT NULL, state text NOT NULL,
            owner text NOT NULL DEFAULT '')""",
        f"""CREATE TABLE IF NOT EXISTS {BATCH_REQUESTS} (
            job bigint NOT NULL, custom_id text NOT NULL, agent text NOT NULL, model text NOT NULL,
            task text NOT NULL, PRIMARY KEY (job, custom_id))""",
    ),
}


class NewerSchemaError(CacheError):
    """The team database was made by a newer claude-force-nb: this one refuses to write to it."""


def ensure_schema(conn: Any, where: str) -> None:
    """Create or migrate the tables on ``conn``, inside the caller's transaction; refuse a newer schema."""
    # One client at a time creates or migrates; the others wait for the lock, then find it done.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('claude_force_nb_schema'))")
    conn.execute("CREATE TABLE IF NOT EXISTS claude_force_nb_schema (version integer NOT NULL)")
    found = conn.execute("SELECT max(version) FROM claude_force_nb_schema").fetchone()
    version = (found[0] if found else None) or 0
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"The team cache at {where} has schema version {version}; this claude-force-nb knows "
            f"{SCHEMA_VERSION}. Upgrade it (pip install -U claude-force-nb); nothing was written."
        )
    if version == SCHEMA_VERSION:
        return
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[step]:
            conn.execute(statement)
    conn.execute("DELETE FROM claude_force_nb_schema")
    conn.execute("INSERT INTO claude_force_nb_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
