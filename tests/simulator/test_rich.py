"""The local server with a notebook's richer requests: images, documents, JSON schemas, tools, thinking, effort.

Everything goes through the real SDK with strict response validation.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import struct
import zlib
from typing import Literal

import anthropic
import jsonschema
import pydantic
import pytest
from anthropic import beta_async_tool
from anthropic.lib.tools import ToolError

from claude_force_nb.simulator import LocalServer

MODEL = "claude-sonnet-4-6"
TASK = "Describe what these files show."


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(width: int, height: int, sof: int = 0xC0) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    tables = b"\xff\xdb" + struct.pack(">H", 67) + bytes(65)
    frame = bytes([0xFF, sof]) + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + app0 + tables + frame + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def webp(width: int, height: int, kind: str = "VP8L") -> bytes:
    if kind == "VP8L":  # lossless
        data = b"\x2f" + struct.pack("<I", (width - 1) | (height - 1) << 14)
    elif kind == "VP8 ":  # lossy: a key frame
        data = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
    else:  # VP8X, extended
        data = b"\x00" + bytes(3) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = kind.encode() + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def pdf(pages: int) -> bytes:
    objects = [
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
        b"2 0 obj << /Type /Pages /Count %d >> endobj" % pages,
    ]
    objects += [b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj" % (i + 3) for i in range(pages)]
    return b"%PDF-1.4\n" + b"\n".join(objects) + b"\n%%EOF\n"


def image(data: bytes, media_type: str = "image/png") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": b64(data)}}


def document(data: bytes, **extra) -> dict:
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": b64(data)},
    } | extra


def asking(*blocks: dict, text: str = TASK) -> list[dict]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": text}]}]


async def create(client, stream: bool = False, **params):
    params = {"model": MODEL, "max_tokens": 512, "messages": asking()} | params
    if not stream:
        return await client.messages.create(**params)
    async with client.messages.stream(**params) as events:
        return await events.get_final_message()


def provenance(message) -> str:
    return message.content[-1].text.splitlines()[-1]


# Images and documents


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_an_image_is_accepted_described_and_counted(client, stream):
    message = await create(client, stream, messages=asking(image(png(640, 480))))
    assert message.content[-1].text.startswith("[synthetic] ")
    assert "received 1 image 640\u00d7480 png" in provenance(message)
    plain = await client.messages.count_tokens(model=MODEL, messages=asking())
    counted = await client.messages.count_tokens(model=MODEL, messages=asking(image(png(640, 480))))
    assert counted.input_tokens - plain.input_tokens == 410  # 640 × 480 / 750, rounded up
    assert message.usage.input_tokens == counted.input_tokens


@pytest.mark.parametrize(
    ("data", "media_type", "described"),
    [
        (png(7, 3), "image/png", "7\u00d73 png"),
        (jpeg(300, 200), "image/jpeg", "300\u00d7200 jpeg"),
        (jpeg(1024, 768, sof=0xC2), "image/jpeg", "1024\u00d7768 jpeg"),
        (gif(20, 10), "image/gif", "20\u00d710 gif"),
        (webp(64, 48), "image/webp", "64\u00d748 webp"),
        (webp(640, 360, "VP8 "), "image/webp", "640\u00d7360 webp"),
        (webp(5000, 4000, "VP8X"), "image/webp", "5000\u00d74000 webp"),
    ],
    ids=["png", "jpeg", "progressive-jpeg", "gif", "webp-lossless", "webp-lossy", "webp-extended"],
)
async def test_each_image_type_is_sized_from_its_header(client, data, media_type, described):
    message = await create(client, messages=asking(image(data, media_type)))
    assert f"received 1 image {described}" in provenance(message)


async def test_several_images_and_one_by_url(client):
    blocks = [image(png(32, 16)), image(jpeg(300, 200), "image/jpeg"), image(gif(20, 10), "image/gif")]
    blocks += [
        image(webp(64, 48), "image/webp"),
        {"type": "image", "source": {"type": "url", "url": "https://e.x/a.png"}},
    ]
    message = await create(client, messages=asking(*blocks))
    assert (
        "received 4 images (32\u00d716 png, 300\u00d7200 jpeg, 20\u00d710 gif, \u2026), 1 image by URL"
        in provenance(message)
    )


async def test_a_large_image_costs_no_more_than_the_cap(client):
    small = await client.messages.count_tokens(model=MODEL, messages=asking(image(png(1000, 1000))))
    large = await client.messages.count_tokens(model=MODEL, messages=asking(image(png(4000, 3000))))
    plain = await client.messages.count_tokens(model=MODEL, messages=asking())
    assert small.input_tokens - plain.input_tokens == 1334
    assert large.input_tokens - plain.input_tokens == 1600  # scaled down to fit the model's limits
    newer = await client.messages.count_tokens(model="claude-opus-4-7", messages=asking(image(png(4000, 3000))))
    newer_plain = await client.messages.count_tokens(model="claude-opus-4-7", messages=asking())
    assert newer.input_tokens - newer_plain.input_tokens == 4784  # a model that reads images at higher resolution


async def test_documents_pdf_text_and_content(client):
    blocks = [
        document(pdf(3), title="Quarterly report", context="Finance", citations={"enabled": True}),
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "A chunk."}]}},
        {"type": "document", "source": {"type": "url", "url": "https://e.x/paper.pdf"}},
    ]
    message = await create(client, messages=asking(*blocks))
    assert "received 1 PDF of 3 pages, 1 PDF by URL, 1 text document, 1 content document" in provenance(message)
    plain = await client.messages.count_tokens(model=MODEL, messages=asking())
    one = await client.messages.count_tokens(model=MODEL, messages=asking(document(pdf(1))))
    three = await client.messages.count_tokens(model=MODEL, messages=asking(document(pdf(3))))
    assert three.input_tokens - plain.input_tokens == 3 * (one.input_tokens - plain.input_tokens) > 0


async def test_attachments_in_tool_results_are_checked_and_counted(client):
    messages = [
        {"role": "user", "content": "Take a screenshot."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [image(gif(8, 8), "image/gif")]}],
        },
    ]
    tools = [{"name": "shot", "input_schema": {"type": "object"}}]
    message = await create(client, messages=messages, tools=tools)
    assert "received 1 image 8\u00d78 gif" in provenance(message)
    messages[2]["content"][0]["content"] = [image(gif(8, 8), "image/png")]
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.2\.content\.0\.content\.0\.image"):
        await create(client, messages=messages, tools=tools)


many_large = [image(png(2100, 4)) for _ in range(21)]


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        (
            {**image(b""), "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"}},
            "valid base64",
        ),
        (
            image(gif(4, 4), "image/png"),
            "specified using the image/png media type, but the image appears to be a image/gif",
        ),
        (image(b"\x89PNG but not really" + bytes(40)), "Could not process image"),
        (image(b"BM" + bytes(60), "image/png"), "Could not process image"),
        (image(png(4, 4), "image/bmp"), "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
        (image(png(9000, 2)), "exceed max allowed size: 8000 pixels"),
        (image(bytes(4 * 1024 * 1024)), "image exceeds 5 MB maximum"),
        ({"type": "image", "source": {"type": "file", "file_id": "file_1"}}, "Files API"),
        (document(b"Not a PDF at all"), "The PDF specified was not valid"),
        (document(pdf(101)), "A maximum of 100 PDF pages may be provided"),
        ({**document(pdf(1)), "source": {"type": "base64", "media_type": "text/plain", "data": ""}}, "application/pdf"),
        ({"type": "document", "source": {"type": "text", "media_type": "text/csv", "data": "a,b"}}, "text/plain"),
    ],
    ids=[
        "bad-base64",
        "wrong-media-type",
        "not-really-png",
        "unknown-format",
        "unsupported-media-type",
        "too-wide",
        "over-5-mb",
        "file-source",
        "not-a-pdf",
        "too-many-pages",
        "pdf-media-type",
        "text-media-type",
    ],
)
async def test_a_bad_attachment_is_a_400(client, block, complaint):
    with pytest.raises(anthropic.BadRequestError, match=complaint) as caught:
        await create(client, messages=asking(block))
    assert caught.value.body["error"]["type"] == "invalid_request_error"


async def test_request_wide_image_limits(client):
    with pytest.raises(anthropic.BadRequestError, match="at most 100"):
        await create(client, messages=asking(*[image(gif(1, 1), "image/gif") for _ in range(101)]))
    with pytest.raises(anthropic.BadRequestError, match="many-image requests: 2000 pixels"):
        await create(client, messages=asking(*many_large))
    assert await create(client, messages=asking(*many_large[:20]))  # at most 20 images may be that large


async def test_pages_count_across_every_pdf_of_a_request(client):
    with pytest.raises(anthropic.BadRequestError, match="Found 120"):
        await create(client, messages=asking(document(pdf(60)), document(pdf(60))))


def test_a_body_over_32_mb_is_read_then_refused_with_413(server, send_oversize):
    reply, connection = send_oversize(server.port, "/v1/messages", 32 * 1024 * 1024 + 1)
    assert reply.startswith("HTTP/1.1 413 ")
    assert '"type":"request_too_large"' in reply and "33,554,432" in reply
    assert connection != "close"  # the body was read: the connection can carry the next request


async def test_the_sdk_sees_the_413_of_a_body_over_32_mb_and_does_not_retry_it(client, server):
    with pytest.raises(anthropic.APIStatusError) as caught:
        await create(client, messages=[{"role": "user", "content": "x" * (32 * 1024 * 1024)}])
    assert caught.value.status_code == 413
    assert [r.status for r in server.log] == [413]


# Structured outputs


class Severity(str, enum.Enum):
    LOW = "low"
    HIGH = "high"


class Finding(pydantic.BaseModel):
    line: int
    severity: Severity
    note: str | None = None


class Review(pydantic.BaseModel):
    title: str
    verdict: Literal["approve", "revise"]
    findings: list[Finding]
    reviewed_at: datetime.datetime
    score: float


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_parse_returns_the_model(client, server, stream):
    params = {"model": MODEL, "max_tokens": 1024, "messages": asking(text="Review fetch()."), "output_format": Review}
    if stream:
        async with client.messages.stream(**params) as events:
            message = await events.get_final_message()
    else:
        message = await client.messages.parse(**params)
    review = message.parsed_output
    assert isinstance(review, Review)
    assert "Review fetch()" in review.title
    assert review.verdict in ("approve", "revise")
    assert len(review.findings) == 2 and all(isinstance(f.severity, Severity) for f in review.findings)
    [text] = message.content
    schema = server.log[-1].body["output_config"]["format"]["schema"]
    jsonschema.validate(json.loads(text.text), schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    again = await client.messages.parse(**(params | {"output_format": Review}))
    assert again.content[0].text == text.text  # the same request, the same JSON


NESTED = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "owner": {"$ref": "#/$defs/person"},
        "team": {"type": "array", "items": {"$ref": "#/$defs/person"}, "minItems": 1},
        "status": {"enum": ["open", "closed", 3, None]},
        "kind": {"const": "ticket"},
        "due": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "urgent": {"type": "boolean"},
        "contact": {"type": "string", "format": "email"},
        "link": {"type": ["string", "null"], "format": "uri"},
        "labels": {"allOf": [{"type": "array", "items": {"type": "string"}}]},
    },
    "required": ["id", "owner", "team", "status", "kind"],
    "additionalProperties": False,
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        }
    },
}


async def test_a_nested_schema_is_followed(client):
    format_ = {"format": {"type": "json_schema", "schema": NESTED}}
    message = await create(client, output_config=format_, messages=asking(text="File a ticket."))
    assert message.stop_reason == "end_turn"
    value = json.loads(message.content[0].text)
    jsonschema.validate(value, NESTED, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert value["kind"] == "ticket" and len(value["team"]) == 2 and "File a ticket." in value["owner"]["name"]
    other = await create(client, output_config=format_, messages=asking(text="Close the ticket."))
    assert json.loads(other.content[0].text) != value


async def test_the_older_output_format_parameter_still_works(client):
    legacy = {"output_format": {"type": "json_schema", "schema": NESTED}}
    message = await create(client, extra_body=legacy)
    jsonschema.validate(json.loads(message.content[0].text), NESTED)
    both = legacy | {"output_config": {"format": legacy["output_format"]}}
    with pytest.raises(anthropic.BadRequestError, match=r"Both output_format and output_config\.format"):
        await create(client, extra_body=both)


def unsupported(**change) -> dict:
    return json.loads(json.dumps(NESTED)) | change


@pytest.mark.parametrize(
    ("schema", "complaint"),
    [
        (unsupported(additionalProperties=True), "'additionalProperties' must be explicitly set to false"),
        ({"type": "array", "items": {"type": "string"}}, "root of the schema must be an object"),
        (unsupported(properties={"n": {"type": "integer", "minimum": 1}}), "'minimum' is not supported"),
        (unsupported(properties={"s": {"type": "string", "maxLength": 9}}), "'maxLength' is not supported"),
        (unsupported(properties={"a": {"type": "array", "minItems": 3}}), "'minItems' is supported only"),
        (unsupported(properties={"s": {"type": "string", "format": "credit-card"}}), "'credit-card' is not supported"),
        (unsupported(properties={"x": {"type": "tuple"}}), "'tuple' is not a supported type"),
        (unsupported(properties={"x": {"$ref": "https://e.x/schema.json"}}), "External references"),
        (unsupported(properties={"x": {"$ref": "#/$defs/missing"}}), "does not resolve"),
        (unsupported(properties={"x": {"enum": [{"a": 1}]}}), "enum"),
        (
            {
                "type": "object",
                "properties": {"node": {"$ref": "#/$defs/node"}},
                "additionalProperties": False,
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {"next": {"$ref": "#/$defs/node"}},
                        "additionalProperties": False,
                    }
                },
            },
            "Recursive schemas are not supported",
        ),
    ],
    ids=[
        "open-object",
        "array-root",
        "minimum",
        "max-length",
        "min-items",
        "format",
        "type",
        "external-ref",
        "dangling-ref",
        "complex-enum",
        "recursive",
    ],
)
async def test_an_unsupported_schema_is_a_400(client, schema, complaint):
    with pytest.raises(anthropic.BadRequestError, match=complaint):
        await create(client, output_config={"format": {"type": "json_schema", "schema": schema}})


async def test_a_test_can_ask_for_json_that_does_not_validate(client, server):
    server.shape_next(invalid_json=True)
    with pytest.raises(pydantic.ValidationError):
        await client.messages.parse(model=MODEL, max_tokens=1024, messages=asking(), output_format=Review)
    parsed = await client.messages.parse(model=MODEL, max_tokens=1024, messages=asking(), output_format=Review)
    assert isinstance(parsed.parsed_output, Review)  # one answer only


@pytest.mark.parametrize("effort", ["low", "medium", "high", "max"])
async def test_effort_is_accepted_and_changes_nothing(client, effort):
    plain = await create(client)
    message = await create(client, output_config={"effort": effort})
    assert message.content == plain.content


@pytest.mark.parametrize(
    ("model", "effort", "complaint"),
    [
        (MODEL, "xhigh", "'xhigh' is not supported by this model"),
        ("claude-opus-4-6", "xhigh", "'xhigh' is not supported by this model"),
        ("claude-haiku-4-5", "low", "does not support the effort parameter"),
        (MODEL, "extreme", "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"),
    ],
)
async def test_effort_the_model_does_not_offer_is_a_400(client, model, effort, complaint):
    with pytest.raises(anthropic.BadRequestError, match=complaint):
        await create(client, model=model, output_config={"effort": effort})


async def test_xhigh_effort_on_a_model_that_offers_it(client):
    message = await create(client, model="claude-opus-4-7", output_config={"effort": "xhigh"})
    assert message.stop_reason == "end_turn"


# Tools


WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"enum": ["c", "f"]},
        },
        "required": ["city"],
    },
}
CLOCK = {"name": "get_time", "description": "The time in a timezone.", "input_schema": {"type": "object"}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_tool_call_then_the_final_answer(client, stream):
    first = await create(client, stream, tools=[CLOCK, WEATHER], messages=asking(text="Will it rain in Oslo, weather?"))
    assert first.stop_reason == "tool_use"
    preamble, call = first.content
    assert preamble.text.startswith("[synthetic] ") and call.name == "get_weather"  # the most relevant tool
    assert call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER["input_schema"])
    history = [
        *asking(text="Will it rain in Oslo, weather?"),
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Light rain, 9 C"}]},
    ]
    final = await create(client, stream, tools=[CLOCK, WEATHER], messages=history)
    assert final.stop_reason == "end_turn"
    assert 'get_weather returned "Light rain, 9 C"' in final.content[0].text
    again = await create(client, stream, tools=[CLOCK, WEATHER], messages=asking(text="Will it rain in Oslo, weather?"))
    assert again.content[1].id == call.id and again.content[1].input == call.input


async def test_tool_choice(client):
    named = await create(client, tools=[WEATHER, CLOCK], tool_choice={"type": "tool", "name": "get_time"})
    assert [b.type for b in named.content] == ["tool_use"] and named.content[0].name == "get_time"
    anyone = await create(client, tools=[WEATHER, CLOCK], tool_choice={"type": "any"})
    assert [b.type for b in anyone.content] == ["tool_use"]
    none = await create(client, tools=[WEATHER, CLOCK], tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn" and [b.type for b in none.content] == ["text"]


async def test_a_test_can_ask_for_tool_input_that_does_not_validate(client, server):
    server.shape_next(invalid_json=True)
    message = await create(client, tools=[WEATHER])
    assert message.content[1].input.keys() == {"days", "unit"}  # the required city is missing


async def test_a_tool_call_with_a_schema_for_the_answer_has_no_preamble(client):
    format_ = {"format": {"type": "json_schema", "schema": NESTED}}
    message = await create(client, tools=[WEATHER], output_config=format_)
    assert [b.type for b in message.content] == ["tool_use"]


async def test_max_tokens_cuts_the_call(client):
    message = await create(client, tools=[WEATHER], max_tokens=3)
    assert message.stop_reason == "max_tokens" and [b.type for b in message.content] == ["text"]


def exchange(*answered: str) -> list[dict]:
    results = [{"type": "tool_result", "tool_use_id": tool_use_id, "content": "ok"} for tool_use_id in answered]
    return [
        {"role": "user", "content": "Check the weather."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [*results, {"type": "text", "text": "And then?"}]},
    ]


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"messages": exchange()}, "`tool_use` ids were found without `tool_result` blocks"),
        ({"messages": exchange("toolu_1", "toolu_9")}, "unexpected `tool_use_id` found in `tool_result` blocks"),
        ({"messages": exchange("toolu_1"), "tools": None}, "must define tools"),
        ({"tool_choice": {"type": "auto"}, "tools": None}, "tool_choice may only be specified while providing tools"),
        ({"tool_choice": {"type": "tool", "name": "nope"}}, "Tool 'nope' not found"),
        ({"tools": [WEATHER, WEATHER]}, "Tool names must be unique"),
        ({"tools": [WEATHER | {"name": "get weather!"}]}, "String should match pattern"),
        ({"tools": [WEATHER | {"input_schema": {"type": "array"}}]}, "input_schema.type: Input should be 'object'"),
        ({"tools": [WEATHER | {"strict": True}]}, "additionalProperties"),
    ],
    ids=[
        "unanswered",
        "stray",
        "no-tools",
        "choice-without-tools",
        "unknown-choice",
        "twice",
        "name",
        "schema",
        "strict",
    ],
)
async def test_a_bad_tool_request_is_a_400(client, params, complaint):
    params = {"tools": [WEATHER]} | params
    if params["tools"] is None:
        del params["tools"]
    with pytest.raises(anthropic.BadRequestError, match=complaint):
        await create(client, **params)


@beta_async_tool
async def forecast(city: str, days: int = 1) -> str:
    """The weather forecast for a city.

    Args:
        city: the city
        days: how many days ahead
    """
    return f"Sunny in {city} for {days} day(s)"


@beta_async_tool
async def broken_gauge(city: str) -> str:
    """Read the rain gauge of a city.

    Args:
        city: the city
    """
    raise ToolError("the gauge is offline")


async def test_the_tool_runner_end_to_end(client, server):
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=512, tools=[forecast], messages=[{"role": "user", "content": "Forecast for Lyon?"}]
    )
    replies = [message async for message in runner]
    assert [r.stop_reason for r in replies] == ["tool_use", "end_turn"]
    assert 'forecast returned "Sunny in city for' in replies[-1].content[0].text
    first, second = server.log
    assert first.body["thread"] == {"type": "create"}
    # The runner holds the conversation on the server: the second turn sends only the tool result.
    assert second.body["thread"]["type"] == "continue" and "tools" not in second.body
    assert [m["content"][0]["type"] for m in second.body["messages"]] == ["tool_result"]


async def test_the_streaming_tool_runner(client):
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=512, tools=[forecast], stream=True, messages=asking(text="Forecast for Lyon?")
    )
    finals = [await stream.get_final_message() async for stream in runner]
    assert [m.stop_reason for m in finals] == ["tool_use", "end_turn"]
    assert "forecast returned" in finals[-1].content[0].text


async def test_a_failing_tool_is_reported(client):
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=512, tools=[broken_gauge], messages=asking(text="Rain in Bergen?")
    )
    final = await runner.until_done()
    assert 'broken_gauge failed with "the gauge is offline"' in final.content[0].text


async def test_a_tool_loop_longer_than_the_runner_allows(client, server, monkeypatch):
    monkeypatch.setattr(server, "tool_turns", 10)
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=512, tools=[forecast], max_iterations=3, messages=asking(text="Forecast?")
    )
    replies = [message async for message in runner]
    assert [r.stop_reason for r in replies] == ["tool_use"] * 3
    assert len({r.content[-1].id for r in replies}) == 3  # a new call each round
    monkeypatch.setattr(server, "tool_turns", 2)
    final = await client.beta.messages.tool_runner(
        model=MODEL, max_tokens=512, tools=[forecast], messages=asking(text="Forecast?")
    ).until_done()
    assert final.content[0].text.count("forecast returned") == 2


async def test_a_lost_thread_is_sent_again_whole(client, server):
    def run():
        return client.beta.messages.tool_runner(
            model=MODEL, max_tokens=512, tools=[forecast], messages=asking(text="Forecast for Lyon?")
        )

    held = await run().until_done()
    server.reset()
    async for message in run():
        if message.stop_reason == "tool_use":
            server.state.threads.clear()  # as when a thread expires
    statuses = [(r.status, (r.body.get("thread") or {}).get("type")) for r in server.log]
    assert statuses == [(200, "create"), (404, "continue"), (200, "create")]
    assert message.content == held.content  # the whole conversation sent again gets the same answer


async def test_threads_need_the_beta_header_and_leave_out_system_and_tools(client):
    first = await client.beta.messages.create(
        model=MODEL, max_tokens=256, messages=asking(), thread={"type": "create"}, betas=["message-threads-2026-08-12"]
    )
    follow_up = [{"role": "user", "content": "And the second file?"}]
    continued = {"type": "continue", "previous_message_id": first.id}
    second = await client.beta.messages.create(
        model=MODEL, max_tokens=256, messages=follow_up, thread=continued, betas=["message-threads-2026-08-12"]
    )
    whole = await create(client, messages=[*asking(), {"role": "assistant", "content": first.content}, *follow_up])
    assert second.content[0].text == whole.content[0].text and "turn 2" in provenance(second)
    with pytest.raises(anthropic.BadRequestError, match="beta header"):
        await client.beta.messages.create(model=MODEL, max_tokens=256, messages=follow_up, thread=continued)
    with pytest.raises(anthropic.BadRequestError, match="`system` cannot be sent on a continue"):
        await client.beta.messages.create(
            model=MODEL,
            max_tokens=256,
            system="Be brief.",
            messages=follow_up,
            thread=continued,
            betas=["message-threads-2026-08-12"],
        )
    with pytest.raises(anthropic.NotFoundError) as lost:
        await client.beta.messages.create(
            model=MODEL,
            max_tokens=256,
            messages=follow_up,
            thread={"type": "continue", "previous_message_id": "msg_unknown"},
            betas=["message-threads-2026-08-12"],
        )
    assert lost.value.body["error"]["details"] == {"error_code": "thread_not_found"}


def test_a_thread_expires_five_minutes_after_its_last_turn(clock):
    with LocalServer(timer=clock) as local, anthropic.Anthropic(api_key="k", base_url=local.url) as sdk:
        betas = ["message-threads-2026-08-12"]
        reply = sdk.beta.messages.create(
            model=MODEL, max_tokens=64, messages=asking(), thread={"type": "create"}, betas=betas
        )
        clock.tick(299)
        turn = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "More."}], "betas": betas}
        reply = sdk.beta.messages.create(**turn, thread={"type": "continue", "previous_message_id": reply.id})
        clock.tick(300)
        with pytest.raises(anthropic.NotFoundError):
            sdk.beta.messages.create(**turn, thread={"type": "continue", "previous_message_id": reply.id})


async def test_rich_requests_in_a_batch(client, server, monkeypatch):
    monkeypatch.setattr(server, "batch_seconds", 0.0)
    base = {"model": MODEL, "max_tokens": 512}
    requests = {
        "image": base | {"messages": asking(image(png(10, 20)))},
        "bad-image": base | {"messages": asking(image(png(10, 20), "image/gif"))},
        "schema": base | {"messages": asking(), "output_config": {"format": {"type": "json_schema", "schema": NESTED}}},
        "tools": base | {"messages": asking(), "tools": [WEATHER]},
    }
    batch = await client.messages.batches.create(
        requests=[{"custom_id": custom_id, "params": params} for custom_id, params in requests.items()]
    )
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert "received 1 image 10\u00d720 png" in results["image"].message.content[0].text
    assert results["bad-image"].error.error.type == "invalid_request_error"
    jsonschema.validate(json.loads(results["schema"].message.content[0].text), NESTED)
    assert results["tools"].message.stop_reason == "tool_use"


# Conversations and thinking


async def test_each_turn_depends_on_the_whole_conversation(client):
    def conversation(first_question: str) -> list[dict]:
        return [
            {"role": "user", "content": first_question},
            {"role": "assistant", "content": "Here is a first answer."},
            {"role": "user", "content": "Can you expand on that?"},
        ]

    one = await create(client, messages=conversation("How do I profile Python code?"))
    other = await create(client, messages=conversation("How do I sort a dict by value?"))
    assert one.content[0].text != other.content[0].text
    assert "turn 2" in provenance(one) and "profile Python" in one.content[0].text
    merged = await create(
        client, messages=[{"role": "user", "content": "Part one."}, {"role": "user", "content": TASK}]
    )
    assert "turn" not in provenance(merged)  # consecutive messages of one role are one turn


async def test_prefill_where_the_model_takes_it(client):
    prefilled = [*asking(), {"role": "assistant", "content": "The files show"}]
    assert (await create(client, messages=prefilled)).stop_reason == "end_turn"
    with pytest.raises(anthropic.BadRequestError, match="does not support assistant message prefill"):
        await create(client, model="claude-opus-4-6", messages=prefilled)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_adaptive_thinking(client, stream):
    message = await create(client, stream, thinking={"type": "adaptive"})
    thought, answer = message.content
    assert thought.type == "thinking" and thought.thinking.startswith("[synthetic thinking]") and thought.signature
    assert answer.type == "text"
    hidden = await create(client, stream, model="claude-opus-4-7", thinking={"type": "adaptive"})
    assert hidden.content[0].type == "thinking" and hidden.content[0].thinking == "" and hidden.content[0].signature
    shown = await create(
        client, stream, model="claude-opus-4-7", thinking={"type": "adaptive", "display": "summarized"}
    )
    assert shown.content[0].thinking.startswith("[synthetic thinking]")


async def test_thinking_with_tools_comes_before_the_call(client):
    message = await create(client, thinking={"type": "adaptive"}, tools=[WEATHER])
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"model": "claude-haiku-4-5", "thinking": {"type": "adaptive"}}, '"thinking.type.adaptive" is not supported'),
        ({"model": "claude-opus-4-7", "thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking.type.enabled"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}, "max_tokens": 4096}, "must be greater than"),
        ({"thinking": {"type": "sometimes"}}, "thinking.type: Input should be"),
        ({"thinking": {"type": "adaptive", "display": "full"}}, "'summarized' or 'omitted'"),
        ({"thinking": {"type": "adaptive"}, "extra_body": {"temperature": 0.2}}, "may only be set to 1"),
        ({"thinking": {"type": "adaptive"}, "tools": [WEATHER], "tool_choice": {"type": "any"}}, "forces tool use"),
        ({"model": "claude-fable-5", "thinking": {"type": "disabled"}}, '"thinking.type.disabled" is not supported'),
    ],
    ids=[
        "no-adaptive",
        "no-manual",
        "small-budget",
        "budget-over-max",
        "type",
        "display",
        "temperature",
        "forced",
        "off",
    ],
)
async def test_thinking_the_api_refuses(client, params, complaint):
    with pytest.raises(anthropic.BadRequestError, match=complaint):
        await create(client, **params)


async def test_manual_thinking_where_the_model_takes_it(client):
    message = await create(
        client, model="claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    off = await create(client, thinking={"type": "disabled"})
    assert [b.type for b in off.content] == ["text"]
