"""The simulated hospital as data: departments, doctors, the item table and care pathways.

Everything the demo posts is drawn from these tables. Item names are sent in Chinese, as
a Chinese HIS sends them; each item keeps its English name beside it (`Item.name_en`),
so this table is the source an English interface can read names from. Prices are CNY
as a public tertiary hospital charges them after national volume-based procurement
(a domestic drug-eluting stent about 700, an imported one outside procurement 7,800).

A pathway says what a DRG's case gets: the operation (or intervention) and its
consumables on the operation day, the drugs, labs, exams and treatments it draws its
daily items from, and how the rest of its cost splits between those categories.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    name_zh: str
    name_en: str
    category: str
    unit_price: Decimal
    max_per_day: int = 1  # the most units one case is charged in a day


@dataclass(frozen=True, slots=True)
class Doctor:
    staff_id: str  # sent as `ordered_by`
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name_zh: str
    name_en: str
    beds: int
    doctors: tuple[Doctor, ...]


@dataclass(frozen=True, slots=True)
class OperationPart:
    """One line of an operation: one of `choices` (item code, weight), a quantity in
    [low, high], present with `probability`."""

    choices: tuple[tuple[str, int], ...]
    low: int = 1
    high: int = 1
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Pathway:
    """The care of one family of DRGs (an ADRG) in one department."""

    name: str
    department: str
    adrg: str  # the DRG codes are adrg + severity digit (1, 3, 5)
    share: int  # relative frequency of admissions within its department
    operation: tuple[OperationPart, ...] = ()
    operation_day: tuple[int, int] = (1, 2)  # days after admission, inclusive range
    drugs: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    exams: tuple[str, ...] = ()
    treatments: tuple[str, ...] = ()
    consumables: tuple[str, ...] = (
        "C-IVSET",
        "C-CANNULA",
        "C-SYRINGE",
        "C-ELECTRODE",
        "C-PUMP-LINE",
    )
    # how the cost beyond beds, nursing and the operation splits by category
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "drug": 0.26,
            "lab": 0.22,
            "exam": 0.16,
            "procedure": 0.24,
            "consumable": 0.12,
        }
    )


SURGICAL_MIX = {"drug": 0.12, "lab": 0.17, "exam": 0.12, "procedure": 0.30, "consumable": 0.29}
INTERVENTION_MIX = {"drug": 0.16, "lab": 0.22, "exam": 0.16, "procedure": 0.28, "consumable": 0.18}
CHEMOTHERAPY_MIX = {"drug": 0.40, "lab": 0.20, "exam": 0.16, "procedure": 0.14, "consumable": 0.10}


def _read_items(path: Path) -> dict[str, Item]:
    """The item table: code, Chinese and English names, category, CNY price, daily most."""
    with path.open(encoding="utf-8", newline="") as table:
        return {
            row["code"]: Item(
                code=row["code"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                category=row["category"],
                unit_price=Decimal(row["unit_price"]),
                max_per_day=int(row["max_per_day"]),
            )
            for row in csv.DictReader(table)
        }


ITEMS: dict[str, Item] = _read_items(Path(__file__).with_name("items.csv"))


def _doctors(prefix: str, *names: tuple[str, str]) -> tuple[Doctor, ...]:
    return tuple(
        Doctor(f"{prefix}{number:03d}", zh, en) for number, (zh, en) in enumerate(names, start=1)
    )


# codes as Chinese HIS write them: the pinyin initials of the department's name
DEPARTMENTS: dict[str, Department] = {
    department.code: department
    for department in (
        Department(
            "XNK", "心血管内科", "Cardiology", 40,
            _doctors("XNK", ("王建国", "Wang Jianguo"), ("李红梅", "Li Hongmei"),
                     ("张志强", "Zhang Zhiqiang"), ("刘洋", "Liu Yang")),
        ),
        Department(
            "GK", "骨科", "Orthopaedics", 36,
            _doctors("GK", ("陈立新", "Chen Lixin"), ("杨帆", "Yang Fan"),
                     ("赵永刚", "Zhao Yonggang")),
        ),
        Department(
            "PWK", "普通外科", "General Surgery", 38,
            _doctors("PWK", ("周明", "Zhou Ming"), ("吴晓峰", "Wu Xiaofeng"),
                     ("孙丽", "Sun Li"), ("黄海涛", "Huang Haitao")),
        ),
        Department(
            "HXNK", "呼吸与危重症医学科", "Respiratory and Critical Care Medicine", 38,
            _doctors("HXNK", ("郑文静", "Zheng Wenjing"), ("马骏", "Ma Jun"),
                     ("胡秀英", "Hu Xiuying")),
        ),
        Department(
            "ZLK", "肿瘤科", "Oncology", 32,
            _doctors("ZLK", ("林伟", "Lin Wei"), ("何敏", "He Min"), ("罗建华", "Luo Jianhua")),
        ),
        Department(
            "SJWK", "神经外科", "Neurosurgery", 26,
            _doctors("SJWK", ("高峰", "Gao Feng"), ("梁晨", "Liang Chen")),
        ),
        Department(
            "SJNK", "神经内科", "Neurology", 36,
            _doctors("SJNK", ("宋雅琴", "Song Yaqin"), ("谢东", "Xie Dong"),
                     ("韩冰", "Han Bing")),
        ),
    )
}  # fmt: skip

_ANGIO = (
    OperationPart((("C-SHEATH", 1),)),
    OperationPart((("C-ANGIOCATH", 1),), 1, 2),
    OperationPart((("D-IODIXANOL", 1),), 1, 2),
    OperationPart((("D-HEPARIN", 1),)),
    OperationPart((("C-COMPRESS", 1),)),
)
_LAPAROSCOPY = (
    OperationPart((("P-ANAES-GEN", 1),)),
    OperationPart((("C-TROCAR", 1),), 3, 4),
    OperationPart((("C-SUTURE", 1),), 2, 4),
)
_CARDIO_LABS = ("L-CBC", "L-BIOCHEM", "L-COAG", "L-TNI", "L-NTBNP", "L-LIPID", "L-DDIMER")
_CARDIO_EXAMS = ("E-ECG", "E-ECHO", "E-CXR", "E-HOLTER")
# coronary disease: antiplatelets (aspirin with one P2Y12 inhibitor), a statin, nitrates,
# anticoagulation, gastric protection
_CORONARY_DRUGS = (
    "D-ASPIRIN", "D-CLOPIDOGREL", "D-TICAGRELOR", "D-ATORVASTATIN", "D-NITROGLYCERIN",
    "D-PANTOPRAZOLE", "D-ENOXAPARIN", "D-NS250", "D-CREATINE-P", "D-XUESAITONG",
    "D-NICORANDIL",
)  # fmt: skip
_SURGICAL_LABS = ("L-CBC", "L-BIOCHEM", "L-COAG", "L-CRP", "L-INFECT", "L-BLOODTYPE", "L-URINE")
_SURGICAL_TREATMENTS = (
    "P-IVDRIP", "P-DRESSING", "P-OXYGEN", "P-ECG-MONITOR", "P-PNEUMATIC", "P-PCA",
)  # fmt: skip
_SURGICAL_CONSUMABLES = (
    "C-IVSET", "C-CANNULA", "C-DRESSING", "C-DRAIN", "C-CATHETER", "C-PUMP-LINE", "C-ELECTRODE",
)  # fmt: skip
_ORTHO_DRUGS = (
    "D-CEFAZOLIN", "D-PARECOXIB", "D-FLURBIPROFEN", "D-ENOXAPARIN", "D-RIVAROXABAN",
    "D-TRANEXAMIC", "D-PANTOPRAZOLE", "D-NS250", "D-ALBUMIN", "D-XUESAITONG",
)  # fmt: skip
# after a major bowel operation: cover for gut flora, nil by mouth with parenteral
# nutrition, analgesia
_BOWEL_DRUGS = (
    "D-CEFUROXIME", "D-ORNIDAZOLE", "D-PANTOPRAZOLE", "D-PARECOXIB", "D-NS250", "D-GS250",
    "D-PN-BAG", "D-SOMATOSTATIN", "D-ALBUMIN", "D-METOCLOPRAMIDE", "D-AMINO-ACIDS",
)  # fmt: skip
# a short laparoscopic stay: prophylaxis, analgesia, fluids (a gallbladder also liver
# protection and antiemetics)
_CHOLECYSTECTOMY_DRUGS = (
    "D-CEFUROXIME", "D-PANTOPRAZOLE", "D-PARECOXIB", "D-NS250", "D-GS250", "D-GLUTATHIONE",
    "D-METOCLOPRAMIDE",
)  # fmt: skip
_APPENDICECTOMY_DRUGS = (
    "D-CEFUROXIME", "D-ORNIDAZOLE", "D-PANTOPRAZOLE", "D-PARECOXIB", "D-NS250", "D-GS250",
)  # fmt: skip
_HERNIA_DRUGS = ("D-CEFAZOLIN", "D-PARECOXIB", "D-FLURBIPROFEN", "D-NS250", "D-GS250")
# bowel obstruction: drip and suck, nutrition, somatostatin to cut secretions; no
# prokinetic (metoclopramide is contraindicated in a mechanical obstruction)
_OBSTRUCTION_DRUGS = (
    "D-CEFUROXIME", "D-ORNIDAZOLE", "D-PANTOPRAZOLE", "D-NS250", "D-GS250", "D-PN-BAG",
    "D-SOMATOSTATIN", "D-AMINO-ACIDS", "D-ALBUMIN",
)  # fmt: skip
# infection and airway: one beta-lactam (with moxifloxacin for atypical cover), mucolytic,
# nebulised steroid and bronchodilator, a steroid for an exacerbation
_RESP_DRUGS = (
    "D-CEFTRIAXONE", "D-PIPTAZO", "D-MOXIFLOXACIN", "D-AMBROXOL", "D-METHYLPRED",
    "D-BUDESONIDE", "D-IPRATROPIUM", "D-DOXOFYLLINE", "D-NS250", "D-THYMALFASIN",
    "D-MEROPENEM",
)  # fmt: skip
# an asthma attack is treated with bronchodilators and steroids, not antibiotics
_ASTHMA_DRUGS = (
    "D-TERBUTALINE", "D-BUDESONIDE", "D-IPRATROPIUM", "D-METHYLPRED", "D-DOXOFYLLINE",
    "D-AMBROXOL", "D-NS250",
)  # fmt: skip
_RESP_LABS = ("L-CBC", "L-BIOCHEM", "L-CRP", "L-PCT", "L-ABG", "L-SPUTUM", "L-DDIMER")
_RESP_EXAMS = ("E-CT-CHEST", "E-CXR", "E-LUNGFUNC", "E-ECG")
_ONCO_LABS = ("L-CBC", "L-BIOCHEM", "L-COAG", "L-TUMOUR", "L-URINE")
_ONCO_EXAMS = ("E-CT-CHEST", "E-CT-ABD", "E-US-ABD", "E-ECG")
_NEURO_LABS = ("L-CBC", "L-BIOCHEM", "L-COAG", "L-CRP", "L-GLUCOSE", "L-DDIMER")
_NEURO_EXAMS = ("E-CT-HEAD", "E-MRI-HEAD", "E-CTA-HEAD", "E-ECG", "E-US-VEIN")
_NEURO_DRUGS = (
    "D-MANNITOL", "D-NIMODIPINE", "D-PANTOPRAZOLE", "D-LEVETIRACETAM", "D-NS250",
    "D-CEFTRIAXONE", "D-ALBUMIN", "D-OXIRACETAM",
)  # fmt: skip
_STROKE_DRUGS = (
    "D-ASPIRIN", "D-CLOPIDOGREL", "D-ATORVASTATIN", "D-EDARAVONE", "D-BUTYLPHTHALIDE",
    "D-PANTOPRAZOLE", "D-NS250", "D-INSULIN", "D-OXIRACETAM", "D-XUESAITONG",
)  # fmt: skip
_CHEMO_SUPPORT = (
    "D-PALONOSETRON", "D-ONDANSETRON", "D-PANTOPRAZOLE", "D-NS250", "D-GS250", "D-GLUTATHIONE",
    "D-THYMALFASIN",
)  # fmt: skip
# pegfilgrastim once per cycle, for regimens that often bring neutropenia
_PEG_GCSF = OperationPart((("D-PEG-GCSF", 1),), probability=0.35)


def _chemotherapy(
    name: str, share: int, *regimen: OperationPart, supportive: tuple[str, ...] = ()
) -> Pathway:
    """A cycle of one regimen: its agents infused on one day (doses for a body surface of
    about 1.7 m2), supportive drugs every day."""
    return Pathway(
        name,
        "ZLK",
        "RE1",
        share,
        operation=(*regimen, OperationPart((("P-CHEMO-PUMP", 1),))),
        operation_day=(1, 2),
        drugs=(*supportive, *_CHEMO_SUPPORT),
        labs=_ONCO_LABS,
        exams=_ONCO_EXAMS,
        treatments=("P-IVDRIP",),
        consumables=("C-IVSET", "C-CANNULA", "C-DRESSING"),
        mix=CHEMOTHERAPY_MIX,
    )


# Items of which a case's standing orders take one at most: one P2Y12 inhibitor, one
# anticoagulant, one NSAID, one broad-spectrum beta-lactam, one 5-HT3 antagonist, one
# long-acting opioid.
ALTERNATIVES: tuple[frozenset[str], ...] = (
    frozenset({"D-CLOPIDOGREL", "D-TICAGRELOR"}),
    frozenset({"D-ENOXAPARIN", "D-RIVAROXABAN"}),
    frozenset({"D-PARECOXIB", "D-FLURBIPROFEN"}),
    frozenset({"D-CEFTRIAXONE", "D-PIPTAZO", "D-MEROPENEM", "D-CEFUROXIME", "D-CEFAZOLIN"}),
    frozenset({"D-PALONOSETRON", "D-ONDANSETRON"}),
    frozenset({"D-OXYCODONE", "D-FENTANYL-PATCH"}),
)

PATHWAYS: tuple[Pathway, ...] = (
    # cardiology: interventions in the cath lab, and medical care
    Pathway(
        "pci",
        "XNK",
        "FM1",
        10,
        operation=(
            OperationPart((("P-PCI", 1),)),
            OperationPart((("C-STENT-DOM", 3), ("C-STENT-IMP", 1))),
            OperationPart((("P-PCI-EXTRA", 1),), probability=0.35),  # a second stent
            OperationPart((("P-IVUS", 1),), probability=0.25),
            OperationPart((("C-BALLOON", 1),), 1, 3),
            OperationPart((("C-GUIDEWIRE", 1),), 1, 2),
            OperationPart((("C-GUIDECATH", 1),)),
            *_ANGIO,
            OperationPart((("D-TIROFIBAN", 1),), probability=0.3),
            OperationPart((("D-BIVALIRUDIN", 1),), 1, 2, probability=0.5),
        ),
        operation_day=(0, 2),
        drugs=_CORONARY_DRUGS,
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-ECG-MONITOR"),
        mix=INTERVENTION_MIX,
    ),
    Pathway(
        "angiography",
        "XNK",
        "FM3",
        14,
        operation=(OperationPart((("P-CAG", 1),)), *_ANGIO),
        operation_day=(1, 2),
        drugs=_CORONARY_DRUGS,
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP",),
        mix=INTERVENTION_MIX,
    ),
    Pathway(
        "pacemaker",
        "XNK",
        "FK",
        3,
        operation=(
            OperationPart((("P-PACEMAKER", 1),)),
            OperationPart((("C-PACEMAKER", 1),)),
            OperationPart((("C-PACE-LEAD", 1),), 2, 2),
            OperationPart((("C-SHEATH", 1),)),
            OperationPart((("D-CEFUROXIME", 1),), 1, 2),
        ),
        drugs=("D-CEFUROXIME", "D-NS250", "D-PANTOPRAZOLE"),
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-DRESSING"),
        mix=INTERVENTION_MIX,
    ),
    Pathway(
        "ablation",
        "XNK",
        "FL",
        4,
        operation=(
            OperationPart((("P-ABLATION", 1),)),
            OperationPart((("C-ABL-CATH", 1),)),
            OperationPart((("C-EP-CATH", 1),), 2, 3),
            OperationPart((("C-SHEATH", 1),), 2, 2),
            OperationPart((("D-HEPARIN", 1),)),
        ),
        drugs=("D-AMIODARONE", "D-NS250", "D-ENOXAPARIN", "D-PANTOPRAZOLE"),
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP",),
        mix=INTERVENTION_MIX,
    ),
    Pathway(
        "myocardial infarction",
        "XNK",
        "FR1",
        10,
        drugs=(*_CORONARY_DRUGS, "D-TIROFIBAN", "D-FUROSEMIDE"),
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-ECG-MONITOR"),
    ),
    Pathway(
        "heart failure",
        "XNK",
        "FR2",
        16,
        drugs=(
            "D-FUROSEMIDE",
            "D-NESIRITIDE",
            "D-LEVOSIMENDAN",
            "D-NITROGLYCERIN",
            "D-PANTOPRAZOLE",
            "D-NS250",
            "D-ATORVASTATIN",
        ),
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-ECG-MONITOR"),
    ),
    Pathway(
        "angina",
        "XNK",
        "FR3",
        24,
        drugs=_CORONARY_DRUGS,
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-ECG-MONITOR"),
    ),
    Pathway(
        "arrhythmia",
        "XNK",
        "FR4",
        11,
        drugs=("D-AMIODARONE", "D-NS250", "D-ENOXAPARIN", "D-RIVAROXABAN", "D-PANTOPRAZOLE"),
        labs=_CARDIO_LABS,
        exams=_CARDIO_EXAMS,
        treatments=("P-IVDRIP", "P-ECG-MONITOR"),
    ),
    # orthopaedics
    Pathway(
        "hip or knee replacement",
        "GK",
        "IC2",
        10,
        operation=(
            OperationPart((("P-THA", 1), ("P-TKA", 1))),  # paired with its prosthesis below
            OperationPart((("P-ANAES-SPINAL", 2), ("P-ANAES-GEN", 1))),
            OperationPart((("C-CEMENT", 1),), 1, 2),
            OperationPart((("C-DRAIN", 1),)),
            OperationPart((("C-SUTURE", 1),), 2, 4),
            OperationPart((("D-TRANEXAMIC", 1),), 2, 4),
        ),
        operation_day=(2, 3),
        drugs=_ORTHO_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-DR-JOINT", "E-US-VEIN", "E-ECG", "E-CXR"),
        treatments=(*_SURGICAL_TREATMENTS, "P-REHAB", "P-CPM"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "internal fixation",
        "GK",
        "IF",
        24,
        operation=(
            OperationPart((("P-ORIF", 1),)),
            OperationPart((("P-ANAES-SPINAL", 1), ("P-ANAES-GEN", 1))),
            OperationPart((("C-PLATE", 1),)),
            OperationPart((("C-SCREW", 1),), 5, 10),
            OperationPart((("C-SUTURE", 1),), 2, 3),
        ),
        operation_day=(1, 3),
        drugs=_ORTHO_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-DR-JOINT", "E-US-VEIN", "E-ECG", "E-CXR"),
        treatments=(*_SURGICAL_TREATMENTS, "P-REHAB", "P-CPM"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "spinal fusion",
        "GK",
        "IB2",
        4,
        operation=(
            OperationPart((("P-SPINE-FUSION", 1),)),
            OperationPart((("P-ANAES-GEN", 1),)),
            OperationPart((("C-PEDICLE", 1),), 4, 6),
            OperationPart((("C-CAGE", 1),), 1, 2),
            OperationPart((("C-ROD", 1),), 2, 2),
            OperationPart((("C-DRAIN", 1),)),
            OperationPart((("C-HAEMOSTAT", 1),), 1, 2),
        ),
        operation_day=(2, 3),
        drugs=_ORTHO_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-MRI-SPINE", "E-ECG", "E-CXR"),
        treatments=(*_SURGICAL_TREATMENTS, "P-REHAB", "P-CPM"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "back pain",
        "GK",
        "IU1",
        20,
        drugs=("D-FLURBIPROFEN", "D-PARECOXIB", "D-METHYLPRED", "D-MANNITOL", "D-NS250"),
        labs=("L-CBC", "L-BIOCHEM", "L-CRP", "L-URINE"),
        exams=("E-MRI-SPINE", "E-DR-JOINT", "E-ECG"),
        treatments=("P-REHAB", "P-IVDRIP"),
        mix={"drug": 0.30, "lab": 0.18, "exam": 0.22, "procedure": 0.24, "consumable": 0.06},
    ),
    Pathway(
        "femoral fracture",
        "GK",
        "IR",
        14,
        drugs=("D-FLURBIPROFEN", "D-ENOXAPARIN", "D-RIVAROXABAN", "D-NS250"),
        labs=("L-CBC", "L-BIOCHEM", "L-COAG", "L-DDIMER"),
        exams=("E-DR-JOINT", "E-US-VEIN", "E-ECG", "E-CXR"),
        treatments=("P-TRACTION", "P-REHAB", "P-IVDRIP"),
    ),
    # general surgery
    Pathway(
        "laparoscopic cholecystectomy",
        "PWK",
        "HC3",
        30,
        operation=(
            OperationPart((("P-LAP-CHOLE", 1),)),
            *_LAPAROSCOPY,
            OperationPart((("C-CLIP", 1),), 3, 6),
            OperationPart((("C-ULTRASCALPEL", 1),), probability=0.4),
        ),
        drugs=_CHOLECYSTECTOMY_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-US-ABD", "E-ECG", "E-CXR"),
        treatments=_SURGICAL_TREATMENTS,
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "appendicectomy",
        "PWK",
        "GD",
        18,
        operation=(
            OperationPart((("P-LAP-APPY", 1),)),
            *_LAPAROSCOPY,
            OperationPart((("C-CLIP", 1),), 2, 4),
        ),
        operation_day=(0, 1),
        drugs=_APPENDICECTOMY_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-US-ABD", "E-CT-ABD", "E-ECG"),
        treatments=_SURGICAL_TREATMENTS,
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "hernia repair",
        "PWK",
        "GE",
        20,
        operation=(
            OperationPart((("P-LAP-HERNIA", 1),)),
            *_LAPAROSCOPY,
            OperationPart((("C-MESH", 1),)),
        ),
        drugs=_HERNIA_DRUGS,
        labs=_SURGICAL_LABS,
        exams=("E-US-ABD", "E-ECG", "E-CXR"),
        treatments=_SURGICAL_TREATMENTS,
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "bowel resection",
        "PWK",
        "GB2",
        6,
        operation=(
            OperationPart((("P-LAP-COLECTOMY", 1),)),
            *_LAPAROSCOPY,
            OperationPart((("C-ULTRASCALPEL", 1),)),
            OperationPart((("C-STAPLER", 1),)),
            OperationPart((("C-STAPLE-LOAD", 1),), 2, 4),
            OperationPart((("C-CIRC-STAPLER", 1),)),
            OperationPart((("C-DRAIN", 1),)),
        ),
        operation_day=(2, 4),
        drugs=_BOWEL_DRUGS,
        labs=(*_SURGICAL_LABS, "L-TUMOUR"),
        exams=("E-CT-ABD", "E-ECG", "E-CXR"),
        treatments=(*_SURGICAL_TREATMENTS, "P-GIDECOMP"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "intestinal obstruction",
        "PWK",
        "GV",
        12,
        drugs=_OBSTRUCTION_DRUGS,
        labs=("L-CBC", "L-BIOCHEM", "L-CRP", "L-COAG"),
        exams=("E-CT-ABD", "E-US-ABD", "E-CXR"),
        treatments=("P-GIDECOMP", "P-IVDRIP"),
    ),
    Pathway(
        "endoscopic resection",
        "PWK",
        "GK1",
        14,
        operation=(
            OperationPart((("P-EMR", 1),)),
            OperationPart((("C-SNARE", 1),), 1, 2),
            OperationPart((("C-HEMOCLIP", 1),), 2, 5),
        ),
        drugs=("D-PANTOPRAZOLE", "D-NS250", "D-GS250", "D-SOMATOSTATIN"),
        labs=("L-CBC", "L-BIOCHEM", "L-COAG", "L-INFECT"),
        exams=("E-US-ABD", "E-ECG"),
        treatments=("P-IVDRIP",),
        mix=INTERVENTION_MIX,
    ),
    # respiratory medicine
    Pathway(
        "pneumonia",
        "HXNK",
        "ES3",
        40,
        drugs=_RESP_DRUGS,
        labs=_RESP_LABS,
        exams=_RESP_EXAMS,
        treatments=("P-NEBULISE", "P-OXYGEN", "P-IVDRIP", "P-AIRWAY", "P-NIV"),
        consumables=("C-IVSET", "C-CANNULA", "C-NEBULISER", "C-ELECTRODE", "C-PUMP-LINE"),
    ),
    Pathway(
        "COPD",
        "HXNK",
        "ET2",
        30,
        drugs=_RESP_DRUGS,
        labs=_RESP_LABS,
        exams=_RESP_EXAMS,
        treatments=("P-NEBULISE", "P-OXYGEN", "P-IVDRIP", "P-AIRWAY", "P-NIV"),
        consumables=("C-IVSET", "C-CANNULA", "C-NEBULISER", "C-ELECTRODE", "C-PUMP-LINE"),
    ),
    Pathway(
        "respiratory failure",
        "HXNK",
        "ET1",
        6,
        drugs=(*_RESP_DRUGS, "D-ALBUMIN"),
        labs=_RESP_LABS,
        exams=_RESP_EXAMS,
        treatments=("P-VENTILATOR", "P-NEBULISE", "P-OXYGEN", "P-IVDRIP", "P-ECG-MONITOR"),
        consumables=("C-IVSET", "C-CANNULA", "C-NEBULISER", "C-ELECTRODE", "C-PUMP-LINE"),
    ),
    Pathway(
        "asthma",
        "HXNK",
        "EV1",
        12,
        drugs=_ASTHMA_DRUGS,
        labs=_RESP_LABS,
        exams=_RESP_EXAMS,
        treatments=("P-NEBULISE", "P-OXYGEN", "P-IVDRIP"),
        consumables=("C-IVSET", "C-CANNULA", "C-NEBULISER", "C-ELECTRODE", "C-PUMP-LINE"),
    ),
    Pathway(
        "bronchoscopy",
        "HXNK",
        "EK1",
        16,
        operation=(
            OperationPart((("P-BRONCHOSCOPY", 1),)),
            OperationPart((("P-BIOPSY", 1),), probability=0.6),
            OperationPart((("C-BIOPSY-FORCEPS", 1),), probability=0.6),
        ),
        drugs=_RESP_DRUGS,
        labs=(*_RESP_LABS, "L-TUMOUR"),
        exams=_RESP_EXAMS,
        treatments=("P-NEBULISE", "P-OXYGEN", "P-IVDRIP", "P-AIRWAY", "P-NIV"),
        consumables=("C-IVSET", "C-CANNULA", "C-NEBULISER", "C-ELECTRODE", "C-PUMP-LINE"),
    ),
    # oncology: chemotherapy cycles (the regimen's agents on one day of the stay),
    # radiotherapy and palliative care; no stents, no operations
    _chemotherapy(  # non-squamous lung cancer
        "chemotherapy: pemetrexed and cisplatin",
        12,
        OperationPart((("D-PEMETREXED", 1),), 2, 2),
        OperationPart((("D-CISPLATIN", 1),), 4, 5),
    ),
    _chemotherapy(  # lung, gastric, head and neck cancer
        "chemotherapy: docetaxel and cisplatin",
        8,
        OperationPart((("D-DOCETAXEL", 1),), 6, 7),
        OperationPart((("D-CISPLATIN", 1),), 4, 5),
        _PEG_GCSF,
    ),
    _chemotherapy(  # colorectal and gastric cancer (XELOX: capecitabine by mouth)
        "chemotherapy: oxaliplatin and capecitabine",
        14,
        OperationPart((("D-OXALIPLATIN", 1),), 4, 5),
        supportive=("D-CAPECITABINE",),
    ),
    _chemotherapy(  # pancreatic cancer
        "chemotherapy: nab-paclitaxel and gemcitabine",
        6,
        OperationPart((("D-PACLITAXEL-ALB", 1),), 2, 3),
        OperationPart((("D-GEMCITABINE", 1),), 2, 2),
        _PEG_GCSF,
    ),
    Pathway(  # diffuse large B-cell lymphoma: a cycle of R-CHOP
        "lymphoma",
        "ZLK",
        "RS1",
        12,
        operation=(
            OperationPart((("D-RITUXIMAB", 1),), 6, 6, probability=0.8),  # CD20-positive
            OperationPart((("D-CYCLOPHOSPHAMIDE", 1),), 6, 7),
            OperationPart((("D-DOXORUBICIN", 1),), 8, 9),
            OperationPart((("D-VINCRISTINE", 1),), 2, 2),
            OperationPart((("P-CHEMO-PUMP", 1),)),
            _PEG_GCSF,
        ),
        operation_day=(1, 2),
        drugs=("D-PREDNISONE", *_CHEMO_SUPPORT),
        labs=_ONCO_LABS,
        exams=_ONCO_EXAMS,
        treatments=("P-IVDRIP",),
        consumables=("C-IVSET", "C-CANNULA", "C-DRESSING"),
        mix=CHEMOTHERAPY_MIX,
    ),
    Pathway(
        "radiotherapy",
        "ZLK",
        "RK1",
        10,
        drugs=("D-ONDANSETRON", "D-PANTOPRAZOLE", "D-NS250", "D-METHYLPRED"),
        labs=_ONCO_LABS,
        exams=_ONCO_EXAMS,
        treatments=("P-IMRT",),
        mix={"drug": 0.22, "lab": 0.16, "exam": 0.14, "procedure": 0.44, "consumable": 0.04},
    ),
    Pathway(
        "palliative care",
        "ZLK",
        "RW1",
        18,
        drugs=(
            "D-MORPHINE",
            "D-OXYCODONE",
            "D-FENTANYL-PATCH",
            "D-PN-BAG",
            "D-ALBUMIN",
            "D-METOCLOPRAMIDE",
            "D-PANTOPRAZOLE",
            "D-NS250",
            "D-GS250",
        ),
        labs=("L-CBC", "L-BIOCHEM", "L-URINE"),
        exams=("E-US-ABD", "E-CXR"),
        treatments=("P-IVDRIP", "P-OXYGEN"),
        mix={"drug": 0.42, "lab": 0.16, "exam": 0.10, "procedure": 0.18, "consumable": 0.14},
    ),
    # neurosurgery
    Pathway(
        "craniotomy",
        "SJWK",
        "BB2",
        8,
        operation=(
            OperationPart((("P-CRANIOTOMY", 1),)),
            OperationPart((("P-ANAES-GEN", 1),)),
            OperationPart((("C-DURA", 1),)),
            OperationPart((("C-SKULL-FIX", 1),), 3, 4),
            OperationPart((("C-HAEMOSTAT", 1),), 1, 3),
            OperationPart((("C-SUTURE", 1),), 3, 5),
            OperationPart((("C-VENT-DRAIN", 1),), probability=0.4),
        ),
        operation_day=(2, 4),
        drugs=_NEURO_DRUGS,
        labs=_NEURO_LABS,
        exams=_NEURO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-DRESSING", "P-ECG-MONITOR"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "trauma craniotomy",
        "SJWK",
        "BB1",
        5,
        operation=(
            OperationPart((("P-HAEMATOMA", 1),)),
            OperationPart((("P-ANAES-GEN", 1),)),
            OperationPart((("C-DURA", 1),), probability=0.6),
            OperationPart((("C-SKULL-FIX", 1),), 3, 4),
            OperationPart((("C-HAEMOSTAT", 1),), 1, 3),
            OperationPart((("C-VENT-DRAIN", 1),), probability=0.5),
        ),
        operation_day=(0, 1),
        drugs=_NEURO_DRUGS,
        labs=_NEURO_LABS,
        exams=_NEURO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-DRESSING", "P-ECG-MONITOR"),
        consumables=_SURGICAL_CONSUMABLES,
        mix=SURGICAL_MIX,
    ),
    Pathway(
        "intracranial haemorrhage",
        "SJWK",
        "BR1",
        24,
        drugs=_NEURO_DRUGS,
        labs=_NEURO_LABS,
        exams=_NEURO_EXAMS,
        treatments=("P-IVDRIP", "P-OXYGEN", "P-ECG-MONITOR", "P-LIMB-TRAINING"),
    ),
    # neurology
    Pathway(
        "cerebral ischaemia",
        "SJNK",
        "BR2",
        60,
        drugs=_STROKE_DRUGS,
        labs=(*_NEURO_LABS, "L-LIPID"),
        exams=_NEURO_EXAMS,
        treatments=("P-IVDRIP", "P-REHAB", "P-LIMB-TRAINING", "P-PNEUMATIC"),
    ),
    Pathway(
        "epilepsy",
        "SJNK",
        "BV1",
        16,
        drugs=("D-VALPROATE", "D-LEVETIRACETAM", "D-NS250", "D-PANTOPRAZOLE"),
        labs=_NEURO_LABS,
        exams=("E-EEG", "E-MRI-HEAD", "E-CT-HEAD", "E-ECG"),
        treatments=("P-IVDRIP",),
    ),
    Pathway(
        "degenerative disorders",
        "SJNK",
        "BU1",
        14,
        # Parkinson's disease and dementia
        drugs=("D-MADOPAR", "D-PRAMIPEXOLE", "D-DONEPEZIL", "D-OXIRACETAM", "D-NS250"),
        labs=_NEURO_LABS,
        exams=("E-MRI-HEAD", "E-CT-HEAD", "E-ECG"),
        treatments=("P-IVDRIP", "P-REHAB", "P-LIMB-TRAINING", "P-PNEUMATIC"),
    ),
)

# what goes with an operation line: a joint's prosthesis, each added stent, the IVUS
# catheter (item code and weight of each choice)
COMPANIONS: dict[str, tuple[tuple[str, int], ...]] = {
    "P-THA": (("C-HIP", 1),),
    "P-TKA": (("C-KNEE", 1),),
    "P-PCI-EXTRA": (("C-STENT-DOM", 3), ("C-STENT-IMP", 1)),
    "P-IVUS": (("C-IVUS", 1),),
}
# a rare transfer: from the department to the one that takes such patients on
TRANSFERS = {"SJNK": "SJWK", "HXNK": "ZLK", "PWK": "ZLK", "XNK": "HXNK", "GK": "PWK"}
