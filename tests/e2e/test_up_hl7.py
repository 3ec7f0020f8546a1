"""`drgwatch up` takes HL7 v2 over MLLP: a framed DFT is acknowledged and moves its case;
an item the profile does not categorise takes its category from the sample chargemaster."""

from __future__ import annotations

import re
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.up import banner_ports, start_up, stop_up, wait_for_banner

pytestmark = pytest.mark.e2e
START, END = b"\x0b", b"\x1c\x0d"


def dft(control_id: str, case_id: str, when: str) -> bytes:
    return "\r".join(
        [
            f"MSH|^~\\&|HIS|H001|DRGWATCH|DRGWATCH|{when}||DFT^P03|{control_id}|P|2.5",
            f"PV1|1|I|W3|||||||CARD|||||||||{case_id}|01",
            f"FT1|1|{control_id}-1||{when}||CG|HC01^Drug-eluting stent^CONS|||1|8650.00|8650.00"
            "|CARD||||||||DR01^Li",
            # no coding system: a lab test by the sample chargemaster
            f"FT1|2|{control_id}-2||{when}||CG|L-CTNT^Troponin T|||1|65.00|65.00"
            "|CARD||||||||DR01^Li",
        ]
    ).encode()


def send(port: int, message: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(START + message + END)
        answer = b""
        while not answer.endswith(END):
            chunk = connection.recv(65536)
            assert chunk, answer
            answer += chunk
    return answer[1 : -len(END)].decode()


def test_drgwatch_up_takes_a_dft_over_mllp(tmp_path: Path) -> None:
    drgwatch = Path(sys.executable).with_name("drgwatch")
    output = tmp_path / "up.out"
    argv = [str(drgwatch), "up", "--port", "0", "--broker-port", "0", "--mllp-port", "0"]
    up = start_up([*argv, "--data-dir", str(tmp_path / "var"), "--partitions", "2"], output)
    try:
        banner = wait_for_banner(up, output)
        port, _ = banner_ports(banner)
        found = re.search(r"HL7 v2 \(MLLP\)\s+127\.0\.0\.1:(\d+)", banner)
        assert found, banner
        when = (datetime.now(UTC) + timedelta(hours=8, minutes=-5)).strftime("%Y%m%d%H%M%S")
        ack = send(int(found.group(1)), dft("E2E-1", "V-E2E", when))
        assert "\rMSA|AA|E2E-1" in ack, ack
        assert "\rERR|" not in ack, ack  # every item categorised

        case = f"http://127.0.0.1:{port}/v1/hospitals/H001/cases/V-E2E"
        deadline = time.monotonic() + 60
        total, by_category = None, {}
        while time.monotonic() < deadline:
            response = httpx.get(case, timeout=5)
            if response.status_code == 200:
                total = Decimal(response.json()["total_cost"])
                by_category = response.json()["cost_by_category"]
                if total == Decimal("8715.00"):
                    break
            time.sleep(0.25)
        assert total == Decimal("8715.00"), output.read_text()
        assert {k: Decimal(v) for k, v in by_category.items()} == {
            "consumable": Decimal("8650.00"),
            "lab": Decimal("65.00"),
        }
    finally:
        assert stop_up(up) == 0, output.read_text()
