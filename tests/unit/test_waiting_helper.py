"""The tests' polling helper: a condition that cannot yet connect is "not yet", a bug in one is not."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for


def test_a_connection_refused_while_a_worker_starts_is_retried_until_the_condition_holds() -> None:
    answers = iter([ConnectionRefusedError(111, "Connection refused"), ConnectionResetError(104, "reset"), True])

    def condition() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wait_for(condition, 5, "the worker", every=0)  # the first two polls raised: it kept polling


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
