"""The Message Batches journal in the team database: a batch submitted on one machine is collected on another."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._batches.journal import BatchJournal, JobRequest
from claude_force_nb._batches.team_journal import TeamPlace
from claude_force_nb._errors import CacheError
from claude_force_nb.simulator import LocalServer

POLL = 0.05


@pytest.fixture
def server():
    with LocalServer(batch_seconds=0.3) as own:
        yield own


def machine(server, tmp_path, name, url=None):
    """A kernel with a cache file of its own (another machine's), on ``url``'s team database."""
    return AsyncAgentOrchestrator(
        base_url=server.url, api_key="k", cache_path=tmp_path / f"{name}.sqlite", cache_url=url
    )


def sweep(count):
    return [("explainer", f"item {i}: name one prime") for i in range(count)]


def created(server):
    return [r for r in server.log if r.method == "POST" and r.path == "/v1/messages/batches"]


async def test_a_batch_started_on_one_machine_is_collected_on_another(server, tmp_path, team_url, until):
    server.batch_seconds = 1.0
    async with machine(server, tmp_path, "laptop", team_url) as laptop:
        assert laptop.journal.path is None and "team cache" in laptop.journal.where
        batch = laptop.message_batch(sweep(5), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)  # submitted and written down in the database
        await batch.cancel_and_settle()  # the laptop closes; the batch runs on at the API
    async with machine(server, tmp_path, "hub", team_url) as hub:
        results = await hub.execute_batch(sweep(5), poll_seconds=POLL)
        assert all(r.success for r in results)
        assert len(created(server)) == 1  # the hub waited for the laptop's batch rather than submitting again
        assert [job.state for job in hub.journal.jobs()] == ["collected"]
    async with machine(server, tmp_path, "laptop", team_url) as laptop:
        again = await laptop.execute_multiple(sweep(5))
    assert all(r.cached for r in again)  # what the hub collected, the laptop is served


async def test_agent_batches_on_another_machine_collects_an_ended_batch(server, tmp_path, team_url, until):
    async with machine(server, tmp_path, "laptop", team_url) as laptop:
        batch = laptop.message_batch(sweep(3), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)
        await batch.cancel_and_settle()
    await asyncio.sleep(0.4)  # the batch ends meanwhile
    async with machine(server, tmp_path, "ci", team_url) as ci:
        found = await ci.collect_batches()
        assert [(job.state, status.ended) for job, status in found] == [("submitted", True)]
        results = await ci.execute_multiple(sweep(3))
    assert all(r.cached for r in results) and len(created(server)) == 1


async def test_batches_left_open_in_the_file_are_still_collected_once_the_team_cache_is_on(
    server, tmp_path, team_url, until
):
    async with machine(server, tmp_path, "laptop") as alone:
        batch = alone.message_batch(sweep(2), poll_seconds=POLL).start()
        await until(lambda: batch.remote.statuses)
        await batch.cancel_and_settle()
    await asyncio.sleep(0.4)
    async with machine(server, tmp_path, "laptop", team_url) as joined:
        assert [journal.path is None for journal in joined.journals] == [True, False]
        found = await joined.collect_batches()
        assert [job.state for job, _ in found] == ["submitted"]
        assert [job.state for job in joined.journals[1].jobs()] == ["collected"]
    async with machine(server, tmp_path, "colleague", team_url) as colleague:
        assert all(r.cached for r in await colleague.execute_multiple(sweep(2)))  # pushed to the team on collection


@pytest.mark.filterwarnings("ignore:The team cache:claude_force_nb.ClaudeForceWarning")
async def test_with_the_database_away_batches_are_written_down_in_the_file(server, tmp_path, postgres):
    away = postgres.url("postgres").replace(str(postgres.port), "1")  # nothing listens there
    async with machine(server, tmp_path, "laptop", away) as laptop:
        assert [journal.path for journal in laptop.journals] == [tmp_path / "laptop.sqlite"]
        results = await laptop.execute_batch(sweep(2), poll_seconds=POLL)
        assert all(r.success for r in results)
        assert [job.state for job in laptop.journal.jobs()] == ["collected"]


def test_a_journal_whose_database_went_away_fails_at_once_with_a_failure_its_callers_expect(tmp_path, team_url):
    from teamcache import cache

    member = cache(tmp_path, team_url)
    journal = BatchJournal(TeamPlace(member.team))
    journal.begin("https://api.anthropic.com", [JobRequest("a", "explainer", "claude-sonnet-4-6", "task")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        member.team.unreachable(ConnectionError("gone"))
    with pytest.raises(journal.failures) as caught:
        journal.jobs()
    assert isinstance(caught.value, CacheError) and "is away" in str(caught.value)
    member.close()
