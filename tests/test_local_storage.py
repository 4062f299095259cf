"""File storage on the local deployment: uploads, URLs, metadata, blobs that survive kill -9."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
from pathlib import Path

import httpx
import pytest
from _local import call
from convex.http_client import ConvexHttpClient

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).parent / "functions" / "convex"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def upload(url: str, body: bytes, content_type: str) -> str:
    """Uploads as a browser does: an upload URL from a mutation, then a POST to it."""
    upload_url = ConvexHttpClient(url).mutation("files:generateUploadUrl")
    assert upload_url.startswith(f"{url}/api/storage/upload?token=")
    response = httpx.post(upload_url, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    storage_id: str = response.json()["storageId"]
    return storage_id


def test_an_upload_is_served_back_with_its_content_type(convex_url: str) -> None:
    storage_id = upload(convex_url, PNG, "image/png")
    file_url = call(convex_url, "query", "files:url", {"id": storage_id})["value"]
    assert file_url == f"{convex_url}/api/storage/{storage_id}"
    served = httpx.get(file_url)
    assert (served.status_code, served.headers["content-type"], served.content) == (
        200,
        "image/png",
        PNG,
    )


def test_the_storage_table_holds_size_sha256_and_content_type(convex_url: str) -> None:
    storage_id = upload(convex_url, PNG, "image/png")
    metadata = call(convex_url, "query", "files:metadata", {"id": storage_id})["value"]
    assert metadata["size"] == len(PNG)
    assert metadata["sha256"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    assert metadata["contentType"] == "image/png"
    listed = call(convex_url, "query", "files:all")["value"]
    assert [row["_id"] for row in listed] == [storage_id]
    from_action = call(convex_url, "action", "files:getMetadata", {"id": storage_id})["value"]
    assert from_action == {
        "storageId": storage_id,
        "sha256": metadata["sha256"],
        "size": len(PNG),
        "contentType": "image/png",
    }


def test_actions_store_read_and_delete_files(convex_url: str) -> None:
    stored = call(convex_url, "action", "files:storeText", {"text": "hé", "type": "text/plain"})
    storage_id = stored["value"]
    read = call(convex_url, "action", "files:readText", {"id": storage_id})["value"]
    assert read == {"text": "hé", "type": "text/plain"}
    call(convex_url, "action", "files:remove", {"id": storage_id})
    assert call(convex_url, "action", "files:readText", {"id": storage_id})["value"] is None
    assert call(convex_url, "query", "files:url", {"id": storage_id})["value"] is None
    assert httpx.get(f"{convex_url}/api/storage/{storage_id}").status_code == 404


@pytest.mark.parametrize("token", ["", "1.2.3", "9999999999999.00.forged"])
def test_an_upload_needs_a_token_the_deployment_issued(convex_url: str, token: str) -> None:
    response = httpx.post(f"{convex_url}/api/storage/upload?token={token}", content=b"x")
    assert response.status_code == 401
    assert call(convex_url, "query", "files:all")["value"] == []


def test_an_unknown_file_is_a_404(convex_url: str) -> None:
    assert httpx.get(f"{convex_url}/api/storage/nothing-here").status_code == 404


def test_files_survive_kill_9(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    crashed = LocalDeployment(FUNCTIONS, data_file=data_file)
    crashed.start()
    storage_id = upload(crashed.url, PNG, "image/png")
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    crashed.stop()
    with LocalDeployment(FUNCTIONS, data_file=data_file) as restarted:
        file_url = call(restarted.url, "query", "files:url", {"id": storage_id})["value"]
        served = httpx.get(file_url)
        assert (served.headers["content-type"], served.content) == ("image/png", PNG)
        read = call(restarted.url, "action", "files:readText", {"id": storage_id})["value"]
        assert read["type"] == "image/png"
