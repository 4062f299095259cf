"""Text and vector search on the local deployment, by Convex's documented rules."""

from __future__ import annotations

from typing import Any

import pytest
from _local import call

pytestmark = pytest.mark.integration

ARTICLES = [
    ("the quick brown fox", "ann"),
    ("a fox, a fox and another fox", "bob"),
    ("slow brown bears sleep", "ann"),
    ("foxglove is a flower", "bob"),
]


@pytest.fixture
def articles(convex_url: str) -> list[str]:
    return [
        call(
            convex_url,
            "mutation",
            "search:add",
            {"body": body, "author": author, "embedding": [float(i), 1.0, 0.0]},
        )["value"]
        for i, (body, author) in enumerate(ARTICLES)
    ]


def find(url: str, text: str, **args: Any) -> list[str]:
    result = call(url, "query", "search:find", {"text": text, **args})
    assert result["status"] == "success", result
    found: list[str] = result["value"]
    return found


@pytest.mark.usefixtures("articles")
def test_results_come_in_relevance_order(convex_url: str) -> None:
    assert find(convex_url, "fox") == [
        "a fox, a fox and another fox",
        "the quick brown fox",
        "foxglove is a flower",
    ]


@pytest.mark.usefixtures("articles")
def test_only_the_last_term_is_a_prefix(convex_url: str) -> None:
    # "brow" is not the last term, so it must match a whole word: nothing has "brow".
    assert find(convex_url, "brow sleep") == ["slow brown bears sleep"]
    assert find(convex_url, "sleep brow") == ["slow brown bears sleep", "the quick brown fox"]


@pytest.mark.usefixtures("articles")
def test_terms_ignore_case_and_punctuation_and_filters_apply(convex_url: str) -> None:
    assert find(convex_url, "FOX!", author="ann") == ["the quick brown fox"]


@pytest.mark.usefixtures("articles")
def test_vector_search_refuses_the_wrong_dimension(convex_url: str) -> None:
    good = call(convex_url, "action", "search:similar", {"vector": [3.0, 1.0, 0.0]})
    assert good["status"] == "success"
    assert len(good["value"]) == 2
    bad = call(convex_url, "action", "search:similar", {"vector": [1.0, 0.0]})
    assert bad["status"] == "error"
    assert "Uncaught Error: Expected a vector with dimensions 3, received 2." in bad["errorMessage"]
