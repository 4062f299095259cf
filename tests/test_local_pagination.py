"""`.paginate()` on the local deployment: exact page ends, read limits, bad cursors."""

from __future__ import annotations

from typing import Any

import pytest
from _local import call

pytestmark = pytest.mark.integration


def page(url: str, **options: Any) -> Any:
    result = call(url, "query", "pages:notes", {"paginationOpts": {"cursor": None, **options}})
    assert result["status"] == "success", result
    return result["value"]


@pytest.fixture
def six_notes(convex_url: str) -> list[str]:
    """Note ids, oldest first; `pages:notes` lists newest first."""
    return [
        call(convex_url, "mutation", "counter:addNote", {"text": f"note {i}"})["value"]
        for i in range(6)
    ]


@pytest.mark.usefixtures("six_notes")
def test_pages_follow_each_other_to_the_end(convex_url: str) -> None:
    first = page(convex_url, numItems=4)
    second = page(convex_url, numItems=4, cursor=first["continueCursor"])
    assert (first["page"], first["isDone"]) == (["note 5", "note 4", "note 3", "note 2"], False)
    assert (second["page"], second["isDone"]) == (["note 1", "note 0"], True)


def test_an_end_cursor_pins_the_page_end_even_when_its_document_is_deleted(
    convex_url: str, six_notes: list[str]
) -> None:
    first = page(convex_url, numItems=2)
    end = first["continueCursor"]
    call(convex_url, "mutation", "counter:addNote", {"text": "newest"})
    pinned = page(convex_url, numItems=2, endCursor=end)
    assert pinned["page"] == ["newest", "note 5", "note 4"]
    assert (pinned["continueCursor"], pinned["isDone"]) == (end, False)
    call(convex_url, "mutation", "counter:removeNote", {"id": six_notes[4]})
    after_delete = page(convex_url, numItems=2, endCursor=end)
    assert after_delete["page"] == ["newest", "note 5"]
    assert (after_delete["continueCursor"], after_delete["isDone"]) == (end, False)
    rest = page(convex_url, numItems=10, cursor=end)
    assert rest["page"] == ["note 3", "note 2", "note 1", "note 0"]


@pytest.mark.usefixtures("six_notes")
def test_maximum_rows_read_splits_the_page(convex_url: str) -> None:
    result = page(convex_url, numItems=6, maximumRowsRead=4)
    assert result["page"] == ["note 5", "note 4", "note 3", "note 2"]
    assert (result["pageStatus"], result["isDone"]) == ("SplitRequired", False)
    upper = page(convex_url, numItems=6, endCursor=result["splitCursor"])
    lower = page(
        convex_url, numItems=6, cursor=result["splitCursor"], endCursor=result["continueCursor"]
    )
    assert upper["page"] + lower["page"] == result["page"]


@pytest.mark.usefixtures("six_notes")
def test_maximum_bytes_read_splits_the_page(convex_url: str) -> None:
    result = page(convex_url, numItems=6, maximumBytesRead=1)
    assert (result["page"], result["pageStatus"]) == (["note 5"], "SplitRequired")


@pytest.mark.parametrize("option", ["cursor", "endCursor"])
def test_a_cursor_not_from_paginate_is_refused(convex_url: str, option: str) -> None:
    result = call(
        convex_url,
        "query",
        "pages:notes",
        {"paginationOpts": {"cursor": None, "numItems": 2, option: "not a cursor"}},
    )
    assert result["status"] == "error"
    # The backend's words (convex-backend's keybroker), with the code the clients look for.
    assert "Uncaught Error: InvalidCursor: Failed to parse cursor" in result["errorMessage"]
    assert "JSON" not in result["errorMessage"]
