"""``responses.retrieve`` and the Responses stream resume are ``fetch_response`` spans; a response's usage
and cost are recorded once, on the first span that sees it complete (a background response's fetch, a
resumed stream), never again on a fetch of a response already recorded."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import openai
import pytest
from tests_support import HAS_RESPONSES, run_child

from llm_otel import semconv as sc
from llm_otel.exporters.cost.records import span_to_record
from llm_otel.instrumentors.openai import unbilled
from llm_otel.testing.responses_routes import responses as make_response
from llm_otel.testing.wire import ReplyConfig

pytestmark = pytest.mark.skipif(not HAS_RESPONSES, reason="openai client without the Responses API")

USAGE_ATTRS = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
    sc.USAGE_COST,
    sc.PRICING_STATUS,
    sc.PRICING_SOURCE,
    sc.COST_INPUT,
    sc.COST_OUTPUT,
)


@pytest.fixture(autouse=True)
def _no_pending() -> Any:
    unbilled.clear()
    yield
    unbilled.clear()


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)


def completed() -> dict[str, Any]:
    """A completed response object as the fake server generates it (usage included)."""
    reply = make_response({"model": "gpt-4o-mini", "input": "Say this is a test"}, ReplyConfig())
    return json.loads(reply.body)  # type: ignore[no-any-return]


def queued(done: dict[str, Any], status: str = "queued") -> dict[str, Any]:
    """The same response while a background run is still going: no output, no usage."""
    return {**done, "status": status, "output": [], "usage": None, "background": True, "completed_at": None}


def events(done: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of that response as the fake server generates it (the final event carries ``done``)."""
    reply = make_response(
        {"model": "gpt-4o-mini", "input": "Say this is a test", "stream": True}, ReplyConfig()
    )
    pieces = []
    for chunk in reply.chunks or ():
        data = json.loads(chunk.decode().split("data: ", 1)[1])
        for key in ("response",):
            if key in data:
                data[key] = {**data[key], "id": done["id"]}
        pieces.append(data)
    pieces[-1]["response"] = done
    return pieces


def fetch_span(spans: Any) -> Any:
    found = [s for s in spans.genai() if s.attributes[sc.OPERATION] == sc.OP_FETCH_RESPONSE]
    assert len(found) == 1, [s.name for s in spans.genai()]
    return found[0]


