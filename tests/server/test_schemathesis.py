"""schemathesis against the server's own /openapi.json: generated requests (valid ones and broken
ones) for every route, and every answer checked against what the schema promises (status codes,
content types, response shapes, no 5xx, valid data accepted, invalid data refused). In-process over
a scripted session, so what is tested is the API layer; bounded examples and time."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from server.app import create_app
from server.runner import EngineRunner

from one_answer import OneAnswerSession


_runner = EngineRunner(opener=lambda: OneAnswerSession("ok")).start()
_runner.loaded.wait(10)
# The in-process client names its host "testserver": the Host check has its own test (test_bad_requests).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_runner, "echo", loopback_only=False))


# 400s that valid JSON can still earn, because the rule spans fields or needs the model: a
# function_call_output for a call that never happened, a tool schema llguidance can't use, a tool
# message answering no call, top_logprobs without logprobs, web_search on a server started without
# --library/--zim. Each names its own code; any other 400 for valid data is a disagreement.
BEYOND_THE_SCHEMA = {"unknown_call_id", "invalid_tool_or_format", "invalid_conversation", "logprobs_not_asked",
                     "no_search_sources"}


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
def test_the_server_keeps_the_promises_of_its_own_schema(case):
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str) and case.meta.generation.mode.is_positive:
        case.body["model"] = "echo"  # a made-up name is a 404 before anything else is read: go further
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.meta.generation.mode.is_positive and response.status_code == 400:
        assert response.json()["error"]["code"] in BEYOND_THE_SCHEMA, response.text
