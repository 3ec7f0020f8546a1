"""Sharing the sender between endpoints, so that one cannot hold up the others.

An endpoint is a URL's origin (scheme, host and port): every subscription pointing
there shares its limits, whoever owns it. Per endpoint:

- at most `per_endpoint` messages are in flight at once (the sender as a whole sends
  `concurrency`), so an endpoint that stalls holds a few of the sender's slots for at
  most the timeout, never all of them;
- a circuit breaker: after `breaker_failures` attempts in a row that got no answer
  (timeout, no connection), the endpoint is paused for `breaker_seconds`; then one
  trial message goes: an answer (any status) closes the breaker, another failure
  pauses it again. Messages wait while it is paused: nothing is attempted, so nothing
  counts against their attempts.

State is per process and in memory; `now` is a monotonic clock reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

Verdict = Literal["send", "busy", "paused"]
DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint_of(url: str) -> str:
    """The origin a URL sends to, as a key: `https://host:443`."""
    parsed = httpx.URL(url)
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 0)
    return f"{parsed.scheme}://{parsed.host}:{port}"


@dataclass
class _Endpoint:
    in_flight: int = 0
    failures: int = 0  # attempts in a row without an answer
    paused_until: float = 0.0
    trial: bool = False  # a paused endpoint's one trial message is in flight


class EndpointGate:
    """Admits a message to an endpoint, or says it is busy or paused (see the docstring)."""

    def __init__(self, *, per_endpoint: int, breaker_failures: int, breaker_seconds: float):
        self._per_endpoint = per_endpoint
        self._breaker_failures = breaker_failures
        self._breaker_seconds = breaker_seconds
        self._endpoints: dict[str, _Endpoint] = {}

    def verdict(self, endpoint: str, now: float) -> Verdict:
        """What a message to `endpoint` would be told now (nothing is taken)."""
        state = self._endpoints.get(endpoint)
        if state is None:
            return "send"
        if state.paused_until > now:
            return "paused"
        if state.failures >= self._breaker_failures:
            return "busy" if state.trial or state.in_flight else "send"
        return "busy" if state.in_flight >= self._per_endpoint else "send"

    def admit(self, endpoint: str, now: float) -> Verdict:
        """Take a slot of `endpoint` if it admits a message now."""
        verdict = self.verdict(endpoint, now)
        if verdict == "send":
            state = self._endpoints.setdefault(endpoint, _Endpoint())
            state.in_flight += 1
            if state.failures >= self._breaker_failures:
                state.trial = True
        return verdict

    def finished(self, endpoint: str, *, answered: bool, now: float) -> None:
        """A message admitted to `endpoint` is done; `answered`: it got an HTTP answer."""
        state = self._endpoints.setdefault(endpoint, _Endpoint())
        state.in_flight = max(0, state.in_flight - 1)
        state.trial = False
        if answered:
            state.failures = 0
            state.paused_until = 0.0
        else:
            state.failures += 1
            if state.failures >= self._breaker_failures:
                state.paused_until = now + self._breaker_seconds
        if state.in_flight == 0 and state.failures == 0:
            del self._endpoints[endpoint]  # nothing to remember: a fresh state is the same

    def held_back(self, now: float) -> set[str]:
        """Endpoints that admit nothing now (busy or paused)."""
        return {endpoint for endpoint in self._endpoints if self.verdict(endpoint, now) != "send"}
