"""`Memo` keeps what it is given, and never more than its limit."""

from __future__ import annotations

from flask_convex.memo import Memo


def test_a_memo_keeps_values_and_empties_when_full() -> None:
    memo: Memo[str, int] = Memo(3)
    assert [memo.keep(key, len(key)) for key in ("a", "bb", "ccc")] == [1, 2, 3]
    assert memo == {"a": 1, "bb": 2, "ccc": 3}
    assert memo.keep("dddd", 4) == 4
    assert memo == {"dddd": 4}
    memo.keep("dddd", 5)
    assert memo == {"dddd": 5}
