"""Prompt caching on the local server: breakpoints, minimums, TTLs and usage, through the real SDK."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from claude_force_nb._models import KNOWN_MODELS
from claude_force_nb.simulator import MINIMUM_CACHEABLE, LocalServer, RateLimits

MODEL = "claude-sonnet-4-6"  # caches prefixes of 1,024 tokens and more
MINUTES = 60.0
# About four characters a token: 1,500 tokens, enough to cache on MODEL.
MANUAL = "Handle every request politely and cite the policy section. " * 100
EPHEMERAL = {"type": "ephemeral"}


def tokens(text: str) -> int:
    return len(text) // 4


def request(question: str = "How do I reset my password?", *, manual: str = MANUAL, mark=EPHEMERAL, **overrides):
    block = {"type": "text", "text": manual} | ({"cache_control": mark} if mark else {})
    base = {
        "model": MODEL,
        "max_tokens": 256,
        "system": [block],
        "messages": [{"role": "user", "content": question}],
    }
    return base | overrides


def cached(usage) -> tuple[int, int, int]:
    return usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens


@pytest.fixture
def local(clock):
    """A server on a fake clock, so TTLs pass when the test ticks."""
    with LocalServer(timer=clock) as server:
        yield server


@pytest.fixture
def sdk(local):
    with anthropic.Anthropic(api_key="test-key", base_url=local.url, _strict_response_validation=True) as client:
        yield client


def count(sdk, body) -> int:
    return sdk.messages.count_tokens(**{k: v for k, v in body.items() if k != "max_tokens"}).input_tokens


def test_the_first_call_writes_and_the_next_reads(sdk):
    first = sdk.messages.create(**request())
    question = tokens("How do I reset my password?")
    assert cached(first.usage) == (question, tokens(MANUAL), 0)
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == tokens(MANUAL)
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0
    second = sdk.messages.create(**request("Where is my invoice?"))
    assert cached(second.usage) == (tokens("Where is my invoice?"), 0, tokens(MANUAL))
    assert second.usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_cache_control_changes_the_usage_never_the_text(sdk):
    marked = sdk.messages.create(**request())
    plain = sdk.messages.create(**request(mark=None))
    assert marked.content == plain.content
    assert cached(plain.usage) == (count(sdk, request()), 0, 0)
    assert count(sdk, request()) == count(sdk, request(mark=None))


def test_usage_adds_up_to_count_tokens(sdk):
    tools = [
        {
            "name": f"tool_{i}",
            "description": "Look up one record in the ledger. " * 60,
            "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
        }
        for i in range(3)
    ]
    tools[-1]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    body = request(tools=tools)
    body["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": "First question. " * 40, "cache_control": EPHEMERAL}]},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "And the follow-up?"},
    ]
    total = count(sdk, body)
    for _ in range(2):  # written, then read
        usage = sdk.messages.create(**body).usage
        assert usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens == total
    assert usage.cache_read_input_tokens > 0 and usage.cache_creation_input_tokens == 0
    first = sdk.messages.create(**(body | {"model": "claude-opus-4-8"})).usage
    split = first.cache_creation
    assert split.ephemeral_1h_input_tokens > 0 and split.ephemeral_5m_input_tokens > 0
    assert split.ephemeral_1h_input_tokens + split.ephemeral_5m_input_tokens == first.cache_creation_input_tokens


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-5", "claude-haiku-4-5", "claude-opus-4-7"])
def test_a_prefix_below_the_minimum_is_not_cached(sdk, model):
    minimum = MINIMUM_CACHEABLE[model]
    short = "x" * (4 * minimum - 1)
    for _ in range(2):
        usage = sdk.messages.create(**request(manual=short, model=model)).usage
        assert cached(usage)[1:] == (0, 0)
    enough = "y" * (4 * minimum)
    assert sdk.messages.create(**request(manual=enough, model=model)).usage.cache_creation_input_tokens == minimum


def test_every_known_model_has_a_minimum():
    assert set(KNOWN_MODELS) <= set(MINIMUM_CACHEABLE)
    assert set(MINIMUM_CACHEABLE.values()) <= {512, 1024, 2048, 4096}


def test_a_prefix_lives_for_its_ttl_and_each_read_refreshes_it(sdk, clock):
    sdk.messages.create(**request())
    clock.tick(5 * MINUTES - 1)
    assert sdk.messages.create(**request()).usage.cache_read_input_tokens == tokens(MANUAL)
    clock.tick(5 * MINUTES - 1)  # the read above started the five minutes again
    assert sdk.messages.create(**request()).usage.cache_read_input_tokens == tokens(MANUAL)
    clock.tick(5 * MINUTES)
    assert cached(sdk.messages.create(**request()).usage)[1:] == (tokens(MANUAL), 0)


def test_an_hour_ttl(sdk, clock):
    hour = {"type": "ephemeral", "ttl": "1h"}
    first = sdk.messages.create(**request(mark=hour)).usage
    assert first.cache_creation.ephemeral_1h_input_tokens == tokens(MANUAL)
    clock.tick(59 * MINUTES)
    assert sdk.messages.create(**request(mark=hour)).usage.cache_read_input_tokens == tokens(MANUAL)
    clock.tick(61 * MINUTES)
    assert sdk.messages.create(**request(mark=hour)).usage.cache_read_input_tokens == 0


def test_another_prefix_or_model_is_a_write(sdk):
    sdk.messages.create(**request())
    edited = sdk.messages.create(**request(manual=MANUAL.replace("politely", "properly", 1))).usage
    assert cached(edited)[1:] == (tokens(MANUAL), 0)
    other_model = sdk.messages.create(**request(model="claude-opus-4-8")).usage
    assert cached(other_model)[1:] == (tokens(MANUAL), 0)


def test_a_breakpoint_reads_what_an_earlier_turn_wrote(sdk):
    turn = [{"role": "user", "content": [{"type": "text", "text": "Read this. " * 500, "cache_control": EPHEMERAL}]}]
    first = sdk.messages.create(**request(mark=None, messages=turn)).usage
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Read this. " * 500}]},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": [{"type": "text", "text": "Now this. " * 40, "cache_control": EPHEMERAL}]},
    ]
    second = sdk.messages.create(**request(mark=None, messages=history)).usage
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == count(sdk, request(mark=None, messages=history)) - (
        first.cache_creation_input_tokens
    )


def test_top_level_cache_control_marks_the_last_block(sdk):
    body = request(mark=None, messages=[{"role": "user", "content": "Question? " * 200}])
    first = sdk.messages.create(**body, cache_control=EPHEMERAL).usage
    assert first.cache_creation_input_tokens == count(sdk, body) and first.input_tokens == 0
    assert sdk.messages.create(**body, cache_control=EPHEMERAL).usage.cache_read_input_tokens == count(sdk, body)


def test_five_breakpoints_are_a_400(sdk, local):
    system = [{"type": "text", "text": f"Part {i}.", "cache_control": EPHEMERAL} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(**request(system=system))
    error = caught.value.body["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks"):
        sdk.messages.count_tokens(model=MODEL, system=system, messages=[{"role": "user", "content": "hi"}])
    assert sdk.messages.create(**request(system=system[:4])).stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("system", "complaint"),
    [
        ([{"type": "text", "text": "a", "cache_control": {"type": "persistent"}}], "ephemeral"),
        ([{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}], "ttl"),
        (
            [
                {"type": "text", "text": "a", "cache_control": EPHEMERAL},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
            "must come before",
        ),
    ],
    ids=["type", "ttl", "ttl-order"],
)
def test_a_bad_mark_is_a_400(sdk, system, complaint):
    with pytest.raises(anthropic.BadRequestError, match=complaint):
        sdk.messages.create(**request(system=system))


def test_streaming_reports_cache_usage_at_message_start(sdk, local):
    sdk.messages.create(**request())
    with sdk.messages.stream(**request()) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = events[0]
    assert start.type == "message_start"
    assert cached(start.message.usage)[1:] == (0, tokens(MANUAL))
    assert cached(final.usage) == cached(sdk.messages.create(**request()).usage)
    body = request() | {"stream": True}
    raw = httpx2.post(f"{local.url}/v1/messages", json=body, headers={"x-api-key": "k"}).text
    delta = next(line for line in raw.splitlines() if line.startswith("data:") and "message_delta" in line)
    assert f'"cache_read_input_tokens":{tokens(MANUAL)}' in delta


def test_a_failed_request_writes_nothing(sdk, local):
    local.faults.push("500", should_retry=False)
    with pytest.raises(anthropic.InternalServerError):
        sdk.messages.create(**request())
    assert sdk.messages.create(**request()).usage.cache_creation_input_tokens == tokens(MANUAL)


def test_cache_reads_do_not_count_towards_input_tokens_per_minute(sdk, local):
    sdk.messages.create(**request())
    local.rate_limits = RateLimits(input_tokens=10_000)
    raw = sdk.messages.with_raw_response.create(**request())
    usage = raw.parse().usage
    assert usage.cache_read_input_tokens == tokens(MANUAL)
    remaining = int(raw.headers["anthropic-ratelimit-input-tokens-remaining"])
    assert remaining == 10_000 - usage.input_tokens


def test_reset_forgets_cached_prefixes(sdk, local):
    sdk.messages.create(**request())
    local.reset()
    assert sdk.messages.create(**request()).usage.cache_creation_input_tokens == tokens(MANUAL)


def test_batch_results_report_cache_usage(sdk, clock):
    questions = ["One?", "Two?", "Three?"]
    batch = sdk.messages.batches.create(
        requests=[{"custom_id": f"q{i}", "params": request(q)} for i, q in enumerate(questions)]
    )
    clock.tick(60)
    usages = [line.result.message.usage for line in sdk.messages.batches.results(batch.id)]
    assert [cached(usage)[1:] for usage in usages] == [(tokens(MANUAL), 0), (0, tokens(MANUAL)), (0, tokens(MANUAL))]
    assert {usage.service_tier for usage in usages} == {"batch"}
