"""The caller of a request (a Principal): its role, its scope, and what it may do.

Roles (issue 5; DESIGN.md "Who uses it"):
- hospital_system: posts events, reads and pre-checks the cases of its hospital(s),
  reads their alerts and dead letters;
- department_head: reads, acknowledges and resolves the alerts and cases of their
  department(s) in their hospital(s);
- insurance_office: everything of its hospitals, reviews resolutions, maintains
  reference data and the monitoring rules (department heads read the rules);
- admin: everything, everywhere, and manages identities.

Scope is enforced as "not found": a case or alert outside the caller's scope answers
404, the same as one that does not exist, so nothing tells what others hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, and_, false, true

Role = Literal["hospital_system", "department_head", "insurance_office", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
ALL_HOSPITALS = "*"

Permission = Literal[
    "events:write",
    "cases:read",
    "cases:precheck",
    "alerts:read",
    "alerts:acknowledge",
    "alerts:resolve",
    "alerts:review",
    "subscriptions:manage",
    "reference:read",
    "reference:write",
    "dead_letters:read",
    "identities:manage",
    "rules:read",
    "rules:write",
]

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "hospital_system": frozenset(
        {
            "events:write",
            "cases:read",
            "cases:precheck",
            "alerts:read",
            "subscriptions:manage",
            "reference:read",
            "dead_letters:read",
        }
    ),
    "department_head": frozenset(
        {
            "cases:read",
            "cases:precheck",
            "alerts:read",
            "alerts:acknowledge",
            "alerts:resolve",
            "subscriptions:manage",
            "reference:read",
            "rules:read",
        }
    ),
    "insurance_office": frozenset(
        {
            "cases:read",
            "cases:precheck",
            "alerts:read",
            "alerts:acknowledge",
            "alerts:resolve",
            "alerts:review",
            "subscriptions:manage",
            "reference:read",
            "reference:write",
            "dead_letters:read",
            "rules:read",
            "rules:write",
        }
    ),
    "admin": frozenset(get_args(Permission)),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    identity_id: str
    name: str
    role: Role
    hospitals: frozenset[str]
    departments: frozenset[str] = field(default_factory=frozenset)

    @property
    def all_hospitals(self) -> bool:
        return ALL_HOSPITALS in self.hospitals

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def sees_hospital(self, hospital_id: str) -> bool:
        return self.all_hospitals or hospital_id in self.hospitals

    def sees_department(self, hospital_id: str, department: str | None) -> bool:
        """Whether a case or alert of this hospital and department is in scope."""
        if not self.sees_hospital(hospital_id):
            return False
        if self.role != "department_head":
            return True
        return department is not None and department in self.departments

    def scope_clause(self, hospital_column: Any, department_column: Any) -> ColumnElement[bool]:
        """A SQL condition selecting only rows in scope (for cases, alerts, ...)."""
        conditions: list[ColumnElement[bool]] = []
        if not self.all_hospitals:
            if not self.hospitals:
                return false()
            conditions.append(hospital_column.in_(sorted(self.hospitals)))
        if self.role == "department_head":
            if not self.departments:
                return false()
            conditions.append(department_column.in_(sorted(self.departments)))
        return and_(true(), *conditions)


# The embedded default runs open on loopback: a caller with no credentials acts as this.
LOCAL_ADMIN = Principal(
    identity_id="local", name="local (embedded mode)", role="admin", hospitals=frozenset({"*"})
)
# whoever presents an operator key (DRGWATCH_API_KEYS): admin, to bootstrap a deployment
OPERATOR = Principal(
    identity_id="operator", name="operator key", role="admin", hospitals=frozenset({"*"})
)
