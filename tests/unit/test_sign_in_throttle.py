"""The slowing of failed sign-ins (services/api/ratelimit.py SignInThrottle), on a clock
the test sets: free failures, then blocks that double up to a cap, forgotten after an
hour without failure or at a success, and a bounded number of keys."""

from __future__ import annotations

from services.api.ratelimit import SignInThrottle


def test_the_first_failures_are_free_then_each_blocks_twice_as_long() -> None:
    throttle = SignInThrottle()
    now = 1000.0
    for _ in range(4):
        throttle.failed("name:li", now, free=5)
        assert throttle.wait("name:li", now) == 0.0
    blocks = []
    for _ in range(5):
        throttle.failed("name:li", now, free=5)
        blocks.append(throttle.wait("name:li", now))
        now += blocks[-1]  # the next try once the block is over
        assert throttle.wait("name:li", now) == 0.0
    assert blocks == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert throttle.wait("name:wang", now) == 0.0  # other keys are not touched


def test_blocks_stop_growing_at_fifteen_minutes() -> None:
    throttle = SignInThrottle()
    now = 0.0
    for _ in range(40):
        throttle.failed("address:10.0.0.1", now, free=1)
        now += 1.0
    assert throttle.wait("address:10.0.0.1", now - 1.0) == SignInThrottle.MAX_BLOCK_SECONDS


def test_a_success_or_an_hour_without_failure_starts_afresh() -> None:
    throttle = SignInThrottle()
    for _ in range(6):
        throttle.failed("name:li", 0.0, free=5)
    assert throttle.wait("name:li", 0.0) == 2.0
    throttle.succeeded("name:li")
    assert throttle.wait("name:li", 0.0) == 0.0
    throttle.failed("name:li", 10.0, free=5)
    assert throttle.wait("name:li", 10.0) == 0.0  # one failure since the success

    for _ in range(5):
        throttle.failed("name:wang", 0.0, free=5)
    later = SignInThrottle.FORGET_SECONDS + 1.0
    throttle.failed("name:wang", later, free=5)
    assert throttle.wait("name:wang", later) == 0.0  # counted from one again


def test_it_tracks_a_bounded_number_of_keys_forgetting_stale_ones_first() -> None:
    throttle = SignInThrottle(tracked=3)
    late = SignInThrottle.FORGET_SECONDS + 100.0
    throttle.failed("name:stale", 0.0, free=5)  # an hour without failure by `late`
    throttle.failed("name:recent", late - 10.0, free=5)
    throttle.failed("name:new0", late, free=5)
    assert len(throttle._failures) == 3
    throttle.failed("name:new1", late, free=5)
    assert set(throttle._failures) == {"name:recent", "name:new0", "name:new1"}
    throttle.failed("name:new2", late, free=5)  # none stale: the least recent goes
    assert set(throttle._failures) == {"name:new0", "name:new1", "name:new2"}
