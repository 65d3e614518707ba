"""The local server's Message Batches API, exercised through the real SDK with strict validation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anthropic
import httpx2
import pydantic
import pytest
from anthropic.types.messages import MessageBatchIndividualResponse

from claude_force_nb._request import SYNTHETIC_HEADER
from claude_force_nb.simulator import BATCH_OUTCOME_KINDS, LocalServer
from claude_force_nb.simulator.__main__ import main

MODEL = "claude-sonnet-4-6"
SECONDS = 10.0  # how long a batch takes on the servers with a fake clock


def params(task: str = "Summarise the release notes.", **overrides):
    base = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": task}]}
    return base | overrides


def requests(count: int, prefix: str = "r"):
    return [{"custom_id": f"{prefix}{i}", "params": params(f"Task number {i}.")} for i in range(count)]


@pytest.fixture
def ticking(clock):
    """A server on a fake clock, where a batch takes SECONDS."""
    with LocalServer(timer=clock, batch_seconds=SECONDS) as local:
        yield local


@pytest.fixture
def sdk(ticking):
    with anthropic.Anthropic(api_key="test-key", base_url=ticking.url, _strict_response_validation=True) as client:
        yield client


@pytest.fixture
def quick(server):
    """The shared server, with batches that take a fraction of a second on the real clock."""
    server.batch_seconds = 0.3
    yield server
    server.batch_seconds = 2.0


def _no_extras(value) -> None:
    # The SDK's models accept unknown fields; a field the API does not send is a bug here.
    if isinstance(value, pydantic.BaseModel):
        assert not value.model_extra, f"unexpected fields {value.model_extra} in {type(value).__name__}"
        for name in type(value).model_fields:
            _no_extras(getattr(value, name))
    elif isinstance(value, list):
        for item in value:
            _no_extras(item)


def strict_results(batch) -> list[MessageBatchIndividualResponse]:
    """Every line of the results, validated strictly: the SDK's own decoder does not validate them."""
    response = httpx2.get(batch.results_url, headers={"x-api-key": "test-key"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-jsonl"
    assert response.headers[SYNTHETIC_HEADER] == "1"
    assert response.content.endswith(b"\n")
    lines = response.content.splitlines()
    parsed = [MessageBatchIndividualResponse.model_validate_json(line, strict=True) for line in lines]
    for line in parsed:
        _no_extras(line)
    return parsed


def test_a_batch_runs_from_creation_to_results(sdk, ticking, clock):
    batch = sdk.messages.batches.create(requests=requests(5))
    assert batch.id.startswith("msgbatch_")
    assert (batch.type, batch.processing_status) == ("message_batch", "in_progress")
    assert batch.request_counts.processing == 5
    assert batch.results_url is None and batch.ended_at is None and batch.archived_at is None
    assert batch.expires_at - batch.created_at == timedelta(hours=24)
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        sdk.messages.batches.results(batch.id)

    clock.tick(SECONDS * 0.4)
    batch = sdk.messages.batches.retrieve(batch.id)
    assert (batch.request_counts.succeeded, batch.request_counts.processing) == (2, 3)  # finishing evenly

    clock.tick(SECONDS * 0.6)
    batch = sdk.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded == 5 and batch.request_counts.processing == 0
    assert batch.ended_at - batch.created_at == timedelta(seconds=SECONDS)
    assert batch.results_url == f"{ticking.url}/v1/messages/batches/{batch.id}/results"

    results = {line.custom_id: line.result for line in sdk.messages.batches.results(batch.id)}
    assert list(results) == [f"r{i}" for i in range(5)]
    assert [line.custom_id for line in strict_results(batch)] == list(results)
    for i, result in results.items():
        assert result.type == "succeeded"
        direct = sdk.messages.create(**params(f"Task number {i[1:]}."))
        assert result.message.id.startswith("msg_") and result.message.id != direct.id
        assert result.message.content == direct.content
        assert result.message.content[0].text.startswith("[synthetic] ")
        assert (result.message.model, result.message.stop_reason) == (direct.model, direct.stop_reason)
        assert result.message.usage.model_dump(exclude={"service_tier"}) == direct.usage.model_dump(
            exclude={"service_tier"}
        )
        assert result.message.usage.service_tier == "batch"


def test_results_are_the_same_on_every_read(sdk, clock):
    batch = sdk.messages.batches.create(requests=requests(3))
    clock.tick(SECONDS)
    first = [line.model_dump() for line in sdk.messages.batches.results(batch.id)]
    again = [line.model_dump() for line in sdk.messages.batches.results(batch.id)]
    assert first == again


async def test_the_async_client_polls_until_the_end(client, quick):
    batch = await client.messages.batches.create(requests=requests(4))
    for _ in range(500):
        if batch.processing_status == "ended":
            break
        await asyncio.sleep(0.02)
        batch = await client.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended"
    assert batch.results_url.startswith(quick.url)
    results = [line async for line in await client.messages.batches.results(batch.id)]
    assert [line.result.type for line in results] == ["succeeded"] * 4
    assert len(strict_results(batch)) == 4


def test_results_before_the_end_are_refused(sdk, ticking):
    batch = sdk.messages.batches.create(requests=requests(1))
    response = httpx2.get(f"{ticking.url}/v1/messages/batches/{batch.id}/results", headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_list_pages_newest_first_both_ways(sdk):
    created = [sdk.messages.batches.create(requests=requests(1)).id for _ in range(5)]
    newest_first = created[::-1]
    page = sdk.messages.batches.list(limit=2)
    assert [batch.id for batch in page.data] == newest_first[:2]
    assert (page.has_more, page.first_id, page.last_id) == (True, newest_first[0], newest_first[1])
    assert [batch.id for batch in sdk.messages.batches.list(limit=2)] == newest_first  # the SDK pages on
    older = sdk.messages.batches.list(limit=2, after_id=newest_first[1])
    assert [batch.id for batch in older.data] == newest_first[2:4] and older.has_more
    last = sdk.messages.batches.list(limit=2, after_id=newest_first[3])
    assert [batch.id for batch in last.data] == newest_first[4:] and not last.has_more
    newer = sdk.messages.batches.list(limit=2, before_id=newest_first[4])
    assert [batch.id for batch in newer.data] == newest_first[2:4] and newer.has_more
    # Paging backwards, the SDK asks for the page before each page's first batch.
    backwards = [batch.id for batch in sdk.messages.batches.list(limit=2, before_id=newest_first[4])]
    assert backwards == newest_first[2:4] + newest_first[:2]
    assert sdk.messages.batches.list().data[0].id == newest_first[0]


def test_list_refuses_bad_paging(sdk):
    sdk.messages.batches.create(requests=requests(1))
    with pytest.raises(anthropic.BadRequestError, match="limit"):
        sdk.messages.batches.list(limit=1001)
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.list(after_id="msgbatch_nothing")
    empty = LocalServer().start()
    try:
        with anthropic.Anthropic(api_key="k", base_url=empty.url, _strict_response_validation=True) as other:
            page = other.messages.batches.list()
        assert (page.data, page.has_more, page.first_id, page.last_id) == ([], False, None, None)
    finally:
        empty.stop()


def test_cancel_mid_processing(sdk, clock):
    batch = sdk.messages.batches.create(requests=requests(10))
    clock.tick(SECONDS * 0.3)
    canceling = sdk.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None and canceling.results_url is None
    assert canceling.request_counts.succeeded == 3
    clock.tick(SECONDS * 0.1)  # requests in flight may still finish while it cancels
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    counts = ended.request_counts
    assert (counts.succeeded, counts.canceled, counts.processing) == (4, 6, 0)
    assert ended.ended_at - ended.cancel_initiated_at == timedelta(seconds=SECONDS * 0.1)
    kinds = [line.result.type for line in strict_results(ended)]
    assert kinds == ["succeeded"] * 4 + ["canceled"] * 6
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        sdk.messages.batches.cancel(batch.id)


def test_cancel_near_the_end_cancels_nothing(sdk, clock):
    batch = sdk.messages.batches.create(requests=requests(10))
    clock.tick(SECONDS * 0.95)
    assert sdk.messages.batches.cancel(batch.id).processing_status == "canceling"
    clock.tick(SECONDS * 0.05)
    ended = sdk.messages.batches.retrieve(batch.id)
    assert (ended.processing_status, ended.request_counts.succeeded, ended.request_counts.canceled) == ("ended", 10, 0)


def test_delete_only_once_ended(sdk, clock):
    batch = sdk.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError, match="still processing") as caught:
        sdk.messages.batches.delete(batch.id)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    clock.tick(SECONDS)
    deleted = sdk.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(batch.id)
    assert sdk.messages.batches.list().data == []


@pytest.mark.parametrize(
    ("batch_requests", "complaint"),
    [
        ([], "at least 1 item"),
        ([{"custom_id": "has space", "params": params()}], "custom_id"),
        ([{"custom_id": "x" * 65, "params": params()}], "custom_id"),
        ([{"custom_id": "", "params": params()}], "custom_id"),
        ([{"custom_id": "same", "params": params()}, {"custom_id": "same", "params": params()}], "Duplicate"),
        ([{"custom_id": "a", "params": params(stream=True)}], "stream"),
        ([{"custom_id": "a"}], "params"),
        (["not an object"], "requests.0"),
    ],
    ids=["empty", "space", "too-long", "blank", "duplicate", "stream", "no-params", "not-object"],
)
def test_a_malformed_batch_is_a_400(sdk, ticking, batch_requests, complaint):
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.batches.create(requests=batch_requests)
    error = caught.value
    assert error.body["type"] == "error" and error.body["error"]["type"] == "invalid_request_error"
    assert complaint in error.body["error"]["message"]
    assert error.body["request_id"] == error.request_id
    assert len(ticking.log) == 1  # a 400 is not retried
    assert sdk.messages.batches.list().data == []


def test_an_unparseable_batch_is_a_400(ticking):
    response = httpx2.post(f"{ticking.url}/v1/messages/batches", content=b"{", headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Could not parse" in response.json()["error"]["message"]


def test_more_than_100000_requests_is_a_400(sdk):
    tiny = [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]
    with pytest.raises(anthropic.BadRequestError, match="at most 100000 items"):
        sdk.messages.batches.create(requests=tiny)


def test_a_body_over_256_mb_is_read_then_refused_with_413(ticking, send_oversize):
    reply, _ = send_oversize(ticking.port, "/v1/messages/batches", 256 * 1024 * 1024 + 1)
    assert reply.startswith("HTTP/1.1 413 ")
    assert '"type":"request_too_large"' in reply
    assert ticking.log[0].status == 413


def test_invalid_params_error_one_request_not_the_batch(sdk, clock):
    batch = sdk.messages.batches.create(
        requests=[
            {"custom_id": "fine", "params": params()},
            {"custom_id": "no-max-tokens", "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}},
            {"custom_id": "no-such-model", "params": params(model="claude-imaginary-9")},
        ]
    )
    assert batch.processing_status == "in_progress"
    clock.tick(SECONDS)
    assert sdk.messages.batches.retrieve(batch.id).request_counts.errored == 2
    results = {line.custom_id: line.result for line in strict_results(sdk.messages.batches.retrieve(batch.id))}
    assert results["fine"].type == "succeeded"
    assert results["no-max-tokens"].type == "errored"
    assert results["no-max-tokens"].error.error.type == "invalid_request_error"
    assert "max_tokens" in results["no-max-tokens"].error.error.message
    assert results["no-such-model"].error.error.type == "not_found_error"


def test_chosen_requests_error_or_expire(sdk, ticking, clock):
    ticking.batch_outcomes.assign("r1", "overloaded_error")
    ticking.batch_outcomes.assign("r2", "api_error", message="Something broke")
    ticking.batch_outcomes.assign("r3", "expired")
    batch = sdk.messages.batches.create(requests=requests(4))
    clock.tick(SECONDS)
    batch = sdk.messages.batches.retrieve(batch.id)
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored, counts.expired) == (1, 2, 1)
    results = [line.result for line in strict_results(batch)]
    assert [result.type for result in results] == ["succeeded", "errored", "errored", "expired"]
    assert (results[1].error.error.type, results[1].error.error.message) == ("overloaded_error", "Overloaded")
    assert (results[2].error.error.type, results[2].error.error.message) == ("api_error", "Something broke")


def test_outcome_rates_are_seeded_by_custom_id(sdk, ticking, clock):
    ticking.batch_outcomes.rates = {"api_error": 0.25, "expired": 0.25}
    first = sdk.messages.batches.create(requests=requests(200))
    second = sdk.messages.batches.create(requests=requests(200)[::-1])
    clock.tick(SECONDS)
    kinds = [
        {line.custom_id: line.result.type for line in strict_results(sdk.messages.batches.retrieve(b.id))}
        for b in (first, second)
    ]
    assert kinds[0] == kinds[1]  # the same custom_id, the same outcome, wherever it stands
    tally = {kind: list(kinds[0].values()).count(kind) for kind in ("succeeded", "errored", "expired")}
    assert 70 <= tally["succeeded"] <= 130 and 25 <= tally["errored"] <= 75 and 25 <= tally["expired"] <= 75
    ticking.reset()
    assert ticking.batch_outcomes.rates == {}


def test_outcomes_are_checked():
    outcomes = LocalServer().batch_outcomes
    with pytest.raises(ValueError, match="Unknown batch outcome"):
        outcomes.assign("a", "bored")
    with pytest.raises(ValueError, match="more than 1"):
        outcomes.rates = {"expired": 0.6, "api_error": 0.6}
    assert "expired" in BATCH_OUTCOME_KINDS and "overloaded_error" in BATCH_OUTCOME_KINDS


def test_a_batch_unfinished_at_expiry_expires_the_rest(clock):
    with (
        LocalServer(timer=clock, batch_seconds=10.0, batch_expiry_seconds=5.0) as local,
        anthropic.Anthropic(api_key="k", base_url=local.url, _strict_response_validation=True) as sdk,
    ):
        batch = sdk.messages.batches.create(requests=requests(8))
        assert batch.expires_at - batch.created_at == timedelta(seconds=5)
        clock.tick(4.9)
        assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        clock.tick(0.1)
        batch = sdk.messages.batches.retrieve(batch.id)
        assert batch.processing_status == "ended" and batch.ended_at == batch.expires_at
        assert (batch.request_counts.succeeded, batch.request_counts.expired) == (4, 4)
        assert [line.result.type for line in strict_results(batch)] == ["succeeded"] * 4 + ["expired"] * 4


def test_ten_thousand_requests_end_to_end(sdk, clock):
    batch = sdk.messages.batches.create(requests=requests(10_000))
    assert batch.request_counts.processing == 10_000
    clock.tick(SECONDS / 2)
    assert sdk.messages.batches.retrieve(batch.id).request_counts.succeeded == 5_000
    clock.tick(SECONDS / 2)
    batch = sdk.messages.batches.retrieve(batch.id)
    assert batch.request_counts.succeeded == 10_000
    lines = strict_results(batch)
    assert len(lines) == 10_000 and {line.result.type for line in lines} == {"succeeded"}
    assert sum(1 for _ in sdk.messages.batches.results(batch.id)) == 10_000


def test_batches_need_a_key_and_are_logged(ticking):
    response = httpx2.post(f"{ticking.url}/v1/messages/batches", json={"requests": requests(1)})
    assert response.status_code == 401
    with anthropic.Anthropic(api_key="k", base_url=ticking.url) as sdk:
        batch = sdk.messages.batches.create(requests=requests(2))
        sdk.messages.batches.retrieve(batch.id)
    assert [(r.method, r.path, r.status) for r in ticking.log] == [
        ("POST", "/v1/messages/batches", 401),
        ("POST", "/v1/messages/batches", 200),
        ("GET", f"/v1/messages/batches/{batch.id}", 200),
    ]
    assert ticking.log[1].body["requests"][1]["custom_id"] == "r1"
    assert ticking.log[1].headers["authorization"] == "<redacted>"


def test_unknown_batches_and_paths_are_a_404(sdk, ticking):
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve("msgbatch_missing")
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.cancel("msgbatch_missing")
    response = httpx2.put(f"{ticking.url}/v1/messages/batches/x/y/z", headers={"x-api-key": "k"})
    assert response.status_code == 404


def test_reset_forgets_batches(sdk, ticking):
    batch = sdk.messages.batches.create(requests=requests(1))
    ticking.reset()
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(batch.id)


def test_zero_batch_seconds_ends_at_once(clock):
    with (
        LocalServer(timer=clock, batch_seconds=0) as local,
        anthropic.Anthropic(api_key="k", base_url=local.url, _strict_response_validation=True) as sdk,
    ):
        batch = sdk.messages.batches.create(requests=requests(3))
    assert batch.processing_status == "ended" and batch.request_counts.succeeded == 3


@pytest.mark.parametrize(("name", "value"), [("batch_seconds", -1.0), ("batch_expiry_seconds", 0.0)])
def test_batch_settings_are_checked(name, value):
    with pytest.raises(ValueError, match=name):
        LocalServer(**{name: value})
    with pytest.raises(SystemExit):
        main(["--port", "0", f"--{name.replace('_', '-')}", str(value)])
