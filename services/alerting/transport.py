"""Faust's aiokafka transport with a shorter fetch wait.

Faust fixes the consumer's `fetch_max_wait_ms` at 1500. A broker that does not answer a
long poll early when records arrive (the embedded tansu broker, seen here) then holds
every idle partition's events for up to 1.5 s; a short wait keeps the 202-to-state time
well under a second at the cost of a few more fetch requests while idle.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka at start()
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def install(app: Any) -> None:
    """Use this transport for the app's consumer (before the app starts)."""
    app.transport = Transport(app.conf.broker_consumer, app)
