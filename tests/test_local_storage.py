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


def kill_9(deployment: LocalDeployment) -> None:
    assert deployment.pid is not None
    os.kill(deployment.pid, signal.SIGKILL)
    deployment.wait()
    deployment.stop()


def blobs(data_file: Path) -> list[str]:
    """The names of the blob files beside `data_file`."""
    return sorted(path.name for path in data_file.with_name(f"{data_file.name}.storage").iterdir())


def test_files_survive_kill_9(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    crashed = LocalDeployment(FUNCTIONS, data_file=data_file)
    crashed.start()
    storage_id = upload(crashed.url, PNG, "image/png")
    kill_9(crashed)
    with LocalDeployment(FUNCTIONS, data_file=data_file) as restarted:
        file_url = call(restarted.url, "query", "files:url", {"id": storage_id})["value"]
        served = httpx.get(file_url)
        assert (served.headers["content-type"], served.content) == ("image/png", PNG)
        read = call(restarted.url, "action", "files:readText", {"id": storage_id})["value"]
        assert read["type"] == "image/png"


def store(url: str, text: str) -> str:
    """Stores `text` as a text/plain file from an action; its storage id."""
    args = {"text": text, "type": "text/plain"}
    storage_id: str = call(url, "action", "files:storeText", args)["value"]
    return storage_id


def read(url: str, storage_id: str) -> str | None:
    """The text of a stored file, read from an action; None when it is gone."""
    file = call(url, "action", "files:readText", {"id": storage_id})["value"]
    return None if file is None else str(file["text"])


def test_upload_and_file_urls_stay_valid_after_kill_9(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    crashed = LocalDeployment(FUNCTIONS, data_file=data_file)
    crashed.start()
    storage_id = upload(crashed.url, PNG, "image/png")
    file_url = call(crashed.url, "query", "files:url", {"id": storage_id})["value"]
    upload_url = ConvexHttpClient(crashed.url).mutation("files:generateUploadUrl")
    kill_9(crashed)
    port = httpx.URL(upload_url).port
    assert port is not None
    with LocalDeployment(FUNCTIONS, data_file=data_file, port=port, site_port=0) as restarted:
        assert httpx.get(file_url).content == PNG
        response = httpx.post(upload_url, content=b"later", headers={"Content-Type": "text/plain"})
        assert response.status_code == 200, response.text
        assert read(restarted.url, response.json()["storageId"]) == "later"
        logged = "\n".join([*crashed.output, *restarted.output])
    secret = data_file.with_name("data.jsonl.secret")
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text().strip() not in logged
    assert httpx.URL(upload_url).params["token"] not in logged


def test_deleting_a_file_removes_its_blob_once_no_other_file_shares_it(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    with LocalDeployment(FUNCTIONS, data_file=data_file) as deployment:
        url = deployment.url
        first, second, other = store(url, "same"), store(url, "same"), store(url, "other")
        assert len(blobs(data_file)) == 2
        call(url, "action", "files:remove", {"id": first})
        assert (len(blobs(data_file)), read(url, second)) == (2, "same")
        call(url, "action", "files:remove", {"id": second})
        assert (len(blobs(data_file)), read(url, other)) == (1, "other")
        deployment.reset()
        assert blobs(data_file) == []


def test_blobs_no_document_names_are_swept_on_start(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    with LocalDeployment(FUNCTIONS, data_file=data_file) as deployment:
        storage_id = store(deployment.url, "kept")
    [kept] = blobs(data_file)
    # What a kill -9 can leave: the blob of a file whose delete committed, a torn write.
    storage = data_file.with_name("data.jsonl.storage")
    (storage / "orphan").write_bytes(b"deleted")
    (storage / f"{kept}.4242.tmp").write_bytes(b"torn")
    with LocalDeployment(FUNCTIONS, data_file=data_file) as restarted:
        assert blobs(data_file) == [kept]
        assert read(restarted.url, storage_id) == "kept"
        # The files named at start are counted: deleting the last one naming a blob removes it.
        shared = store(restarted.url, "kept")
        call(restarted.url, "action", "files:remove", {"id": storage_id})
        assert (blobs(data_file), read(restarted.url, shared)) == ([kept], "kept")
        call(restarted.url, "action", "files:remove", {"id": shared})
        assert blobs(data_file) == []
