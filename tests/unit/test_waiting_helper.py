"""The tests' polling helper: a condition that cannot yet connect is "not yet", a bug in one is not."""

from __future__ import annotations

import io
from urllib.error import HTTPError, URLError

import pytest

from tests.waiting import wait_for


def test_a_connection_refused_while_a_worker_starts_is_retried_until_the_condition_holds() -> None:
    answers = iter([ConnectionRefusedError(111, "Connection refused"), URLError(ConnectionRefusedError(111, "x")),
                    ConnectionResetError(104, "reset"), TimeoutError("timed out"), True])

    def condition() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wait_for(condition, 5, "the worker", every=0)  # the first four polls raised: it kept polling


def test_on_timeout_the_last_io_error_is_named() -> None:
    def condition() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(AssertionError, match=r"timed out waiting for the worker \(last: ConnectionRefusedError"):
        wait_for(condition, 0.05, "the worker", every=0.01)


def test_any_other_exception_in_a_condition_is_a_bug_and_propagates() -> None:
    def condition() -> bool:
        raise KeyError("status")

    with pytest.raises(KeyError):
        wait_for(condition, 5, "a page", every=0)


@pytest.mark.parametrize("error", [
    HTTPError("http://w/console/", 500, "Internal Server Error", None, io.BytesIO()),  # an answer, not "not yet"
    FileNotFoundError(2, "no such file"),
    URLError("unknown url type: htp"),
])
def test_an_error_answer_fails_at_once_even_though_it_is_an_oserror(error: OSError) -> None:
    polls = []

    def condition() -> bool:
        polls.append(1)
        raise error

    with pytest.raises(type(error)):
        wait_for(condition, 5, "a page", every=0)
    assert polls == [1]
