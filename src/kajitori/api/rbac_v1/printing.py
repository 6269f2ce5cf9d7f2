"""Table cells shared by RoleBindings and ClusterRoleBindings (upstream: printRoleBinding).

ROLE is "<kind>/<name>"; subjects are split as upstream's
``rbac.SubjectsStrings`` and joined with ", ". It lives in the api layer
because registry resource modules may not import each other.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def subjects_strings(subjects: Any) -> tuple[list[str], list[str], list[str]]:
    """(users, groups, "namespace/name" service accounts) in order of appearance."""
    users: list[str] = []
    groups: list[str] = []
    service_accounts: list[str] = []
    for subject in subjects or []:
        if not isinstance(subject, dict):
            continue
        kind, name = subject.get("kind"), str(subject.get("name") or "")
        if kind == "ServiceAccount":
            service_accounts.append(f"{subject.get('namespace') or ''}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return users, groups, service_accounts


def role_ref_cell(obj: Object) -> str:
    role_ref = obj.get("roleRef")
    role_ref = role_ref if isinstance(role_ref, dict) else {}
    return f"{role_ref.get('kind') or ''}/{role_ref.get('name') or ''}"


def subject_cells(obj: Object) -> list[str]:
    """The wide USERS, GROUPS and SERVICEACCOUNTS cells."""
    return [", ".join(names) for names in subjects_strings(obj.get("subjects"))]
