"""The journal: Message Batch jobs written down in the cache file or the team database, before and after the API
takes them."""

import os
import socket

import pytest

from claude_force_nb._batches.journal import (
    COLLECTED,
    LOST,
    OWNER,
    SUBMITTED,
    SUBMITTING,
    BatchJournal,
    JobRequest,
    owner_alive,
)

ORIGIN = "https://api.anthropic.com"


@pytest.fixture(params=["file", "team"])
def journal(request, tmp_path, clock):
    """A journal in a cache file, and one in a team database: the same statements on either."""
    if request.param == "file":
        opened = BatchJournal(tmp_path / "cache.sqlite", clock=clock)
        yield opened
        opened.close()
        return
    from teamcache import cache

    from claude_force_nb._batches.team_journal import TeamPlace

    member = cache(tmp_path, request.getfixturevalue("team_url"))
    assert member.team is not None and member.team.ensure_ready()
    yield BatchJournal(TeamPlace(member.team), clock=clock)
    member.close()


def requests(*ids):
    return [JobRequest(cid, "explainer", "claude-sonnet-4-6", f"task {cid}") for cid in ids]


def test_a_job_is_written_down_before_submission_and_given_its_batch_after(journal, clock):
    number = journal.begin(ORIGIN, requests("a", "b"))
    job = journal.job(number)
    assert (job.batch_id, job.state, job.size, job.owner, job.created) == (None, SUBMITTING, 2, OWNER, clock.now)
    assert journal.entries(number) == requests("a", "b")
    journal.submitted(number, "msgbatch_1")
    assert journal.find("msgbatch_1").state == SUBMITTED
    assert set(journal.open_requests(ORIGIN)) == {"a", "b"}


def test_a_finished_job_forgets_its_requests_and_keeps_its_record(journal):
    number = journal.begin(ORIGIN, requests("a"))
    journal.submitted(number, "msgbatch_1")
    journal.finish(number, COLLECTED)
    assert journal.entries(number) == [] and journal.open_requests(ORIGIN) == {}
    assert [job.state for job in journal.jobs()] == [COLLECTED] and journal.jobs(open_only=True) == []


def test_open_requests_are_by_endpoint_and_jobs_newest_first(journal, clock):
    first = journal.begin(ORIGIN, requests("a"))
    clock.tick(5)
    second = journal.begin("http://127.0.0.1:8000", requests("b"))
    journal.finish(first, LOST)
    assert [job.job for job in journal.jobs()] == [second, first]
    assert journal.jobs()[0].created - journal.jobs()[1].created == 5
    assert journal.open_requests(ORIGIN) == {} and set(journal.open_requests("http://127.0.0.1:8000")) == {"b"}


def test_another_journal_on_the_same_file_sees_the_jobs(tmp_path):
    journal = BatchJournal(tmp_path / "cache.sqlite")
    number = journal.begin(ORIGIN, requests("a"))
    other = BatchJournal(tmp_path / "cache.sqlite")
    try:
        assert other.job(number).size == 1
    finally:
        other.close()
        journal.close()


def test_an_owner_is_alive_while_its_process_runs():
    assert owner_alive(OWNER)
    assert owner_alive(f"another-host-{socket.gethostname()}:1")  # another machine: assumed alive
    gone = os.getpid() + 1_000_000  # no process has this id
    assert not owner_alive(f"{socket.gethostname()}:{gone}")
    assert not owner_alive("")
