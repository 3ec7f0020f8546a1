"""One endpoint's limits and circuit breaker, on a clock the test moves."""

from __future__ import annotations

from services.alerting.webhooks.endpoints import EndpointGate, endpoint_of

A = "https://a.example:443"
B = "https://b.example:443"


def gate() -> EndpointGate:
    return EndpointGate(per_endpoint=2, breaker_failures=3, breaker_seconds=60)


def test_an_endpoint_is_its_origin() -> None:
    assert endpoint_of("https://A.example/x?k=1") == endpoint_of("https://a.example:443/y")
    assert endpoint_of("http://a.example/x") != endpoint_of("https://a.example/x")
    assert endpoint_of("https://a.example:8443/x") != endpoint_of("https://a.example/x")


def test_an_endpoint_takes_a_bounded_number_at_once_and_others_are_not_held() -> None:
    endpoints = gate()
    assert [endpoints.admit(A, 0) for _ in range(3)] == ["send", "send", "busy"]
    assert endpoints.admit(B, 0) == "send"
    assert endpoints.held_back(0) == {A}
    endpoints.finished(A, answered=True, now=1)
    assert endpoints.admit(A, 1) == "send"


def test_failures_in_a_row_pause_an_endpoint_then_one_trial_goes() -> None:
    endpoints = gate()
    for now in (0, 1, 2):
        assert endpoints.admit(A, now) == "send"
        endpoints.finished(A, answered=False, now=now + 10)
    assert endpoints.verdict(A, 13) == "paused"
    assert endpoints.verdict(A, 71) == "paused"
    assert endpoints.verdict(B, 13) == "send"
    # the pause is over: one trial, and nothing beside it
    assert endpoints.admit(A, 72.5) == "send"
    assert endpoints.admit(A, 72.5) == "busy"
    endpoints.finished(A, answered=False, now=80)
    assert endpoints.verdict(A, 100) == "paused"
    assert endpoints.admit(A, 141) == "send"
    endpoints.finished(A, answered=True, now=142)  # any answer closes the breaker
    assert [endpoints.admit(A, 142) for _ in range(3)] == ["send", "send", "busy"]


def test_an_answer_between_failures_starts_the_count_again() -> None:
    endpoints = gate()
    for answered in (False, False, True, False, False):
        endpoints.admit(A, 0)
        endpoints.finished(A, answered=answered, now=0)
    assert endpoints.verdict(A, 0) == "send"
    assert endpoints.held_back(0) == set()
