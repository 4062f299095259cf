"""The official PyPI `convex` clients, unmodified, against the local deployment."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from convex import ConvexClient, ConvexError, ConvexInt64
from convex.http_client import ConvexHttpClient

pytestmark = pytest.mark.integration


def test_http_client_values(convex_url: str) -> None:
    client = ConvexHttpClient(convex_url)
    floats = client.query("values:specialFloats")
    assert math.isnan(floats["nan"])
    assert floats["inf"] == math.inf
    assert math.copysign(1, floats["negZero"]) == -1
    assert floats["five"] == 5.0
    total = client.query("values:sumInt64", {"values": [ConvexInt64(2**62), ConvexInt64(3)]})
    assert total == ConvexInt64(2**62 + 3)
    assert client.query("values:echoBytes", {"data": b"hello"}) == {"data": b"hello", "length": 5.0}


def test_http_client_mutation_action_and_errors(convex_url: str) -> None:
    client = ConvexHttpClient(convex_url)
    assert client.mutation("counter:increment", {"name": "p"}) == 1.0
    assert client.action("counter:slowIncrement", {"name": "p", "ms": 1}) == 2.0
    with pytest.raises(ConvexError) as raised:
        client.query("errors:convexError")
    assert raised.value.data["code"] == "BOOM"
    with pytest.raises(ConvexError) as raised:
        client.mutation("errors:convexErrorMutation")
    assert raised.value.data == "nope"
    with pytest.raises(Exception, match="Uncaught Error: boom"):
        client.query("errors:plainError")


def test_ws_client_query_mutation_and_errors(convex_url: str) -> None:
    client = ConvexClient(convex_url)
    assert client.query("counter:get", {"name": "w"}) == 0.0
    assert client.mutation("counter:increment", {"name": "w"}) == 1.0
    assert client.query("counter:get", {"name": "w"}) == 1.0
    with pytest.raises(ConvexError) as raised:
        client.mutation("errors:convexErrorMutation")
    assert raised.value.data == "nope"
    assert client.action("counter:slowIncrement", {"name": "w", "ms": 1}) == 2.0


def test_ws_subscription_sees_a_write_made_over_http(convex_url: str) -> None:
    client = ConvexClient(convex_url)

    def write_elsewhere() -> None:
        ConvexHttpClient(convex_url).mutation("counter:increment", {"name": "s", "by": 3})

    async def watch() -> list[Any]:
        seen: list[Any] = []
        async for value in client.subscribe("counter:get", {"name": "s"}):
            seen.append(value)
            if len(seen) == 1:
                threading.Thread(target=write_elsewhere).start()
            if value == 3.0:
                return seen
        return seen

    assert asyncio.run(asyncio.wait_for(watch(), 10)) == [0.0, 3.0]


def test_set_auth_gives_functions_the_identity(
    convex_url: str, mint_token: Callable[..., str], convex_env: dict[str, str]
) -> None:
    issuer = convex_env["TEST_AUTH_ISSUER"]
    token = mint_token("carol", email="carol@example.test")
    client = ConvexClient(convex_url)
    http = ConvexHttpClient(convex_url)
    client.set_auth(token)
    identity = client.query("identity:whoami")
    http.set_auth(token)
    assert http.query("identity:whoami") == identity
    assert identity["tokenIdentifier"] == f"{issuer}|carol"
    assert identity["email"] == "carol@example.test"
