"""The local Messages API server, exercised through the real SDK with strict validation."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2
import pytest

import claude_force_nb
from claude_force_nb.simulator import FAULT_KINDS, Faults, LocalServer, RequestRecord

MODEL = "claude-sonnet-4-6"
REVIEWER = "You are a meticulous code reviewer who reads every line twice."
TASK = "Review the retry loop in fetch() for off-by-one errors."


def kwargs(**overrides):
    base = {"model": MODEL, "max_tokens": 256, "system": REVIEWER, "messages": [{"role": "user", "content": TASK}]}
    base.update(overrides)
    return base


def strict(server: LocalServer, **options) -> anthropic.AsyncAnthropic:
    options.setdefault("api_key", "test-key")
    return anthropic.AsyncAnthropic(base_url=server.url, _strict_response_validation=True, **options)


async def test_create_returns_a_valid_message(client, server):
    message = await client.messages.create(**kwargs())
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    text = message.content[0].text
    assert text.startswith("[synthetic] ")
    assert text.splitlines()[-1].startswith(f'(model {MODEL} \u00b7 system "You are a meticulous code reviewer')
    assert "Review the retry loop" in text
    assert 40 <= message.usage.output_tokens <= 100
    assert message.usage.output_tokens == len(text.split())
    assert message.usage.input_tokens == (len(REVIEWER) + len(TASK)) // 4
    assert message.usage.cache_read_input_tokens == 0
    assert message._request_id.startswith("req_")
    [record] = server.log
    assert isinstance(record, RequestRecord)
    assert (record.method, record.path, record.status, record.stream) == ("POST", "/v1/messages", 200, False)
    assert record.body["system"] == REVIEWER
    assert record.request_id == message._request_id
    assert record.headers["authorization"] == "<redacted>"  # the SDK sends api_key as a Bearer token
    assert record.finished >= record.started


async def test_request_ids_are_unique(client):
    ids = {(await client.messages.create(**kwargs()))._request_id for _ in range(5)}
    assert len(ids) == 5


async def test_no_system_prompt_is_named(client):
    message = await client.messages.create(**kwargs(system=anthropic.omit))
    assert "no system prompt" in message.content[0].text.splitlines()[-1]


async def test_same_request_same_text_and_other_system_other_text(client):
    first = await client.messages.create(**kwargs())
    again = await client.messages.create(**kwargs())
    other = await client.messages.create(**kwargs(system="You are a terse release manager."))
    hotter = await client.messages.create(**kwargs(extra_body={"temperature": 0.9}))
    assert first.content[0].text == again.content[0].text
    assert first.id != again.id
    assert other.content[0].text != first.content[0].text
    assert hotter.content[0].text != first.content[0].text


async def test_system_as_text_blocks_and_content_as_blocks(client):
    message = await client.messages.create(
        **kwargs(
            system=[{"type": "text", "text": REVIEWER}],
            messages=[{"role": "user", "content": [{"type": "text", "text": TASK}]}],
        )
    )
    plain = await client.messages.create(**kwargs())
    assert "meticulous code reviewer" in message.content[0].text
    assert message.usage.input_tokens == plain.usage.input_tokens


async def test_max_tokens_truncates_to_a_prefix(client):
    full = (await client.messages.create(**kwargs())).content[0].text
    short = await client.messages.create(**kwargs(max_tokens=5))
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens == 5
    assert full.startswith(short.content[0].text)


async def test_stop_sequence_ends_the_answer(client):
    message = await client.messages.create(**kwargs(stop_sequences=["never-said", "(model"]))
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "(model"
    assert message.content[0].text.startswith("[synthetic] ")
    assert "(model" not in message.content[0].text


async def test_stream_helper_builds_the_same_message(client):
    created = await client.messages.create(**kwargs())
    async with client.messages.stream(**kwargs()) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) > 3
    assert "".join(pieces) == final.content[0].text == created.content[0].text
    assert final.usage.output_tokens == created.usage.output_tokens
    assert final.usage.input_tokens == created.usage.input_tokens
    assert final.stop_reason == "end_turn"


async def test_create_stream_true_yields_events_in_order(client, server):
    stream = await client.messages.create(**kwargs(max_tokens=6, stop_sequences=["zzz"]), stream=True)
    types = [event.type async for event in stream]
    assert types[:2] == ["message_start", "content_block_start"]
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert server.log[-1].stream is True


async def test_raw_sse_has_event_and_data_lines(server):
    body = kwargs(stream=True, max_tokens=7)
    async with (
        httpx2.AsyncClient() as http,
        http.stream("POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": "k"}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_")
        raw = (await response.aread()).decode()
    blocks = [block.split("\n") for block in raw.strip().split("\n\n")]
    assert all(len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: ") for lines in blocks)
    events = [(lines[0][7:], json.loads(lines[1][6:])) for lines in blocks]
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 7


async def test_count_tokens(client, server):
    counted = await client.messages.count_tokens(**{k: v for k, v in kwargs().items() if k != "max_tokens"})
    created = await client.messages.create(**kwargs())
    assert counted.input_tokens == created.usage.input_tokens
    assert server.log[0].path == "/v1/messages/count_tokens"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": 3}]}, "content"),
        ({"system": [{"type": "image"}]}, "system"),
    ],
)
async def test_bad_body_is_a_400(client, server, overrides, complaint):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**kwargs(**overrides))
    error = caught.value
    assert error.body["error"]["type"] == "invalid_request_error"
    assert complaint in error.body["error"]["message"]
    assert error.body["request_id"] == error.request_id
    assert len(server.log) == 1  # a 400 is not retried


async def test_unparseable_body_is_a_400(server):
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{server.url}/v1/messages", content=b"{", headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_missing_credentials_is_a_401(server):
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{server.url}/v1/messages", json=kwargs())
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"] == response.json()["request_id"]


async def test_bearer_token_is_accepted(server):
    async with strict(server, api_key=None, auth_token="token") as sdk:
        await sdk.messages.create(**kwargs())
    assert server.log[0].headers["authorization"] == "<redacted>"


async def test_required_key_must_match(server):
    server.api_key = "right"
    async with strict(server, api_key="wrong") as sdk:
        with pytest.raises(anthropic.AuthenticationError):
            await sdk.messages.create(**kwargs())
    async with strict(server, api_key="right") as sdk:
        await sdk.messages.create(**kwargs())


async def test_unknown_path_is_a_404(client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.post("/v1/nowhere", cast_to=object, body={})
    assert caught.value.body["error"]["type"] == "not_found_error"


async def test_429_is_retried_after_the_advertised_delay(client, server):
    server.faults.push("429")
    message = await client.messages.create(**kwargs())
    assert message.stop_reason == "end_turn"
    assert [(r.status, r.fault) for r in server.log] == [(429, "429"), (200, None)]


async def test_429_headers(server):
    server.faults.push("429", retry_after_ms=1500)
    async with strict(server, max_retries=0) as sdk:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(**kwargs())
    headers = caught.value.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("1500", "2")
    assert caught.value.body["error"]["type"] == "rate_limit_error"


async def test_529_exhausts_the_retries(client, server):
    for _ in range(3):
        server.faults.push("529", retry_after_ms=1)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(**kwargs())
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(server.log) == 3


async def test_500_and_should_retry_false(client, server):
    server.faults.push("500", should_retry=False)
    with pytest.raises(anthropic.InternalServerError) as caught:
        await client.messages.create(**kwargs())
    assert caught.value.status_code == 500
    assert caught.value.body["error"]["type"] == "api_error"
    assert len(server.log) == 1


async def test_slow_answer_times_out(server):
    server.faults.push("slow", seconds=1.0)
    async with strict(server, max_retries=0, timeout=0.2) as sdk:
        with pytest.raises(anthropic.APITimeoutError):
            await sdk.messages.create(**kwargs())


async def test_drop_is_a_connection_error(server):
    server.faults.push("drop")
    async with strict(server, max_retries=0) as sdk:
        with pytest.raises(anthropic.APIConnectionError):
            await sdk.messages.create(**kwargs())
        assert server.log[0].status is None
        await sdk.messages.create(**kwargs())  # the next call gets a fresh connection


async def test_stream_error_mid_stream(client, server):
    server.faults.push("stream_error", after=1)
    seen = []
    stream = await client.messages.create(**kwargs(), stream=True)

    async def consume():
        async for event in stream:
            seen.append(event.type)

    with pytest.raises(anthropic.APIStatusError) as caught:
        await consume()
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body["error"]["type"] == "overloaded_error"

    server.faults.push("stream_error")
    with pytest.raises(anthropic.APIStatusError):
        async with client.messages.stream(**kwargs()) as helper:
            await helper.get_final_message()


async def test_stream_error_without_stream_is_a_529(server):
    server.faults.push("stream_error")
    async with strict(server, max_retries=0) as sdk:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await sdk.messages.create(**kwargs())
    assert caught.value.status_code == 529


async def test_concurrent_calls_overlap(client, server, until):
    calls = 8
    headers = {"x-simulator-latency": "60"}  # held until all are in flight at once
    sent = asyncio.gather(*(client.messages.create(**kwargs(), extra_headers=headers) for _ in range(calls)))
    await until(lambda: server.in_flight == calls)
    server.wake()
    await sent
    assert server.max_in_flight == calls
    assert server.in_flight == 0


async def test_latency_is_spent_inside_the_request(client, server):
    server.latency = 0.05
    await client.messages.create(**kwargs())
    await client.messages.create(**kwargs(), extra_headers={"x-simulator-latency": "0.1"})
    first, second = server.log
    assert first.finished - first.started >= 0.05
    assert second.finished - second.started >= 0.1


@pytest.mark.parametrize("latency", ["nan", "-1", "inf", "601"])
async def test_a_bad_latency_header_is_a_400(client, server, latency):
    with pytest.raises(anthropic.BadRequestError, match="x-simulator-latency must be from 0 to 600 seconds"):
        await client.messages.create(**kwargs(), extra_headers={"x-simulator-latency": latency})


@pytest.mark.parametrize("latency", [math.nan, -1, math.inf])
def test_a_bad_latency_is_refused_when_set(server, latency):
    with pytest.raises(ValueError, match="latency must be from 0 to 600 seconds"):
        server.latency = latency
    with pytest.raises(ValueError, match="latency must be"):
        LocalServer(latency=latency)


async def test_sequential_calls_reuse_one_connection(client, server):
    for _ in range(4):
        await client.messages.create(**kwargs())
    async with client.messages.stream(**kwargs()) as stream:
        await stream.get_final_message()
    await client.messages.count_tokens(model=MODEL, messages=kwargs()["messages"])
    assert len(server.log) == 6
    assert server.connections == 1


def test_fault_rates_are_seeded():
    def draws(faults: Faults) -> list[str | None]:
        faults.rates = {"500": 0.3, "slow": 0.2}
        return [getattr(faults.take(), "kind", None) for _ in range(200)]

    first = draws(Faults(seed=7))
    assert first == draws(Faults(seed=7))
    assert {"500", "slow", None} == set(first)


def test_fault_queue_is_fifo_and_checked():
    faults = Faults()
    faults.push("429")
    faults.push("drop")
    assert [faults.take().kind, faults.take().kind, faults.take()] == ["429", "drop", None]
    assert set(FAULT_KINDS) == {"429", "529", "500", "slow", "drop", "stream_error"}
    with pytest.raises(ValueError, match="Unknown fault kind"):
        faults.push("418")
    with pytest.raises(ValueError, match="allowed: seconds"):
        faults.push("slow", after=3)
    with pytest.raises(ValueError, match="between 0 and 1"):
        faults.rates = {"500": 2}


async def test_reset_forgets_log_and_faults(client, server):
    server.faults.push("500")
    server.faults.rates = {"500": 1.0}
    await client.messages.count_tokens(model=MODEL, messages=kwargs()["messages"])
    server.reset()
    assert (server.log, len(server.faults), server.faults.rates, server.connections) == ([], 0, {}, 0)
    await client.messages.create(**kwargs())


async def test_reset_cuts_sleeping_requests_short(client, server, until):
    server.latency = 60
    call = asyncio.create_task(client.messages.create(**kwargs()))
    await until(lambda: server.in_flight == 1)
    server.reset()
    message = await asyncio.wait_for(call, 30)  # a hang guard, not a speed check
    assert message.stop_reason == "end_turn"
    assert server.in_flight == 0


def test_log_keeps_the_newest_records():
    with LocalServer(log_limit=2) as local:
        with anthropic.Anthropic(api_key="k", base_url=local.url) as sdk:
            for i in range(6):
                sdk.messages.create(**kwargs(max_tokens=i + 1))
        assert 2 <= len(local.log) <= 4
        assert local.log[-1].body["max_tokens"] == 6


def test_injected_timer_stamps_records():
    ticks = iter(range(100))
    with LocalServer(timer=lambda: float(next(ticks))) as local:
        with anthropic.Anthropic(api_key="k", base_url=local.url, _strict_response_validation=True) as sdk:
            sdk.messages.create(**kwargs())
        assert (local.log[0].started, local.log[0].finished) == (0.0, 1.0)
    with pytest.raises(RuntimeError, match="start"):
        _ = local.url


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_stopped(stop):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "claude_force_nb.simulator", "--port", str(port)]
    # The test's working directory is a temporary one; make the package importable from anywhere.
    source_root = str(Path(claude_force_nb.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (source_root, os.environ.get("PYTHONPATH"))))}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        assert "synthetic" in banner
        with anthropic.Anthropic(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0) as sdk:
            message = sdk.messages.create(**kwargs())
        assert message.content[0].text.startswith("[synthetic]")
    finally:
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr


async def test_an_unknown_model_is_a_404_as_the_api_gives_it(client, server):
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.create(**kwargs(model="gpt-4o"))
    assert caught.value.body["error"] == {"type": "not_found_error", "message": "model: gpt-4o"}


@pytest.mark.parametrize("sampling", [{"temperature": 1.5}, {"top_p": -0.1}, {"top_k": -1}])
async def test_sampling_parameters_out_of_range_are_a_400(client, server, sampling):
    with pytest.raises(anthropic.BadRequestError, match="Input should be"):
        await client.messages.create(**kwargs(), extra_body=sampling)


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-sonnet-5", "claude-opus-4-7", "claude-mythos-preview"])
@pytest.mark.parametrize("name", ["temperature", "top_p", "top_k"])
async def test_the_newest_models_refuse_sampling_parameters_as_the_api_does(client, server, model, name):
    with pytest.raises(anthropic.BadRequestError, match=f"`{name}` is deprecated for this model"):
        await client.messages.create(**kwargs(model=model), extra_body={name: 0})
    assert (await client.messages.create(**kwargs(model=model))).model == model


async def test_older_models_take_temperature_or_top_p_not_both(client, server):
    for one in ({"temperature": 0.2}, {"top_p": 0.9}, {"temperature": 0.2, "top_k": 5}):
        await client.messages.create(**kwargs(model="claude-sonnet-4-6"), extra_body=one)
    with pytest.raises(anthropic.BadRequestError, match="cannot both be specified"):
        await client.messages.create(**kwargs(model="claude-sonnet-4-6"), extra_body={"temperature": 0.2, "top_p": 0.9})


async def answer(client, stream, **overrides):
    if not stream:
        return await client.messages.create(**kwargs(**overrides))
    async with client.messages.stream(**kwargs(**overrides)) as events:
        return await events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("stop_reason", "blocks"),
    [
        ("max_tokens", ["text"]),
        ("refusal", []),
        ("tool_use", ["text", "tool_use"]),
        ("pause_turn", ["text"]),
        ("stop_sequence", ["text"]),
        ("model_context_window_exceeded", ["text"]),
    ],
)
async def test_a_test_can_ask_for_each_stop_reason(client, server, stream, stop_reason, blocks):
    server.shape_next(stop_reason=stop_reason)
    message = await answer(client, stream, stop_sequences=["###"])
    assert message.stop_reason == stop_reason
    assert [block.type for block in message.content] == blocks
    assert message.stop_sequence == ("###" if stop_reason == "stop_sequence" else None)
    assert message.usage.output_tokens >= 1
    if stop_reason == "refusal":
        assert message.usage.output_tokens == 1
    plain = await answer(client, stream)
    assert plain.stop_reason == "end_turn"  # one request only


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_thinking_comes_first_when_the_request_enables_it(client, server, stream):
    message = await answer(client, stream, thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048)
    first, second = message.content
    assert first.type == "thinking" and first.thinking.startswith("[synthetic thinking]") and first.signature
    assert second.type == "text"
    server.shape_next(thinking="redacted")
    redacted = await answer(client, stream)
    assert [block.type for block in redacted.content] == ["redacted_thinking", "text"]
    assert redacted.content[0].data.startswith("synthetic-redacted-")


def test_a_shape_is_checked():
    with pytest.raises(ValueError, match="Unknown stop reason"):
        LocalServer().shape_next(stop_reason="bored")
