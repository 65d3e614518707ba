"""Helpers for the team-cache tests: a shared secret, requests and answers, a cache on a database, its rows."""

import psycopg

from claude_force_nb import ResponseCache
from claude_force_nb._request import Completion, Request

SECRET = b"team-secret-shared-by-every-member"
OTHER = b"a-secret-this-team-does-not-hold!!"


def request(task="What is a monad?"):
    return Request.for_task(task, model="claude-sonnet-4-6", max_tokens=100)


def completion(text="An answer.", origin="https://api.anthropic.com"):
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    return Completion(message, 0.3, "req_1", origin, False)


def cache(tmp_path, url, name="member", secret=SECRET, **options):
    return ResponseCache(tmp_path / f"{name}.sqlite", secrets=[secret], team_url=url, **options)


def rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT key, origin, key_id, task FROM claude_force_nb_responses").fetchall()
