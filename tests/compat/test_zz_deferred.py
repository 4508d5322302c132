"""The checks other tests deferred to the end of the run (see the `deferred` fixture): each
asserts what its test started, once the server had the time it needs."""
from __future__ import annotations

import pytest


def test_deferred_checks(deferred):
    if not deferred:
        pytest.skip("no test deferred a check in this run (run with the tests that defer them)")
    failures = []
    for what, check in deferred:
        try:
            check()
        except AssertionError as e:
            failures.append(f"{what}: {e}")
    assert not failures, failures
