"""The sync WebSocket, driven message by message with a raw websocket client."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _local import call, decode_ts
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

ZERO_TS = "AAAAAAAAAAA="


class Socket:
    """A raw sync connection that keeps the raw text of what it receives."""

    def __init__(self, url: str, path: str = "/api/sync", session_id: str | None = None) -> None:
        self.stack = contextlib.ExitStack()
        self.ws: ClientConnection = self.stack.enter_context(
            connect(url.replace("http", "ws", 1) + path)
        )
        self.session_id = session_id or str(uuid.uuid4())
        self.raw: list[str] = []
        self.query_set = 0

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def connect(self, **extra: Any) -> Socket:
        self.send(
            {
                "type": "Connect",
                "sessionId": self.session_id,
                "connectionCount": 0,
                "lastCloseReason": "InitialConnect",
                "clientTs": 0,
                **extra,
            }
        )
        return self

    def receive(self, timeout: float = 5) -> dict[str, Any]:
        text = self.ws.recv(timeout=timeout)
        assert isinstance(text, str)
        self.raw.append(text)
        message: dict[str, Any] = json.loads(text)
        return message

    def receive_type(self, kind: str) -> dict[str, Any]:
        """The next message that is not a Ping; it must be of type `kind`."""
        while (message := self.receive())["type"] == "Ping":
            pass
        assert message["type"] == kind, message
        return message

    def add(self, query_id: int, path: str, args: dict[str, Any]) -> dict[str, Any]:
        self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": [
                    {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}
                ],
            }
        )
        self.query_set += 1
        return self.receive_type("Transition")

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def open_socket(convex_url: str) -> Iterator[Callable[..., Socket]]:
    sockets: list[Socket] = []

    def open_(path: str = "/api/sync", session_id: str | None = None) -> Socket:
        sockets.append(Socket(convex_url, path, session_id).connect())
        return sockets[-1]

    yield open_
    for socket in sockets:
        socket.close()


def updated_values(transition: dict[str, Any]) -> dict[int, Any]:
    return {
        m["queryId"]: m["value"] for m in transition["modifications"] if m["type"] == "QueryUpdated"
    }


def test_first_transition_starts_at_zero(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    transition = socket.add(0, "counter:get", {"name": "a"})
    assert transition["startVersion"] == {"querySet": 0, "identity": 0, "ts": ZERO_TS}
    assert transition["endVersion"]["querySet"] == 1
    assert transition["modifications"] == [
        {"type": "QueryUpdated", "queryId": 0, "value": 0.0, "logLines": [], "journal": None}
    ]
    assert '"value":0.0' in socket.raw[-1]
    assert "clientClockSkew" not in transition
    assert "serverTs" not in transition


def test_mutation_response_then_transition_chained(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    first = socket.add(0, "counter:get", {"name": "m"})
    socket.send(
        {
            "type": "Mutation",
            "requestId": 0,
            "udfPath": "counter:increment",
            "args": [{"name": "m"}],
        }
    )
    response = socket.receive_type("MutationResponse")
    assert response["success"] is True
    assert response["result"] == 1.0
    assert response["logLines"] == []
    transition = socket.receive_type("Transition")
    assert transition["startVersion"] == first["endVersion"]
    assert decode_ts(transition["endVersion"]["ts"]) >= decode_ts(response["ts"])
    assert updated_values(transition) == {0: 1.0}


def test_http_writes_reach_subscribers(open_socket: Callable[..., Socket], convex_url: str) -> None:
    socket = open_socket("/api/1.48.0/sync")
    first = socket.add(3, "counter.js:get", {"name": "h"})
    call(convex_url, "mutation", "counter:increment", {"name": "h", "by": 5})
    transition = socket.receive_type("Transition")
    assert transition["startVersion"] == first["endVersion"]
    assert updated_values(transition) == {3: 5.0}


def test_failed_mutations_answer_then_transition(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    socket.add(0, "counter:notes", {})
    socket.send(
        {"type": "Mutation", "requestId": 0, "udfPath": "errors:convexErrorMutation", "args": [{}]}
    )
    response = socket.receive_type("MutationResponse")
    assert (response["success"], response["ts"], response["errorData"]) == (False, None, "nope")
    assert "ConvexError: nope" in response["result"]
    socket.receive_type("Transition")
    socket.send(
        {
            "type": "Mutation",
            "requestId": 1,
            "udfPath": "errors:writeThenThrow",
            "args": [{"text": "ghost"}],
        }
    )
    response = socket.receive_type("MutationResponse")
    assert response["success"] is False
    assert "errorData" not in response
    assert updated_values(socket.receive_type("Transition")) == {}


def test_mutations_are_idempotent_per_session_and_request(
    open_socket: Callable[..., Socket], convex_url: str
) -> None:
    session_id = str(uuid.uuid4())
    mutation = {"type": "Mutation", "requestId": 7, "udfPath": "counter:increment"}
    first = open_socket(session_id=session_id)
    first.send({**mutation, "args": [{"name": "i"}]})
    original = first.receive_type("MutationResponse")
    first.close()
    again = open_socket(session_id=session_id)
    again.send({**mutation, "args": [{"name": "i"}]})
    assert again.receive_type("MutationResponse") == original
    other_session = open_socket()
    other_session.send({**mutation, "args": [{"name": "i"}]})
    assert other_session.receive_type("MutationResponse")["result"] == 2.0


def test_a_resent_mutation_is_not_applied_twice_after_kill_9(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    data_file = tmp_path / "data.jsonl"
    session_id = str(uuid.uuid4())
    mutation = {"type": "Mutation", "requestId": 3, "udfPath": "counter:increment"}
    crashed = LocalDeployment(convex_functions_dir, data_file=data_file)
    socket = Socket(crashed.start(), session_id=session_id).connect()
    socket.send({**mutation, "args": [{"name": "k"}]})
    original = socket.receive_type("MutationResponse")
    socket.close()
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    crashed.stop()
    with LocalDeployment(convex_functions_dir, data_file=data_file) as restarted:
        resent = Socket(restarted.url, session_id=session_id).connect()
        try:
            resent.send({**mutation, "args": [{"name": "k"}]})
            assert resent.receive_type("MutationResponse") == original
        finally:
            resent.close()
        assert call(restarted.url, "query", "counter:get", {"name": "k"})["value"] == 1.0


def test_actions(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    socket.send(
        {
            "type": "Action",
            "requestId": 0,
            "udfPath": "counter:slowIncrement",
            "args": [{"name": "x", "ms": 1}],
        }
    )
    response = socket.receive_type("ActionResponse")
    assert (response["success"], response["result"], response["logLines"]) == (True, 1.0, [])
    assert "ts" not in response


def test_query_errors_and_removal(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    failed = socket.add(1, "errors:convexError", {})["modifications"][0]
    assert failed["type"] == "QueryFailed"
    assert failed["errorData"]["code"] == "BOOM"
    assert failed["logLines"] == []
    missing = socket.add(2, "nowhere:fn", {})["modifications"][0]
    assert missing["type"] == "QueryFailed"
    socket.send(
        {
            "type": "ModifyQuerySet",
            "baseVersion": 2,
            "newVersion": 3,
            "modifications": [{"type": "Remove", "queryId": 1}],
        }
    )
    removed = socket.receive_type("Transition")
    assert removed["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    assert removed["endVersion"]["querySet"] == 3


def test_authenticate_reruns_queries_as_the_user(
    open_socket: Callable[..., Socket], mint_token: Callable[..., str]
) -> None:
    socket = open_socket()
    assert updated_values(socket.add(0, "identity:whoami", {})) == {0: None}
    socket.send(
        {"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": mint_token("bo")}
    )
    transition = socket.receive_type("Transition")
    assert transition["endVersion"]["identity"] == 1
    assert updated_values(transition)[0]["subject"] == "bo"
    socket.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "None"})
    transition = socket.receive_type("Transition")
    assert transition["endVersion"]["identity"] == 2
    assert updated_values(transition) == {0: None}


def test_bad_token_gets_auth_error_not_fatal_error(
    open_socket: Callable[..., Socket], mint_token: Callable[..., str], convex_url: str
) -> None:
    socket = open_socket()
    socket.add(0, "counter:get", {"name": "a"})
    expired = mint_token(exp=int(time.time()) - 60)
    socket.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": expired})
    error = socket.receive_type("AuthError")
    assert error["baseVersion"] == 0
    assert error["authUpdateAttempted"] is True
    with pytest.raises(ConnectionClosed):
        socket.receive()
    assert open_socket().add(0, "counter:get", {"name": "a"})["modifications"]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "Bogus"},
        {"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []},
        {"type": "Authenticate", "baseVersion": 3, "tokenType": "None"},
    ],
)
def test_protocol_errors_are_fatal_and_the_server_keeps_serving(
    open_socket: Callable[..., Socket], message: dict[str, Any]
) -> None:
    socket = open_socket()
    socket.send(message)
    assert socket.receive_type("FatalError")["error"]
    with pytest.raises(ConnectionClosed):
        socket.receive()
    assert open_socket().add(0, "counter:get", {"name": "a"})["modifications"]


def test_events_are_accepted(open_socket: Callable[..., Socket]) -> None:
    socket = open_socket()
    socket.send({"type": "Event", "eventType": "ClientConnect", "event": {}})
    assert socket.add(0, "counter:get", {"name": "a"})["startVersion"]["querySet"] == 0


def test_connect_with_a_newer_timestamp_moves_the_clock(convex_url: str) -> None:
    future = time.time_ns() + 3_600 * 10**9
    observed = base64.b64encode(struct.pack("<Q", future)).decode()
    socket = Socket(convex_url).connect(maxObservedTimestamp=observed)
    try:
        transition = socket.add(0, "counter:get", {"name": "a"})
    finally:
        socket.close()
    assert decode_ts(transition["endVersion"]["ts"]) >= future


def test_version_path_must_be_semver(convex_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(convex_url.replace("http", "ws", 1) + "/api/latest/sync")
    assert refused.value.response.status_code == 400


@pytest.fixture(scope="module")
def quick_ping_deployment(convex_functions_dir: Path) -> Iterator[LocalDeployment]:
    with LocalDeployment(convex_functions_dir, ping_interval=0.2) as deployment:
        yield deployment


def test_idle_sockets_are_pinged(quick_ping_deployment: LocalDeployment) -> None:
    socket = Socket(quick_ping_deployment.url).connect()
    try:
        assert socket.receive(timeout=3) == {"type": "Ping"}
        assert socket.receive(timeout=3) == {"type": "Ping"}
    finally:
        socket.close()
