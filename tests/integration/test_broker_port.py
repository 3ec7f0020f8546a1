"""The broker's port: a clash is noticed, not mistaken for a started broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ports import PortInUse, listening_socket, on_a_free_port, owns_listener, spare_port
from services.stack import start_broker
from services.supervisor import stop_child

pytestmark = pytest.mark.integration


def test_a_broker_whose_port_is_taken_fails_with_port_in_use(tmp_path: Path) -> None:
    with listening_socket(spare_port()) as squatter:  # answers connections on the port
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} is already in use"):
            start_broker(port, tmp_path / "broker.log")


def test_a_broker_started_on_a_free_port_owns_its_listener(tmp_path: Path) -> None:
    port, broker = on_a_free_port(lambda port: start_broker(port, tmp_path / "broker.log"))
    try:
        assert owns_listener(broker.pid, port)
    finally:
        stop_child(broker)
