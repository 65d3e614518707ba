"""Sweeps through the Message Batches API: deduplicated, written down, collected into the cache, never sent twice."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pydantic
import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._batches.journal import BatchJournal, JobRequest
from claude_force_nb.simulator import LocalServer

POLL = 0.05


@pytest.fixture
def server():
    with LocalServer(batch_seconds=0.3) as own:
        yield own


def orchestrator(server, **options):
    return AsyncAgentOrchestrator(base_url=server.url, api_key="k", **options)


def sweep(count, prefix="item"):
    return [("explainer", f"{prefix} {i}: name one prime") for i in range(count)]


def created(server):
    return [r for r in server.log if r.method == "POST" and r.path == "/v1/messages/batches"]


def submitted_ids(server):
    return [request["custom_id"] for r in created(server) for request in r.body["requests"]]


async def test_a_sweep_goes_as_one_batch_and_comes_back_cached_at_half_price(server):
    async with orchestrator(server) as orch:
        results = await orch.execute_batch(sweep(6) + sweep(2), poll_seconds=POLL)  # two repeats
        assert [r.status for r in results] == ["ok"] * 6 + ["cached"] * 2  # the repeats share an answer
        assert [r.cost for r in results[6:]] == [0.0, 0.0] and orch.spent().calls == 6
        assert len(created(server)) == 1 and len(submitted_ids(server)) == 6  # one request per cache key
        assert [r for r in server.log if r.path == "/v1/messages"] == []
        batch_cost = sum(r.cost for r in results[:6])
        assert (orch.stats().misses, orch.stats().hits) == (8, 0)
        again = await orch.execute_batch(sweep(6), poll_seconds=POLL)
        assert all(r.cached for r in again) and len(created(server)) == 1
        assert (orch.stats().misses, orch.stats().hits) == (8, 6)
        live = await orch.execute_multiple(sweep(6), cache_mode="refresh")
        assert batch_cost == pytest.approx(sum(r.cost for r in live) / 2)
        assert [r.output for r in again] == [r.output for r in live]  # the same answers either way


class Person(pydantic.BaseModel):
    name: str
    age: int


async def test_a_batch_answer_that_breaks_its_schema_is_billed_and_not_kept(server):
    people = [("explainer", "Ada Lovelace"), ("explainer", "Alan Turing")]
    async with orchestrator(server) as orch:
        server.shape_next(invalid_json=True)  # the first answer the batch gives breaks the schema
        bad, good = await orch.execute_batch(people, schema=Person, poll_seconds=POLL)
        assert not bad.success and bad.errors[0].startswith("The answer does not match the schema:")
        assert bad.cost > 0 and bad.cost == pytest.approx(good.cost, rel=0.5)  # billed, at the batch rate
        assert good.success and isinstance(good.parsed, Person)
        assert orch.spent().calls == 2
        again = await orch.execute_batch(people, schema=Person, poll_seconds=POLL)
        assert [r.status for r in again] == ["ok", "cached"]  # the broken answer was not kept: asked again
        assert again[0].success and isinstance(again[0].parsed, Person)
        assert len(created(server)) == 2 and submitted_ids(server)[2:] == [orch.prepare(*people[0], schema=Person).key]
        live = await orch.execute_agent(*people[0], schema=Person)
        assert live.cached and live.parsed == again[0].parsed


async def test_hits_are_never_resubmitted(server):
    async with orchestrator(server) as orch:
        await orch.execute_multiple(sweep(3))
        results = await orch.execute_batch(sweep(5), poll_seconds=POLL)
    assert [r.cached for r in results] == [True] * 3 + [False] * 2
    assert len(submitted_ids(server)) == 2
    assert all(len(cid) == 64 and cid.isalnum() for cid in submitted_ids(server))


async def test_errored_and_expired_requests_fail_with_their_reason_and_only_they_go_again(server):
    async with orchestrator(server) as orch:
        keys = [orch.prepare(agent, task).key for agent, task in sweep(4)]
        server.batch_outcomes.assign(keys[1], "overloaded_error")
        server.batch_outcomes.assign(keys[2], "expired")
        results = await orch.execute_batch(sweep(4), poll_seconds=POLL)
        assert [r.status for r in results] == ["ok", "failed", "failed", "ok"]
        assert "answered this request with overloaded_error" in results[1].errors[0]
        assert "expired before this request was processed; re-run to resubmit it" in results[2].errors[0]
        server.batch_outcomes.clear()
        again = await orch.execute_batch(sweep(4), poll_seconds=POLL)
    assert [r.status for r in again] == ["cached", "ok", "ok", "cached"]
    assert submitted_ids(server)[4:] == [keys[1], keys[2]]


async def test_a_restart_mid_batch_finds_the_batch_instead_of_submitting_again(server, until):
    server.batch_seconds = 1.0
    async with orchestrator(server) as first:
        batch = first.message_batch(sweep(5), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)  # submitted and written down
        await batch.cancel_and_settle()  # the kernel goes away; the batch runs on at the API
    assert len(created(server)) == 1
    async with orchestrator(server) as second:  # a new kernel on the same cache file
        results = await second.execute_batch(sweep(5), poll_seconds=POLL)
        assert all(r.success for r in results)
        assert len(created(server)) == 1  # nothing submitted twice
        journal = second.journal
        assert [job.state for job in journal.jobs()] == ["collected"]


async def test_agent_batches_collects_an_earlier_run_into_the_cache(server, until):
    async with orchestrator(server) as first:
        batch = first.message_batch(sweep(3), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)
        await batch.cancel_and_settle()
    await asyncio.sleep(0.4)  # the batch ends meanwhile
    async with orchestrator(server) as second:
        found = await second.collect_batches()
        assert [(job.state, status.ended) for job, status in found] == [("submitted", True)]
        results = await second.execute_multiple(sweep(3))
    assert all(r.cached for r in results)


async def test_a_batch_the_endpoint_forgot_is_submitted_again(server, until):
    async with orchestrator(server) as first:
        batch = first.message_batch(sweep(2), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)
        await batch.cancel_and_settle()
    server.reset()  # a local server restarted: its batches are gone
    async with orchestrator(server) as second:
        results = await second.execute_batch(sweep(2), poll_seconds=POLL)
        states = [job.state for job in second.journal.jobs()]
    assert all(r.success for r in results)
    assert states == ["collected", "lost"]


async def test_cancelling_a_batch_fails_what_it_had_not_answered(until, clock):
    # The server's clock moves only when told: nothing is answered before the cancel lands.
    with LocalServer(timer=clock, batch_seconds=5.0) as server:
        async with orchestrator(server) as orch:
            batch = orch.message_batch(sweep(4), poll_seconds=POLL).start()
            await until(lambda: batch.remote.statuses)
            (batch_id,) = batch.remote.statuses
            status = await orch.cancel_batch(batch_id)
            assert status.processing_status == "canceling"
            clock.tick(0.5)  # the cancel settles; the first answer was due at 1.25 s
            results = await batch.wait()
    assert [r.status for r in results] == ["failed"] * 4
    assert "was canceled before this request was processed" in results[0].errors[0]
    assert "Message Batches: 1 (1 ended)" in batch.remote.describe()


async def test_the_journal_lives_in_the_cache_file(server, tmp_path):
    path = tmp_path / "answers.sqlite"
    async with orchestrator(server, cache_path=path) as orch:
        await orch.execute_batch(sweep(2), poll_seconds=POLL)
        assert orch.journal.path == path
    assert BatchJournal(path).jobs()[0].size == 2


async def test_a_submission_the_kernel_never_saw_answered_is_found_not_sent_again(server):
    async with orchestrator(server) as first:
        calls = first.prepare_all(sweep(3))
        first.journal.begin(first.backend.origin, [JobRequest(c.key, c.agent, c.model, c.task) for c in calls])
        # The API takes the batch; the kernel dies before it writes the batch id down.
        await first.backend.create_batch([(c.key, c.request) for c in calls])
    async with orchestrator(server) as second:
        results = await second.execute_batch(sweep(3), poll_seconds=POLL)
        states = [job.state for job in second.journal.jobs()]
    assert all(r.success for r in results)
    assert len(created(server)) == 1 and states == ["collected"]


async def test_a_submission_the_api_never_took_is_sent_again(server, monkeypatch):
    monkeypatch.setattr("claude_force_nb._batches.runner.ADOPT_RETRY_SECONDS", 0.01)
    async with orchestrator(server) as first:
        calls = first.prepare_all(sweep(2))
        first.journal.begin(first.backend.origin, [JobRequest(c.key, c.agent, c.model, c.task) for c in calls])
    async with orchestrator(server) as second:
        results = await second.execute_batch(sweep(2), poll_seconds=POLL)
        states = [job.state for job in second.journal.jobs()]
    assert all(r.success for r in results)
    assert len(created(server)) == 1 and states == ["collected", "lost"]


async def test_an_earlier_batch_of_the_same_size_is_not_taken_for_the_lost_submission(server, monkeypatch):
    monkeypatch.setattr("claude_force_nb._batches.runner.ADOPT_RETRY_SECONDS", 0.01)
    monkeypatch.setattr("claude_force_nb._batches.runner.CLOCK_SKEW_SECONDS", 0.0)
    async with orchestrator(server) as first:
        others = first.prepare_all(sweep(2, "someone else's"))
        await first.backend.create_batch([(c.key, c.request) for c in others])
        calls = first.prepare_all(sweep(2))
        later = BatchJournal(first.journal.path, clock=lambda: time.time() + 1)  # written down a second after it
        later.begin(first.backend.origin, [JobRequest(c.key, c.agent, c.model, c.task) for c in calls])
        later.close()
    async with orchestrator(server) as second:
        results = await second.execute_batch(sweep(2), poll_seconds=POLL)
        states = [job.state for job in second.journal.jobs()]
    assert [r.output for r in results] and all(r.success for r in results)
    assert states == ["collected", "lost"] and len(created(server)) == 2


async def test_a_job_is_closed_only_once_its_answers_are_in_the_file(server, tmp_path):
    path = tmp_path / "answers.sqlite"
    async with orchestrator(server, cache_path=path) as orch:
        await orch.execute_batch(sweep(40), poll_seconds=POLL)
        rows = sqlite3.connect(path).execute("SELECT count(*) FROM responses").fetchone()[0]
        assert [job.state for job in orch.journal.jobs()] == ["collected"] and rows == 40


async def test_a_second_run_waits_for_a_submission_in_progress_instead_of_sending_it_again(server, until, monkeypatch):
    monkeypatch.setattr("claude_force_nb._batches.runner.ADOPT_RETRY_SECONDS", 0.01)
    server.latency = 0.5  # the first run's submission takes a while to be answered
    async with orchestrator(server) as orch:
        first = orch.message_batch(sweep(3), poll_seconds=POLL).start()
        await until(lambda: orch.journal.jobs())  # written down, not yet answered
        second = await orch.execute_batch(sweep(3), poll_seconds=POLL)
        assert all(r.success for r in await first.wait()) and all(r.success for r in second)
    assert len(created(server)) == 1


async def test_a_batch_made_long_after_a_lost_submission_is_not_taken_for_it(server, monkeypatch):
    monkeypatch.setattr("claude_force_nb._batches.runner.ADOPT_RETRY_SECONDS", 0.01)
    monkeypatch.setattr("claude_force_nb._batches.runner.SUBMIT_SECONDS", 0.0)
    monkeypatch.setattr("claude_force_nb._batches.runner.CLOCK_SKEW_SECONDS", 0.0)
    async with orchestrator(server) as first:
        calls = first.prepare_all(sweep(2))
        earlier = BatchJournal(first.journal.path, clock=lambda: time.time() - 1)  # written down a second before
        earlier.begin(first.backend.origin, [JobRequest(c.key, c.agent, c.model, c.task) for c in calls])
        earlier.close()
        others = first.prepare_all(sweep(2, "someone else's"))
        await first.backend.create_batch([(c.key, c.request) for c in others])  # later: not this job's
    async with orchestrator(server) as second:
        results = await second.execute_batch(sweep(2), poll_seconds=POLL)
    assert all(r.success for r in results) and len(created(server)) == 2


async def test_a_request_no_batch_can_carry_fails_alone_and_nothing_of_it_is_sent(server):
    huge = ("explainer", "x" * (256 * 1024 * 1024))
    async with orchestrator(server) as orch:
        results = await orch.execute_batch([huge, *sweep(2)], poll_seconds=POLL)
    assert [r.status for r in results] == ["failed", "ok", "ok"]
    assert "bytes, over the Message Batches limit of 256 MB (268,435,456 bytes), so nothing was sent" in str(
        results[0].error
    )
    assert len(submitted_ids(server)) == 2