def test_retrieve_of_a_recorded_response_records_no_usage(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    done = completed()
    server.respond_with(body=done, path="/v1/responses")
    created = client.responses.create(model="gpt-4o-mini", input="Say this is a test")
    server.respond_with(body=done, path=f"/v1/responses/{done['id']}")
    fetched = client.responses.retrieve(created.id)
    assert fetched.usage is not None and fetched.id == created.id
    assert server.requests[-1].method == "GET" and server.requests[-1].path == f"/v1/responses/{created.id}"
    create_span = next(s for s in spans.genai() if s.attributes[sc.OPERATION] == "chat")
    assert create_span.attributes[sc.USAGE_INPUT_TOKENS] == created.usage.input_tokens  # billed here
    span = fetch_span(spans)
    attrs = span.attributes
    assert span.name == "fetch_response"
    assert attrs[sc.PROVIDER] == "openai" and attrs[sc.OPENAI_API_TYPE] == "responses"
    assert attrs[sc.RESPONSE_ID] == created.id
    assert attrs[sc.RESPONSE_MODEL] == fetched.model
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert sc.REQUEST_MODEL not in attrs and sc.REQUEST_STREAM not in attrs
    assert not set(USAGE_ATTRS) & set(attrs)  # the conventions: no token usage on fetch_response
    assert span_to_record(span) is None  # and no cost record
    assert span_to_record(create_span) is not None


def test_background_response_is_billed_once_on_the_fetch_that_sees_it_complete(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    done = completed()
    rid = done["id"]
    server.respond_with(body=queued(done), path="/v1/responses")
    created = client.responses.create(model="gpt-4o-mini", input="Say this is a test", background=True)
    assert created.status == "queued"
    server.respond_with(body=queued(done, "in_progress"), path=f"/v1/responses/{rid}")
    server.respond_with(body=done, path=f"/v1/responses/{rid}", times=2)
    polls = [client.responses.retrieve(rid) for _ in range(3)]
    assert [p.status for p in polls] == ["in_progress", "completed", "completed"]
    fetches = [s for s in spans.genai() if s.attributes[sc.OPERATION] == sc.OP_FETCH_RESPONSE]
    assert len(fetches) == 3
    billed = [s for s in fetches if sc.USAGE_INPUT_TOKENS in s.attributes]
    assert len(billed) == 1 and billed[0] is fetches[1]
    attrs = billed[0].attributes
    usage = polls[1].usage
    assert usage is not None
    assert attrs[sc.USAGE_INPUT_TOKENS] == usage.input_tokens
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert attrs[sc.PRICING_STATUS] == "priced" and attrs[sc.USAGE_COST] > 0
    assert span_to_record(billed[0]) is not None
    assert span_to_record(fetches[0]) is None and span_to_record(fetches[2]) is None


def test_async_retrieve_is_traced(openai_instrumented: Any, spans: Any, server: Any) -> None:
    done = completed()
    server.respond_with(body=done, path=f"/v1/responses/{done['id']}")
    aclient = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    fetched = asyncio.run(aclient.responses.retrieve(done["id"]))
    attrs = fetch_span(spans).attributes
    assert attrs[sc.RESPONSE_ID] == fetched.id
    assert sc.USAGE_INPUT_TOKENS not in attrs  # never seen unfinished here: not billed again


def test_resumed_stream_bills_the_response_a_cut_stream_left_unbilled(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    done = completed()
    rid = done["id"]
    pieces = events(done)
    # the first stream stops after the response was created (a dropped connection, a client timeout)
    server.respond_with(chunks=pieces[:3], path="/v1/responses")
    seen = []
    with client.responses.stream(model="gpt-4o-mini", input="Say this is a test") as stream:
        for event in stream:
            seen.append(event.sequence_number)
    create_span = next(s for s in spans.genai() if s.attributes[sc.OPERATION] == "chat")
    assert sc.USAGE_INPUT_TOKENS not in create_span.attributes
    # resume: openai asks for the whole stream again and skips what the user already saw
    server.respond_with(chunks=pieces, path=f"/v1/responses/{rid}")
    with client.responses.stream(response_id=rid, starting_after=seen[-1]) as resumed:
        rest = [e.sequence_number for e in resumed]
        final = resumed.get_final_response()
    assert rest == list(range(seen[-1] + 1, len(pieces)))
    request = server.requests[-1]
    assert request.method == "GET" and request.path.startswith(f"/v1/responses/{rid}?")
    span = fetch_span(spans)
    attrs = span.attributes
    assert span.name == "fetch_response"
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_ID] == rid
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert final.usage is not None
    assert attrs[sc.USAGE_INPUT_TOKENS] == final.usage.input_tokens
    assert attrs[sc.USAGE_COST] > 0
    # a second resume of the same (now billed) response records no usage
    spans.clear()
    server.respond_with(chunks=pieces, path=f"/v1/responses/{rid}")
    with client.responses.stream(response_id=rid) as again:
        list(again)
    assert sc.USAGE_INPUT_TOKENS not in fetch_span(spans).attributes


def test_retrieve_stream_directly(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    done = completed()
    server.respond_with(chunks=events(done), path=f"/v1/responses/{done['id']}")
    stream = client.responses.retrieve(done["id"], stream=True, starting_after=2)
    assert isinstance(stream, openai.Stream)
    kinds = [e.type for e in stream]
    assert kinds[-1] == "response.completed"
    attrs = fetch_span(spans).attributes
    assert attrs[sc.REQUEST_STREAM] is True and attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert "starting_after=2" in server.requests[-1].path


def test_retrieve_error_ends_the_span_as_error(
    openai_instrumented: Any, spans: Any, server: Any, client: openai.OpenAI
) -> None:
    server.respond_with(
        body={"error": {"message": "No response found", "type": "invalid_request_error", "code": None}},
        status=404,
        path="/v1/responses/resp_missing",
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    attrs = fetch_span(spans).attributes
    assert attrs[sc.ERROR_TYPE] == "openai.NotFoundError"
    assert attrs[sc.RESPONSE_ID] == "resp_missing"


CHILD = """
    import json, os
    import llm_otel, openai
    handle = llm_otel.instrument(prometheus_port=0, cost_api_url=os.environ["COST_URL"],
                                 cost_api_key="secret", spool_path=os.environ["SPOOL"])
    client = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="k", max_retries=0)
    created = client.responses.create(model="gpt-4o-mini", input="Say this is a test")
    for _ in range(3):
        client.responses.retrieve(created.id)
    assert handle.flush(10_000)
    print(json.dumps({"usage": created.usage.input_tokens + created.usage.output_tokens}))
"""


def test_fetches_add_no_cost_records(tmp_path: Any, server: Any) -> None:
    from llm_otel.cost_server import make_server

    done = completed()
    server.respond_with(body=done, path="/v1/responses", times=1)
    server.respond_with(body=done, path=f"/v1/responses/{done['id']}", times=3)
    costs = make_server(str(tmp_path / "costs.sqlite"), "127.0.0.1", 0, "secret", 8 << 20, True)
    thread = threading.Thread(target=costs.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        env = {
            "COST_URL": costs.url,
            "SPOOL": str(tmp_path / "spool.sqlite"),
            "LLM_URL": server.openai_base_url,
        }
        out = run_child(CHILD, env)
        assert costs.store.count() == 1  # the create only
        assert out["usage"] == done["usage"]["total_tokens"]
    finally:
        costs.shutdown()
        costs.server_close()
        costs.store.close()
