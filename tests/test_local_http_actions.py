"""HTTP actions: the app's convex/http.ts served at the local deployment's site origin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _local import call, eventually, free_port, free_port_and_the_next

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).parent / "functions" / "convex"


@pytest.fixture
def site(convex_deployment: LocalDeployment, convex_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=convex_deployment.site_url, timeout=10) as client:
        yield client


def test_a_route_runs_its_action_with_the_apps_own_headers(
    site: httpx.Client, convex_url: str
) -> None:
    response = site.post(
        "/postMessage", json={"text": "hello"}, headers={"Origin": "https://app.example"}
    )
    assert (response.status_code, response.json()) == (201, {"saved": "hello"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["content-type"] == "application/json"
    notes = call(convex_url, "query", "counter:notes")["value"]
    assert notes == ["hello"]


def test_a_preflight_is_answered_by_the_apps_options_route(site: httpx.Client) -> None:
    response = site.options("/postMessage", headers={"Origin": "https://app.example"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-methods"] == "POST, OPTIONS"


def test_a_path_prefix_route_sees_the_whole_url(site: httpx.Client) -> None:
    response = site.get("/files/a/b.txt", params={"q": "x y"})
    assert (response.status_code, response.text) == (200, "file a/b.txt q=x y")
    assert response.headers["set-cookie"] == "seen=1"
    head = site.head("/files/a/b.txt")
    assert (head.status_code, head.content) == (200, b"")


def test_a_handler_sees_the_url_the_request_came_to(
    site: httpx.Client, convex_deployment: LocalDeployment
) -> None:
    response = site.post("/url", params={"x": "1"}, content=b"payload")
    assert response.json() == {"url": f"{convex_deployment.site_url}/url?x=1", "body": "payload"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/postMessage")])
def test_an_unrouted_request_gets_the_backends_404(
    site: httpx.Client, method: str, path: str
) -> None:
    response = site.request(method, path)
    assert (response.status_code, response.text) == (404, "No matching routes found")


def test_functions_see_both_urls_of_their_deployment(
    site: httpx.Client, convex_deployment: LocalDeployment
) -> None:
    assert site.get("/env").json() == {
        "cloud": convex_deployment.url,
        "site": convex_deployment.site_url,
    }


def test_a_bearer_token_is_the_actions_identity(
    site: httpx.Client, mint_token: Callable[..., str]
) -> None:
    assert site.get("/whoami").json() is None
    token = mint_token("user-9")
    identity = site.get("/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert identity["subject"] == "user-9"
    forged = site.get("/whoami", headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 401


def test_logs_and_failures_are_printed_under_the_route(
    site: httpx.Client, convex_deployment: LocalDeployment
) -> None:
    site.post("/postMessage", json={"text": "logged"})
    failed = site.get("/fail")
    assert failed.status_code == 500
    assert "Uncaught Error: handler broke" in failed.text
    logged = "[CONVEX H(POST /postMessage)] [LOG] 'posting' 'logged'"
    eventually(lambda: logged in convex_deployment.output, "the action's log line")
    eventually(
        lambda: any(
            line.startswith("[CONVEX H(GET /fail)] Uncaught Error: handler broke")
            for line in convex_deployment.output
        ),
        "the action's failure",
    )


def test_a_body_over_the_limit_is_refused(site: httpx.Client) -> None:
    response = site.post("/postMessage", content=b"x" * (17 * 1024 * 1024))
    assert response.status_code == 413


def test_the_site_port_is_the_next_one_unless_told(tmp_path: Path) -> None:
    port = free_port_and_the_next()
    with LocalDeployment(FUNCTIONS, port=port) as deployment:
        assert deployment.site_url == f"http://127.0.0.1:{port + 1}"
    chosen = free_port()
    with LocalDeployment(FUNCTIONS, port=0, site_port=chosen) as deployment:
        assert deployment.site_url == f"http://127.0.0.1:{chosen}"
        assert httpx.get(f"{deployment.site_url}/env").json()["site"] == deployment.site_url


def test_deployments_on_free_ports_get_free_site_ports_too() -> None:
    with LocalDeployment(FUNCTIONS) as first, LocalDeployment(FUNCTIONS) as second:
        assert first.site_url != second.site_url
        assert httpx.get(f"{second.site_url}/env").json()["cloud"] == second.url
