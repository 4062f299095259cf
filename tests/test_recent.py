"""Recent poll answers: what they vouch for, for how long, and how many are kept."""

from __future__ import annotations

import pytest

from flask_convex import recent
from flask_convex.recent import RecentAnswers


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    return now


def test_an_answer_vouches_for_the_same_hash_within_the_window(clock: list[float]) -> None:
    answers = RecentAnswers()
    answers.remember("tasks", "h1", answers.generation)
    clock[0] += 0.9
    assert answers.unchanged("tasks", "h1", window=1.0)
    assert not answers.unchanged("tasks", "h2", window=1.0)
    assert not answers.unchanged("other", "h1", window=1.0)


def test_an_answer_expires_after_the_window(clock: list[float]) -> None:
    answers = RecentAnswers()
    answers.remember("tasks", "h1", answers.generation)
    clock[0] += 1.0
    assert not answers.unchanged("tasks", "h1", window=1.0)


def test_forget_drops_every_answer(clock: list[float]) -> None:
    answers = RecentAnswers()
    answers.remember("tasks", "h1", answers.generation)
    answers.forget()
    assert not answers.unchanged("tasks", "h1", window=1.0)


def test_an_answer_fetched_across_a_write_is_not_remembered(clock: list[float]) -> None:
    answers = RecentAnswers()
    before_the_write = answers.generation
    answers.forget()
    answers.remember("tasks", "h-before-the-write", before_the_write)
    assert not answers.unchanged("tasks", "h-before-the-write", window=1.0)


def test_the_oldest_answers_go_beyond_the_limit(
    clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent, "LIMIT", 2)
    answers = RecentAnswers()
    for key in ("a", "b", "c"):
        answers.remember(key, "h", answers.generation)
    answers.remember("b", "h", answers.generation)
    answers.remember("d", "h", answers.generation)
    assert [answers.unchanged(key, "h", 1.0) for key in "abcd"] == [False, True, False, True]
