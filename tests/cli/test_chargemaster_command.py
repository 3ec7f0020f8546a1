"""`drgwatch chargemaster` as a user runs it, against a data directory as `drgwatch up`
leaves it (with the sample chargemaster): a bad file refused whole with each line and
field named, a good one imported as a new version, versions listed, an item shown."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.test_data_commands import drgwatch

PROVINCE = (
    "item_code,name,category,unit_price,equivalence_group,unit,name_en\n"
    "C-STENT-IMP,进口药物洗脱支架,consumable,11500.00,DES,个,Imported stent\n"
    "C-STENT-DOM,国产药物洗脱支架,consumable,720.00,DES,个,Domestic stent\n"
    "L-CBC,血常规,lab,18.00,,次,\n"
)
BAD = (
    "item_code,name,category,unit_price,equivalence_group,unit\n"
    "C-STENT-IMP,进口药物洗脱支架,consumable,11500.00,DES,个\n"
    "C-STENT-DOM,国产药物洗脱支架,implant,720.00,DES,个\n"
    "L-CBC,血常规,lab,18.001234,,次\n"
)


async def test_import_list_and_item_through_a_data_directory(
    tmp_path: Path, data_dir: Path
) -> None:
    (tmp_path / "province.csv").write_text(PROVINCE, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(BAD, encoding="utf-8")
    where = ("--data-dir", str(data_dir))

    listed = await drgwatch(tmp_path, "chargemaster", "list", *where)
    assert listed.code == 0, listed.err
    assert re.search(r"^ *1 +2026-01-01 +\* +28 +valid today, SAMPLE ", listed.out, re.M)

    refused = await drgwatch(
        tmp_path, "chargemaster", "import", "bad.csv", "--valid-from", "2026-06-01", *where
    )
    assert refused.code != 0 and "Traceback" not in refused.err
    assert "bad.csv: refused, nothing imported:" in refused.err
    assert "  line 3.category: Input should be 'drug'" in refused.err
    assert "  line 4.unit_price: has more than 4 decimal places" in refused.err
    unchanged = await drgwatch(tmp_path, "chargemaster", "list", *where)
    assert len(unchanged.out.strip().splitlines()) == 3  # header, the sample, today

    stored = await drgwatch(
        tmp_path, "chargemaster", "import", "province.csv", "--valid-from", "2026-06-01",
        "--name", "省价格 2026", *where,
    )  # fmt: skip
    assert stored.code == 0, stored.err
    assert stored.out.startswith(
        "imported chargemaster 2 '省价格 2026' valid from 2026-06-01 for every hospital"
        " (3 items; equivalence groups: 1)"
    )
    assert "pre-checks are priced by chargemaster 2 '省价格 2026' (from 2026-06-01)\n" in stored.out

    listed = await drgwatch(tmp_path, "chargemaster", "list", *where)
    rows = [line.split()[:4] for line in listed.out.splitlines()[1:3]]
    assert rows == [["2", "2026-06-01", "*", "3"], ["1", "2026-01-01", "*", "28"]]
    assert "valid today" in listed.out.splitlines()[1]

    shown = await drgwatch(tmp_path, "chargemaster", "item", "C-STENT-IMP", *where)
    assert shown.code == 0, shown.err
    assert shown.out.startswith("C-STENT-IMP 进口药物洗脱支架 (consumable): 11500.00 per 个")
    assert re.search(r"^C-STENT-DOM +720\.00 +国产药物洗脱支架$", shown.out, re.M)
    earlier = await drgwatch(
        tmp_path, "chargemaster", "item", "C-STENT-IMP", "--on", "2026-05-31", *where
    )
    assert "11800.00" in earlier.out and "[SAMPLE]" in earlier.out
