"""Probe-set labels: every malformed CSV is a bad_labels error, never a server error."""

from __future__ import annotations

import pytest

from app.errors import EvoqError
from app.rounds.service import _parse_labels


def test_labels_parse_with_quoted_line_breaks():
    data = b'filename,mos\n"a\nb.png",3.5\nc.png,2\n'
    assert _parse_labels(data) == {"a\nb.png": 3.5, "c.png": 2.0}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # A bare CR inside a row made the csv module raise: a 500 found by the schema fuzzer.
        (b"filename,mos\r\nx\rpng,2\n", "line 2: mos is not a number"),
        (b"filename,mos\n" + b"a" * 200_000 + b",1\n", "cannot be parsed"),
        (b"\xff\xfe", "not UTF-8"),
        (b"name,score\na.png,3\n", "filename,mos"),
        (b"filename,mos\na.png,good\n", "line 2: mos is not a number"),
    ],
)
def test_malformed_labels_are_bad_labels(data, message):
    with pytest.raises(EvoqError, match=message) as caught:
        _parse_labels(data)
    assert caught.value.code == "bad_labels"
