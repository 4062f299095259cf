"""`npx convex import` and `npx convex export` (the pinned npm CLI) against the local deployment."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _local import NpxConvex, call, int64

from flask_convex.local import LocalDeployment, LocalDeploymentError

pytestmark = pytest.mark.integration

Bind = Callable[[LocalDeployment], NpxConvex]


def rows(deployment: LocalDeployment, table: str) -> list[dict[str, Any]]:
    """Every document of `table` in encoded JSON, where an int64 and a float differ."""
    result = call(
        deployment.url, "query", "transfer:list", {"table": table}, format="convex_encoded_json"
    )
    documents: list[dict[str, Any]] = result["value"]
    return documents


def notes(deployment: LocalDeployment) -> list[str]:
    texts: list[str] = call(deployment.url, "query", "counter:notes")["value"]
    return texts


def test_a_snapshot_round_trip_restores_documents_ids_and_files(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    url = convex_deployment.url
    note = call(url, "mutation", "counter:addNote", {"text": "kept"})["value"]
    stored = {"text": "hello", "type": "text/plain"}
    file_id = call(url, "action", "files:storeText", stored)["value"]
    link = {"note": note, "file": file_id, "count": int64(7), "raw": {"$bytes": "AAE="}, "at": 0.5}
    call(url, "mutation", "transfer:insert", {"table": "links", "doc": link})
    before = {table: rows(convex_deployment, table) for table in ("notes", "links")}
    files_before = call(url, "query", "files:all")["value"]
    convex = npx_convex(convex_deployment)

    snapshot = tmp_path / "snapshot.zip"
    exported = convex("export", "--path", str(snapshot), "--include-file-storage")
    assert exported.returncode == 0, exported.stderr
    assert "Created snapshot export at timestamp" in exported.stderr
    names = set(zipfile.ZipFile(snapshot).namelist())
    assert {
        "README.md",
        "_tables/documents.jsonl",
        "notes/documents.jsonl",
        "links/generated_schema.jsonl",
        "_storage/documents.jsonl",
        f"_storage/{file_id}",
    } <= names

    convex_deployment.reset()
    assert notes(convex_deployment) == []
    imported = convex("import", str(snapshot))
    assert imported.returncode == 0, imported.stderr
    assert "Added 2 documents." in imported.stderr
    assert {table: rows(convex_deployment, table) for table in before} == before
    assert call(url, "query", "files:all")["value"] == files_before
    assert call(url, "action", "files:readText", {"id": file_id})["value"] == stored
    assert httpx.get(call(url, "query", "files:url", {"id": file_id})["value"]).text == "hello"


def test_an_export_without_file_storage_has_no_files(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    call(convex_deployment.url, "action", "files:storeText", {"text": "x", "type": "text/plain"})
    exported = npx_convex(convex_deployment)("export", "--path", str(tmp_path))
    assert exported.returncode == 0, exported.stderr
    [snapshot] = tmp_path.glob("snapshot_*.zip")
    assert not [name for name in zipfile.ZipFile(snapshot).namelist() if "_storage" in name]


def test_jsonl_json_and_csv_files_import_into_a_table(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    lines = tmp_path / "people.jsonl"
    people = [{"name": "Ada", "age": 36}, {"name": "Alan", "age": int64(41)}]
    lines.write_text("".join(json.dumps(person) + "\n" for person in people))
    (tmp_path / "people.json").write_text(json.dumps([{"name": "Grace", "age": 85}]))
    (tmp_path / "people.csv").write_text('name, age\nEdsger,72\n"Hopper, Grace",1e2\n\n')
    convex = npx_convex(convex_deployment)
    first = convex("import", "--table", "people", str(lines))
    assert first.returncode == 0, first.stderr
    assert 'Added 2 documents to table "people".' in first.stderr
    for name in ("people.json", "people.csv"):
        more = convex("import", "--table", "people", "--append", str(tmp_path / name))
        assert more.returncode == 0, more.stderr
    assert [(row["name"], row["age"]) for row in rows(convex_deployment, "people")] == [
        ("Ada", 36.0),
        ("Alan", int64(41)),
        ("Grace", 85.0),
        ("Edsger", 72.0),
        ("Hopper, Grace", 100.0),
    ]


def test_empty_csv_cells_of_optional_fields_are_left_out(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("name,email,age\nAda,,36\nAlan,alan@example.com,\n")
    imported = npx_convex(convex_deployment)("import", "--table", "contacts", str(contacts))
    assert imported.returncode == 0, imported.stderr
    fields = [
        {key: value for key, value in row.items() if not key.startswith("_")}
        for row in rows(convex_deployment, "contacts")
    ]
    assert fields == [{"name": "Ada", "age": 36.0}, {"name": "Alan", "email": "alan@example.com"}]


def test_a_table_with_documents_is_refused_unless_appending_or_replacing(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    call(convex_deployment.url, "mutation", "counter:addNote", {"text": "mine"})
    imported = tmp_path / "notes.jsonl"
    imported.write_text('{"text": "imported"}\n')
    convex = npx_convex(convex_deployment)
    refused = convex("import", "--table", "notes", str(imported))
    assert refused.returncode == 1
    assert (
        "Table notes already exists. Please choose a new table name or use replace/append modes."
        in refused.stderr
    )
    assert notes(convex_deployment) == ["mine"]
    assert convex("import", "--table", "notes", "--append", str(imported)).returncode == 0
    assert notes(convex_deployment) == ["mine", "imported"]
    replaced = convex("import", "--table", "notes", "--replace", "--yes", str(imported))
    assert replaced.returncode == 0, replaced.stderr
    assert "notes | 1      | 2 of 2 |" in replaced.stderr
    assert notes(convex_deployment) == ["imported"]


def test_a_bad_row_fails_the_whole_import_and_changes_nothing(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    call(convex_deployment.url, "mutation", "counter:addNote", {"text": "safe"})
    convex = npx_convex(convex_deployment)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "one"}\n{"text": \n{"text": "three"}\n')
    failed = convex("import", "--table", "notes", "--replace", "--yes", str(broken))
    assert failed.returncode == 1
    assert "Hit an error while importing:\nRow 2 wasn't valid JSON" in failed.stderr
    off_schema = tmp_path / "off_schema.jsonl"
    off_schema.write_text('{"text": "one"}\n{"text": 5}\n')
    refused = convex("import", "--table", "notes", "--replace", "--yes", str(off_schema))
    assert refused.returncode == 1
    assert 'in table "notes" does not match the schema' in refused.stderr
    assert notes(convex_deployment) == ["safe"]


def test_ids_from_another_deployment_are_replaced_and_references_follow(
    convex_deployment: LocalDeployment, convex_reset: None, npx_convex: Bind, tmp_path: Path
) -> None:
    snapshot = tmp_path / "cloud.zip"
    cloud_note = "k57a1b2c3d4e5f6g7h8j9k0m1n2p3q4r"
    with zipfile.ZipFile(snapshot, "w") as archive:
        archive.writestr(
            "notes/documents.jsonl",
            json.dumps({"_id": cloud_note, "_creationTime": 1.7e12, "text": "from the cloud"}),
        )
        archive.writestr("links/documents.jsonl", json.dumps({"note": cloud_note, "n": 1}))
    imported = npx_convex(convex_deployment)("import", str(snapshot))
    assert imported.returncode == 0, imported.stderr
    [note] = rows(convex_deployment, "notes")
    [link] = rows(convex_deployment, "links")
    assert note["_id"] != cloud_note
    assert (link["note"], note["_creationTime"]) == (note["_id"], 1.7e12)
    call(convex_deployment.url, "mutation", "counter:removeNote", {"id": link["note"]})
    assert notes(convex_deployment) == []


def start_import(deployment: LocalDeployment, data: bytes, **args: Any) -> str:
    """Uploads `data` in 5 MiB parts, as the CLI does; the id of the import it starts."""
    size = 5 * 1024 * 1024
    with httpx.Client(base_url=deployment.url, headers=deployment.admin_headers) as client:
        token = client.post("/api/import/start_upload").json()["uploadToken"]
        parts = []
        for number, start in enumerate(range(0, len(data), size), start=1):
            params = {"uploadToken": token, "partNumber": number}
            part = client.post(
                "/api/import/upload_part", params=params, content=data[start:][:size]
            )
            assert part.status_code == 200, part.text
            parts.append(part.json())
        finished = client.post(
            "/api/import/finish_upload",
            json={"import": args, "uploadToken": token, "partTokens": parts},
        )
        assert finished.status_code == 200, finished.text
        import_id: str = finished.json()["importId"]
    return import_id


def import_state(deployment: LocalDeployment, import_id: str) -> Any:
    """The state of import `import_id`, as `npx convex import` reads it."""
    return call(
        deployment.url,
        "query",
        "_system/cli/queryImport",
        {"importId": import_id},
        headers=deployment.admin_headers,
    )["value"]["state"]


def upload(deployment: LocalDeployment, data: bytes, **args: Any) -> Any:
    """Uploads `data` as the CLI does; the state of the import it starts."""
    return import_state(deployment, start_import(deployment, data, **args))


def transfer(deployment: LocalDeployment, route: str, import_id: str) -> httpx.Response:
    """POSTs import `import_id` to `/api/<route>` (perform_import, cancel_import) as an admin."""
    return httpx.post(
        f"{deployment.url}/api/{route}",
        json={"importId": import_id},
        headers=deployment.admin_headers,
    )


def test_a_json_array_over_the_backends_limit_is_refused(
    convex_deployment: LocalDeployment, convex_reset: None
) -> None:
    array = json.dumps([{"text": "x" * 1000}] * 17_000).encode()
    state = upload(convex_deployment, array, format="jsonArray", tableName="notes")
    assert state["state"] == "failed"
    assert "Import is too large for JSON" in state["error_message"]


class SmallImports(LocalDeployment):
    """A deployment taking imports of at most 1000 bytes."""

    def _command(self, server: Path) -> list[str]:
        return [*super()._command(server), "--max-import-bytes", "1000"]


def test_uploads_and_their_unpacked_contents_are_bounded(convex_functions_dir: Path) -> None:
    with SmallImports(convex_functions_dir) as small:
        with httpx.Client(base_url=small.url, headers=small.admin_headers) as client:
            token = client.post("/api/import/start_upload").json()["uploadToken"]
            params = {"uploadToken": token, "partNumber": 1}
            big = client.post("/api/import/upload_part", params=params, content=b"x" * 2000)
        assert big.status_code == 413
        assert "1000 byte limit" in big.json()["message"]
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("notes/documents.jsonl", " " * 100_000)
        state = upload(small, bomb.getvalue(), format="zip")
        assert state["state"] == "failed"
        assert "unpacks to more than the 1000 byte import limit" in state["error_message"]


def test_imports_and_exports_need_an_admin_key(convex_deployment: LocalDeployment) -> None:
    url = convex_deployment.url
    admin = convex_deployment.admin_headers
    assert httpx.post(f"{url}/api/export/request/zip", headers=admin).status_code == 200
    latest = call(url, "query", "_system/cli/exports:getLatest", headers=admin)["value"]
    download = f"/api/export/zip/{latest['start_ts']}"
    assert httpx.get(f"{url}{download}", headers=admin).status_code == 200
    token = httpx.post(f"{url}/api/import/start_upload", headers=admin).json()["uploadToken"]
    part = {"uploadToken": token, "partNumber": "1"}
    routes = [
        ("POST", "/api/import/start_upload", {}, None),
        ("POST", "/api/import/upload_part", part, None),
        ("POST", "/api/import/finish_upload", {}, {"uploadToken": token, "partTokens": []}),
        ("POST", "/api/perform_import", {}, {"importId": "1_snapshot_imports"}),
        ("POST", "/api/cancel_import", {}, {"importId": "1_snapshot_imports"}),
        ("POST", "/api/export/request/zip", {}, None),
        ("GET", download, {}, None),
    ]
    for method, route, params, body in routes:
        refused = httpx.request(method, f"{url}{route}", params=params, json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "BadDeployKey"), route
    latest = call(url, "query", "_system/cli/exports:getLatest")
    assert "Could not find public function" in latest["errorMessage"]


def test_a_part_listed_twice_is_refused_not_counted_twice(
    convex_deployment: LocalDeployment, convex_reset: None
) -> None:
    with httpx.Client(
        base_url=convex_deployment.url, headers=convex_deployment.admin_headers
    ) as client:
        token = client.post("/api/import/start_upload").json()["uploadToken"]
        params = {"uploadToken": token, "partNumber": 1}
        part = client.post("/api/import/upload_part", params=params, content=b'{"text": "x"}\n')
        finished = client.post(
            "/api/import/finish_upload",
            json={
                "import": {"format": "jsonLines", "tableName": "notes"},
                "uploadToken": token,
                "partTokens": [part.json()] * 3,
            },
        )
    assert (finished.status_code, finished.json()["code"]) == (400, "InvalidPartTokens")
    assert "each part once" in finished.json()["message"]


class UnboundedImports(LocalDeployment):
    """A deployment given an import limit that is not a number."""

    def _command(self, server: Path) -> list[str]:
        return [*super()._command(server), "--max-import-bytes", "lots"]


def test_an_import_limit_that_is_not_a_number_stops_the_server(
    convex_functions_dir: Path,
) -> None:
    with pytest.raises(
        LocalDeploymentError, match='--max-import-bytes must be a positive integer, got "lots"'
    ):
        UnboundedImports(convex_functions_dir).start()


NOTE = b'{"text": "imported"}\n'


def test_a_newer_import_replaces_one_waiting_for_confirmation(
    convex_deployment: LocalDeployment, convex_reset: None
) -> None:
    first = start_import(convex_deployment, NOTE, format="jsonLines", tableName="notes")
    second = start_import(convex_deployment, NOTE, format="jsonLines", tableName="notes")
    assert import_state(convex_deployment, first) == {
        "state": "failed",
        "error_message": f"Replaced by import {second} before it was confirmed: "
        "run this import again",
    }
    refused = transfer(convex_deployment, "perform_import", first)
    assert (refused.status_code, refused.json()["code"]) == (400, "ImportNotWaiting")
    assert transfer(convex_deployment, "perform_import", second).status_code == 200
    assert notes(convex_deployment) == ["imported"]
    late = transfer(convex_deployment, "cancel_import", second)
    assert (late.status_code, late.json()) == (
        400,
        {"code": "CannotCancelImport", "message": "Cannot cancel an import that has completed"},
    )


def test_a_waiting_import_is_canceled_once(
    convex_deployment: LocalDeployment, convex_reset: None
) -> None:
    import_id = start_import(convex_deployment, NOTE, format="jsonLines", tableName="notes")
    assert transfer(convex_deployment, "cancel_import", import_id).status_code == 200
    canceled = {"state": "failed", "error_message": "Import canceled"}
    assert import_state(convex_deployment, import_id) == canceled
    again = transfer(convex_deployment, "cancel_import", import_id)
    assert (again.status_code, again.json()) == (
        400,
        {"code": "CannotCancelImport", "message": "Cannot cancel an import that has failed"},
    )
    assert notes(convex_deployment) == []


@pytest.mark.parametrize("declared", [10, 1000], ids=["smaller", "larger"])
def test_a_zip_entry_declaring_a_false_size_is_reported_corrupt(
    convex_deployment: LocalDeployment, convex_reset: None, declared: int
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as snapshot:
        snapshot.writestr("notes/documents.jsonl", '{"text": "longer than ten bytes"}\n')
    data = bytearray(archive.getvalue())
    # The uncompressed size, in the local header and in the central directory record.
    struct.pack_into("<I", data, 22, declared)
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, declared)
    state = upload(convex_deployment, bytes(data), format="zip")
    assert state["state"] == "failed"
    assert "corrupt ZIP entry notes/documents.jsonl" in state["error_message"]
