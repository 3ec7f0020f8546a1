"""Reading a chargemaster CSV: every row checked, each bad line and field named, the
whole file refused for one; and the shipped sample."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.reference.chargemaster.service import items_from_csv, sample_chargemaster
from services.reference.exceptions import ChargemasterRefused

GOOD_CSV = (
    "item_code,name,category,unit_price,equivalence_group,unit,name_en\n"
    "C-STENT-IMP,进口药物洗脱支架,consumable,11800.00,DES,个,Imported stent\n"
    "C-STENT-DOM,国产药物洗脱支架,consumable,770.00,DES,个,\n"
    "L-CBC,血常规,lab,20,,,\n"
)


def test_a_good_file_reads_every_row_with_empty_cells_absent() -> None:
    items = items_from_csv(GOOD_CSV)
    assert [(i.item_code, i.unit_price, i.equivalence_group, i.unit) for i in items] == [
        ("C-STENT-IMP", Decimal("11800.00"), "DES", "个"),
        ("C-STENT-DOM", Decimal("770.00"), "DES", "个"),
        ("L-CBC", Decimal("20"), None, None),
    ]
    assert items[0].name_en == "Imported stent" and items[1].name_en is None
    # columns in any order, only the four required
    reordered = items_from_csv("unit_price,category,name,item_code\n1.50,drug,片,D1\n")
    assert reordered[0].item_code == "D1" and reordered[0].unit_price == Decimal("1.50")


def test_a_bad_file_is_refused_whole_naming_each_line_and_field() -> None:
    text = (
        "item_code,name,category,unit_price,equivalence_group,unit\n"
        "OK,fine,drug,1.00,,\n"
        "BAD CODE,x,drug,1.00,,\n"
        "P1,x,drug,1.234567,,\n"
        "P2,x,gadget,-3,,\n"
        '"MULTI","two\nlines",drug,,,\n'
        "S1,stent,consumable,100,G,个\n"
        "S2,stent,consumable,90,G,盒\n"
        "OK,again,drug,2.00,,\n"
        "X,y,drug,1,,,extra\n"
    )
    with pytest.raises(ChargemasterRefused) as refused:
        items_from_csv(text)
    problems = [(e.field, e.reason) for e in refused.value.errors]
    fields = [field for field, _ in problems]
    assert fields == [
        "line 3.item_code",
        "line 4.unit_price",
        "line 5.category",
        "line 5.unit_price",
        # a quoted cell over two lines (a line break is no part of a name): the row is
        # named by the line it ends on
        "line 7.name",
        "line 7.unit_price",
        "line 9",
        "line 10",
        "line 11",
    ]
    reasons = dict(problems)
    assert "more than 4 decimal places" in reasons["line 4.unit_price"]
    assert reasons["line 9"] == "unit 盒 differs from 个 of S1 in equivalence group G"
    assert reasons["line 10"] == "item_code OK appears before, at item 0"
    assert reasons["line 11"] == "more cells than columns"
    assert "line 3.item_code" in refused.value.message


def test_a_header_without_the_required_columns_is_refused_at_line_one() -> None:
    with pytest.raises(ChargemasterRefused) as refused:
        items_from_csv("code,name,price,colour\nA,b,1,red\n")
    assert [(e.field, e.reason) for e in refused.value.errors] == [
        ("line 1", "the header lacks item_code, category, unit_price"),
        ("line 1", "unknown columns code, price, colour"),
    ]
    with pytest.raises(ChargemasterRefused) as empty:
        items_from_csv("item_code,name,category,unit_price\n")
    assert empty.value.errors[0].field == "file"


def test_the_shipped_sample_reads_and_is_marked_as_sample() -> None:
    sample = sample_chargemaster()
    assert "SAMPLE" in sample.name and sample.hospital_id is None
    groups = {item.equivalence_group for item in sample.items} - {None}
    assert {
        "CORONARY-DES",
        "ATORVASTATIN-20MG",
        "CLOPIDOGREL-75MG",
        "HIP-TOTAL",
        "KNEE-TOTAL",
    } <= groups
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in item.name) for item in sample.items)
