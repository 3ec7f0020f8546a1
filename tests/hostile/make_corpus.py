"""Write the hostile-input corpus for POST /v1/events (deterministic; rerun to refresh).

    .venv/bin/python tests/hostile/make_corpus.py

Every case is one body file, ``NNN-short-name.json`` (the body is valid JSON) or
``NNN-short-name.bin`` (raw bytes, usually not JSON at all), and a sidecar
``NNN-short-name.expect.json`` with the allowed statuses and the words the error must
name. The corpus directory is emptied of generated files and written anew, so the same
source always gives byte-identical files. See corpus/README.md.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"

OCCURRED = "2026-03-02T09:00:00+08:00"
BASE = {"event_id": "E1", "hospital_id": "H001", "case_id": "C1", "occurred_at": OCCURRED}
COST_LINE = {
    "department": "CARD",
    "item_code": "LAB001",
    "item_name": "Blood panel",
    "category": "lab",
    "quantity": "2",
    "unit_price": "10.50",
    "amount": "21.00",
    "ordered_by": "DR7",
    "order_id": "ORD-1",
}
VALID: dict[str, dict[str, Any]] = {
    "admitted": {
        **BASE,
        "type": "admitted",
        "department": "CARD",
        "drg_code": "FM15",
        "insurance_scheme": "employee",
        "admitted_at": OCCURRED,
    },
    "drg_assigned": {**BASE, "type": "drg_assigned", "drg_code": "FM15"},
    "transferred": {**BASE, "type": "transferred", "department": "ICU"},
    "discharged": {**BASE, "type": "discharged", "discharged_at": OCCURRED},
    "charge": {**BASE, "type": "charge", **COST_LINE},
    "credit": {**BASE, "type": "credit", **COST_LINE, "reverses_event_id": "E0"},
}
OPTIONAL = {"drg_code@admitted", "ordered_by", "order_id", "reverses_event_id"}
TIMESTAMPS = {"occurred_at", "admitted_at", "discharged_at"}
MONEY = {"unit_price", "amount"}

# a wrong JSON type for each field; rotated so every kind is used across the corpus
WRONG_TYPES: list[tuple[str, Any]] = [
    ("int", 12345),
    ("list", ["E1"]),
    ("object", {"value": "E1"}),
    ("bool", True),
    ("float", 1.5),
]

Case = tuple[str, bytes, str, list[int], list[str], str | None]
cases: list[Case] = []


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n"


def add_json(
    name: str,
    body: Any,
    mentions: list[str],
    status: list[int] | None = None,
    xfail: str | None = None,
) -> None:
    cases.append((slug(name), dump(body), "json", status or [422], mentions, xfail))


def add_bin(name: str, raw: bytes, mentions: list[str], status: list[int] | None = None) -> None:
    cases.append((slug(name), raw, "bin", status or [422], mentions, None))


def event(kind: str = "charge", **over: Any) -> dict[str, Any]:
    result = copy.deepcopy(VALID[kind])
    result.update(over)
    return result


def charge(**over: Any) -> dict[str, Any]:
    return event("charge", **over)


def without(kind: str, field: str) -> dict[str, Any]:
    result = event(kind)
    del result[field]
    return result


INVALID_JSON = ["body", "JSON"]
VALID_BYTES = json.dumps(charge()).encode()

# --- 1. not JSON at all --------------------------------------------------------------
for cut in (1, 10, len(VALID_BYTES) // 2, len(VALID_BYTES) - 2, len(VALID_BYTES) - 1):
    add_bin(f"truncated at byte {cut}", VALID_BYTES[:cut], INVALID_JSON)
add_bin("trailing comma in object", VALID_BYTES[:-1] + b",}", INVALID_JSON)
add_bin("trailing comma in batch", b'{"events": [' + VALID_BYTES + b",]}", INVALID_JSON)
add_bin("trailing comma after batch", b'{"events": [' + VALID_BYTES + b"],}", INVALID_JSON)
add_bin("utf8 bom before object", b"\xef\xbb\xbf" + VALID_BYTES, INVALID_JSON)
add_bin("nul byte inside a string", VALID_BYTES.replace(b"Blood", b"Bl\x00ood"), INVALID_JSON)
add_bin("nul byte after the object", VALID_BYTES + b"\x00", INVALID_JSON)
add_bin("nul byte before the object", b"\x00" + VALID_BYTES, INVALID_JSON)
add_bin("latin1 byte in item name", VALID_BYTES.replace(b"Blood", b"Bl\xe9od"), INVALID_JSON)
add_bin("utf8 encoded surrogate", VALID_BYTES.replace(b"Blood", b"\xed\xa0\x80"), INVALID_JSON)
add_bin("overlong utf8 slash", VALID_BYTES.replace(b"LAB001", b"LAB\xc0\xaf01"), INVALID_JSON)
add_bin("lone continuation byte", VALID_BYTES.replace(b"CARD", b"CA\x80RD"), INVALID_JSON)
add_bin("utf16 le body", json.dumps(charge()).encode("utf-16-le"), INVALID_JSON)
add_bin("utf16 body with bom", json.dumps(charge()).encode("utf-16"), INVALID_JSON)
add_bin("escaped lone surrogate", VALID_BYTES.replace(b"Blood", b"\\ud800"), INVALID_JSON)
add_bin("single quoted json", VALID_BYTES.replace(b'"', b"'"), INVALID_JSON)
add_bin("unquoted keys", b'{event_id: "E1", type: "charge"}', INVALID_JSON)
add_bin("javascript comment", b"/* hi */" + VALID_BYTES, INVALID_JSON)
add_bin("two concatenated objects", VALID_BYTES + VALID_BYTES, INVALID_JSON)
add_bin("empty body", b"", INVALID_JSON)
add_bin("whitespace only body", b" \n\t ", INVALID_JSON)
add_bin("raw control character in string", VALID_BYTES.replace(b"Blood", b"Bl\x07d"), INVALID_JSON)
add_bin("form urlencoded body", b"event_id=E1&type=charge", INVALID_JSON)
add_bin("xml body", b"<event><event_id>E1</event_id></event>", INVALID_JSON)
add_bin("bare nan token", VALID_BYTES.replace(b'"2"', b"NaN"), INVALID_JSON)
add_bin("bare infinity token", VALID_BYTES.replace(b'"10.50"', b"Infinity"), INVALID_JSON)
add_bin("bare minus infinity token", VALID_BYTES.replace(b'"21.00"', b"-Infinity"), INVALID_JSON)
add_bin(
    "bare nan in batch", b'{"events": [' + VALID_BYTES.replace(b'"2"', b"NaN") + b"]}", INVALID_JSON
)
add_bin("python none and true", b'{"event_id": None, "flag": True}', INVALID_JSON)
add_bin("hex number", VALID_BYTES.replace(b'"2"', b"0x2"), INVALID_JSON)
add_bin("leading zero number", VALID_BYTES.replace(b'"2"', b"02"), INVALID_JSON)
add_bin("plus signed number", VALID_BYTES.replace(b'"2"', b"+2"), INVALID_JSON)
add_bin("deeply nested arrays 100k", b"[" * 100_000 + b"]" * 100_000, INVALID_JSON)
add_bin("deeply nested objects 50k", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, INVALID_JSON)
add_bin("unclosed nested arrays 100k", b"[" * 100_000, INVALID_JSON)
add_bin(
    "deeply nested array in item name",
    VALID_BYTES.replace(b'"Blood panel"', b"[" * 5000 + b"]" * 5000),
    INVALID_JSON,
)

# --- 2. a body that is JSON but not an event or a batch ------------------------------
for name, body in [
    ("body is empty array", []),
    ("body is array of one event", [charge()]),
    ("body is string", "charge"),
    ("body is event as json string", json.dumps(charge())),
    ("body is number", 42),
    ("body is float", 1.5),
    ("body is null", None),
    ("body is true", True),
    ("body is false", False),
]:
    add_json(name, body, ["body"])
add_json("body is empty object", {}, ["type"])
add_json("batch with extra key", {"events": [charge()], "hospital_id": "H001"}, ["hospital_id"])
add_json("batch with two extra keys", {"events": [charge()], "a": 1, "b": 2}, ["a", "b"])
for name, value in [("object", {}), ("string", "E1"), ("null", None), ("number", 1)]:
    add_json(f"events is {name}", {"events": value}, ["events", "list"])
add_json("events is object holding an event", {"events": {"0": charge()}}, ["events", "list"])
add_json("empty batch", {"events": []}, ["events", "empty"])
add_json("batch of non objects", {"events": [1, "x", None, []]}, ["body"])
add_json(
    "batch where every event is invalid",
    {"events": [charge(quantity="0"), charge(event_id="E2", category="food")]},
    ["quantity", "category"],
)
add_json(
    "batch of 1001 events",
    {"events": [charge(event_id=f"E{i}") for i in range(1001)]},
    ["events", "1000"],
    status=[413],
)
add_json(
    "batch of 5000 events",
    {"events": [event("drg_assigned", event_id=f"E{i}") for i in range(5000)]},
    ["events", "1000"],
    status=[413],
)
add_json(
    "10 MB body",
    charge(item_name="A" * (10 * 1024 * 1024)),
    ["body", "large"],
    status=[413],
)

# --- 3. unknown or malformed event types ---------------------------------------------
for number, value in enumerate(["Charge", "charges", "refund", "", "admitted ", "CHARGE", "drg-1"]):
    add_json(f"unknown type {number} {value or 'empty'}", charge(type=value), ["type"])
add_json("type is null", charge(type=None), ["type"])

# --- 4. each required field missing, for every event type ----------------------------
for kind, valid in VALID.items():
    for field in valid:
        if field in OPTIONAL or f"{field}@{kind}" in OPTIONAL:
            continue
        add_json(f"{kind} missing {field}", without(kind, field), [field])

# --- 5. a wrong JSON type in every field, for every event type -----------------------
rotation = 0
for kind, valid in VALID.items():
    for field in valid:
        label, value = WRONG_TYPES[rotation % len(WRONG_TYPES)]
        rotation += 1
        if field in {"quantity"} and label == "int":
            label, value = "list", ["2"]  # an integer quantity is allowed by the contract
        add_json(f"{kind} {field} as {label}", event(kind, **{field: value}), [field])
for field in ["event_id", "hospital_id", "case_id", "occurred_at", "department"]:
    add_json(f"charge {field} as null", charge(**{field: None}), [field])

# --- 6. quantities -------------------------------------------------------------------
for name, quantity, amount in [
    ("zero", "0", "0.00"),
    ("minus zero", "-0", "0.00"),
    ("negative", "-1", "-10.50"),
    ("negative fraction", "-0.5", "5.25"),
    ("over the maximum", "100001", "1050010.50"),
    ("absurd", "999999999999", "21.00"),
    ("five decimal places", "0.00001", "0.00"),
    ("two dots", "1.2.3", "21.00"),
    ("double minus", "--1", "21.00"),
    ("embedded space", "1 000", "10500.00"),
    ("comma decimal", "1,5", "15.75"),
    ("empty string", "", "21.00"),
    ("only a dot", ".", "21.00"),
    ("fullwidth digits", "\uff12", "21.00"),
    ("arabic indic digits", "\u0662", "21.00"),
]:
    add_json(f"quantity {name}", charge(quantity=quantity, amount=amount), ["quantity"])
add_json("credit quantity negative", event("credit", quantity="-2"), ["quantity"])

# --- 7. money ------------------------------------------------------------------------
for name, over, field in [
    ("unit price negative", {"unit_price": "-10.50"}, "unit_price"),
    ("amount negative", {"quantity": "1", "unit_price": "0", "amount": "-0.01"}, "amount"),
    (
        "unit price over a billion",
        {"quantity": "1", "unit_price": "1000000000.01", "amount": "1000000000.01"},
        "unit_price",
    ),
    (
        "amount over a billion",
        {"quantity": "100000", "unit_price": "10001", "amount": "1000100000.00"},
        "amount",
    ),
    ("unit price five places", {"unit_price": "10.50001"}, "unit_price"),
    ("amount three places", {"quantity": "1", "unit_price": "0.125", "amount": "0.125"}, "amount"),
    ("amount four places", {"amount": "21.0000"}, "amount"),
    ("amount many places", {"amount": "21.000000000001"}, "amount"),
    ("unit price as json number", {"unit_price": 10.5}, "unit_price"),
    ("unit price as json integer", {"unit_price": 10}, "unit_price"),
    ("amount as json number", {"amount": 21.0}, "amount"),
    ("amount as json integer", {"amount": 21}, "amount"),
    ("unit price with currency sign", {"unit_price": "\u00a510.50"}, "unit_price"),
    ("amount with thousands separator", {"amount": "2,100.00"}, "amount"),
]:
    add_json(name, charge(**over), [field])

for name, quantity, price, amount in [
    ("amount off by a cent", "2", "10.50", "21.01"),
    ("amount is the unit price", "2", "10.50", "10.50"),
    ("amount zero for a priced line", "2", "10.50", "0.00"),
    ("amount rounded down instead of half up", "2", "0.005", "0.00"),
    ("amount truncated", "3", "0.3333", "0.99"),
    ("amount for a different quantity", "1000", "0.01", "1.00"),
]:
    add_json(
        f"charge {name}", charge(quantity=quantity, unit_price=price, amount=amount), ["amount"]
    )
add_json("credit amount off by a cent", event("credit", amount="20.99"), ["amount", "quantity"])

# --- 8. NaN, Infinity, exponents and huge numbers ------------------------------------
for field in ["quantity", "unit_price", "amount"]:
    for token in ["NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN"]:
        add_json(f"{field} string {token}", charge(**{field: token}), [field])
for field in ["quantity", "unit_price", "amount"]:
    for token in ["1e3", "2E0", "1e-2"]:
        add_json(f"{field} exponent {token}", charge(**{field: token}), [field])
add_json("quantity bare exponent number", charge(quantity=1e3, amount="10500.00"), ["quantity"])
forty = "1234567890123456789012345678901234567890"
for field in ["quantity", "unit_price", "amount"]:
    add_json(f"{field} 40 digit string", charge(**{field: forty}), [field])
add_bin(
    "quantity 40 digit bare number",
    VALID_BYTES.replace(b'"quantity": "2"', b'"quantity": ' + forty.encode()),
    ["quantity"],
)
add_bin(
    "amount 40 digit bare number",
    VALID_BYTES.replace(b'"amount": "21.00"', b'"amount": ' + forty.encode()),
    ["amount"],
)
add_json("quantity 25 characters", charge(quantity="0" * 24 + "2"), ["quantity"])

# --- 9. categories -------------------------------------------------------------------
for number, value in enumerate(["food", "Drug", "LAB", "", "drug ", "drugs", "implant"]):
    add_json(f"category {number} {value or 'empty'}", charge(category=value), ["category"])

# --- 10. over-long strings -----------------------------------------------------------
for field, length in [
    ("event_id", 65),
    ("event_id", 10_000),
    ("hospital_id", 65),
    ("case_id", 1_000),
    ("ordered_by", 65),
    ("order_id", 65),
    ("department", 33),
    ("item_code", 10_000),
    ("item_name", 201),
    ("item_name", 10_000),
]:
    add_json(f"{field} {length} chars", charge(**{field: "A" * length}), [field])
add_json("drg code 33 chars", event("drg_assigned", drg_code="F" * 33), ["drg_code"])
add_json(
    "insurance scheme 1000 chars",
    event("admitted", insurance_scheme="e" * 1000),
    ["insurance_scheme"],
)

# --- 11. identifiers that do not match the identifier pattern ------------------------
HOSTILE_IDS = [
    ("sql quote or", "1' OR '1'='1"),
    ("sql drop table", "C1'; DROP TABLE ingest_ledger;--"),
    ("sql union select", "x UNION SELECT password FROM users"),
    ("sql comment", "C1 --"),
    ("script tag", "<script>alert(1)</script>"),
    ("img onerror", '"><img src=x onerror=alert(1)>'),
    ("path traversal", "../../etc/passwd"),
    ("nul inside", "C\u00001"),
    ("bell inside", "C\u00071"),
    ("escape sequence", "C1\u001b[31mred"),
    ("del inside", "C\u007f1"),
    ("newline inside", "C1\nC2"),
    ("rtl override", "C1\u202egpj.exe"),
    ("zero width space", "C\u200b1"),
    ("cyrillic lookalike", "\u04211"),
    ("mixed cjk", "\u75c5\u4f8b1"),
    ("emoji", "C1\U0001f600"),
    ("leading dash", "-C1"),
    ("inner space", "C 1"),
    ("percent encoded", "C%201"),
    ("empty", ""),
    ("only spaces", "   "),
]
for index, (name, value) in enumerate(HOSTILE_IDS):
    field = ["case_id", "event_id", "hospital_id", "order_id", "ordered_by"][index % 5]
    add_json(f"{field} {name}", charge(**{field: value}), [field])
for name, value in [("sql", "CARD' OR 1=1--"), ("script", "<b>CARD</b>"), ("rtl", "CA\u202eRD")]:
    add_json(f"department {name}", charge(department=value), ["department"])
    add_json(f"item code {name}", charge(item_code=value), ["item_code"])
    add_json(f"drg code {name}", event("drg_assigned", drg_code=value), ["drg_code"])

# --- 12. control characters in names ------------------------------------------------
for name, value in [
    ("nul", "Blood\u0000panel"),
    ("bell", "Blood\u0007panel"),
    ("escape sequence", "Blood \u001b[2J panel"),
    ("backspace", "Blood\u0008\u0008panel"),
    ("delete", "Blood\u007fpanel"),
    ("inner newline", "Blood\npanel"),
    ("inner carriage return", "Blood\rpanel"),
    ("inner tab", "Blood\tpanel"),
    ("only spaces", "    "),
    ("empty", ""),
    ("c1 csi", "Blood \u009b2J panel"),
    ("c1 next line", "Blood\u0085panel"),
    ("rtl override", "Blood panel \u202egnp.exe"),
    ("bidi isolate", "Blood \u2067panel\u2069"),
    ("zero width space", "Blood\u200bpanel"),
    ("inner byte order mark", "Blood\ufeffpanel"),
]:
    add_json(f"item name {name}", charge(item_name=value), ["item_name"])

# --- 13. timestamps ------------------------------------------------------------------
for field, kind in [
    ("occurred_at", "charge"),
    ("admitted_at", "admitted"),
    ("discharged_at", "discharged"),
]:
    for name, value in [
        ("without offset", "2026-03-02T09:00:00"),
        ("epoch seconds number", 1772413200),
        ("epoch millis number", 1772413200000),
        ("epoch seconds string", "1772413200"),
        ("year 0001", "0001-01-01T00:00:00+00:00"),
        ("year 9999", "9999-12-31T23:59:59+00:00"),
    ]:
        add_json(f"{field} {name}", event(kind, **{field: value}), [field])
for name, value in [
    ("date only", "2026-03-02"),
    ("month 13", "2026-13-02T09:00:00+08:00"),
    ("february 30", "2026-02-30T09:00:00+08:00"),
    ("hour 25", "2026-03-02T25:00:00+08:00"),
    ("offset 25 hours", "2026-03-02T09:00:00+25:00"),
    ("words", "yesterday"),
    ("empty", ""),
    ("year 1999", "1999-12-31T23:59:59+08:00"),
    ("year 2101", "2101-01-01T00:00:00+08:00"),
    ("rfc 2822", "Mon, 02 Mar 2026 09:00:00 +0800"),
    ("us format", "03/02/2026 09:00"),
    ("epoch float", 1772413200.5),
]:
    add_json(f"occurred_at {name}", charge(occurred_at=value), ["occurred_at"])

# --- 14. ids that would make a case key ambiguous, or that a path cannot carry --------
# the case key is hospital_id/case_id: hospital H001's case OTHER/C9 would be hospital
# H001/OTHER's case C9, and a case id with a slash could never be opened by its URL
add_json("case id holding a slash", charge(case_id="OTHER/C9"), ["case_id"])
add_json("hospital id holding a slash", charge(hospital_id="H001/OTHER"), ["hospital_id"])
for field in ["event_id", "order_id", "ordered_by"]:
    add_json(f"{field} holding a slash", charge(**{field: "A/B"}), [field])
add_json(
    "credit reverses an id holding a slash",
    event("credit", reverses_event_id="E/0"),
    ["reverses_event_id"],
)
add_json("drg code holding a colon", event("drg_assigned", drg_code="FM:15"), ["drg_code"])
add_json(
    "batch of the two ambiguous cases",
    {
        "events": [
            charge(event_id="E1", case_id="OTHER/C9"),
            charge(event_id="E2", hospital_id="H001/OTHER", case_id="C9"),
        ]
    },
    ["case_id", "hospital_id"],
)

# --- 15. NUL where PostgreSQL text cannot hold it --------------------------------------
for field in ["event_id", "hospital_id", "case_id", "department", "item_code"]:
    add_json(f"{field} only a nul", charge(**{field: "\u0000"}), [field])
add_json("nul in a field name", {**charge(), "pri\u0000ority": "high"}, ["pri"])
add_json("nul in the type", charge(type="charge\u0000"), ["type"])
add_json(
    "batch where every event holds a nul",
    {"events": [charge(event_id=f"E{n}", case_id=f"C{n}\u0000") for n in range(3)]},
    ["case_id"],
)

# --- 16. times that cannot have happened yet (far enough ahead to stay so) ----------
add_json(
    "occurred_at in 2099",
    charge(occurred_at="2099-01-01T00:00:00+08:00"),
    ["occurred_at", "future"],
)
add_json(
    "admitted_at in 2099",
    event("admitted", admitted_at="2099-12-31T23:00:00+08:00"),
    ["admitted_at", "future"],
)
add_json(
    "discharged_at in 2098",
    event("discharged", discharged_at="2098-06-01T00:00:00+00:00"),
    ["discharged_at", "future"],
)

# --- 17. unknown fields on an event --------------------------------------------------
for kind in VALID:
    add_json(f"{kind} unknown field", event(kind, priority="high"), ["priority"])
add_json("charge with __proto__ field", charge(__proto__={"admin": True}), ["__proto__"])
add_json("credit field on a charge", charge(reverses_event_id="E0"), ["reverses_event_id"])


def write() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.iterdir():
        if re.match(r"^\d{3}-", old.name):
            old.unlink()
    seen: set[str] = set()
    for number, (name, body, ext, status, mentions, xfail) in enumerate(cases, start=1):
        stem = f"{number:03d}-{name}"
        if name in seen:  # e.g. "NaN" and "nan" give the same slug
            name, stem = f"{name}-{number}", f"{stem}-{number}"
        seen.add(name)
        (CORPUS / f"{stem}.{ext}").write_bytes(body)
        expect: dict[str, Any] = {"status": status, "mentions": mentions}
        if xfail:
            expect["xfail"] = xfail
        (CORPUS / f"{stem}.expect.json").write_text(json.dumps(expect, indent=2) + "\n")
    print(f"wrote {len(cases)} cases to {CORPUS}")


if __name__ == "__main__":
    write()
