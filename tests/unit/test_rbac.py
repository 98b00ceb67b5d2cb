"""The shipped RBAC file against seed §8.1, and the loader's refusals (no Redis)."""
from __future__ import annotations

from pathlib import Path

import pytest

from auth.rbac import AUTHOR_FIELDS, DASHBOARD_PERMISSION, DEFAULT_RBAC_PATH, RBACError, Role, load_rbac

SEED = {
    "executive": {"view:executive_dashboard", "view:all_metrics", "view:cost_analysis", "export:reports"},
    "qa_lead": {"view:qa_dashboard", "view:quality_metrics", "view:compliance_status", "manage:quality_gates",
                "acknowledge:quality_alerts"},
    "developer": {"view:developer_dashboard", "view:own_reviews", "view:team_metrics", "update:personal_settings"},
    "operations": {"view:operational_dashboard", "view:system_health", "manage:alerts", "view:audit_logs"},
}
EXTRAS = {
    "executive": {"view:alerts", "manage:dashboards", "update:personal_settings"},
    "qa_lead": {"view:alerts", "export:reports", "manage:dashboards", "update:personal_settings"},
    "developer": {"view:alerts"},
    "operations": {"view:alerts", "view:deadletter", "export:reports", "update:personal_settings",
                   "manage:integrations"},
}
ADDED = {"view:alerts", "ingest:events", "manage:users", "view:deadletter", "manage:dashboards", "manage:integrations"}

MINIMAL = """\
permissions:
  view:alerts: List alerts
  ingest:events: Post events
roles:
  viewer:
    permissions: [view:alerts]
sanitization:
  viewer: {hidden_fields: [], pseudonymize_authors: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rbac.yaml"
    path.write_text(text)
    return path


def test_rbac001_seed_roles_have_seed_permissions_plus_documented_extras() -> None:
    rbac = load_rbac(DEFAULT_RBAC_PATH)
    for role, perms in SEED.items():
        assert rbac.roles[role] == frozenset(perms | EXTRAS[role]), role


def test_rbac002_admin_has_everything_producer_only_ingest() -> None:
    rbac = load_rbac()
    declared = set(rbac.permissions)
    assert declared == set().union(*SEED.values()) | ADDED
    assert rbac.roles["admin"] == frozenset(declared)
    assert rbac.roles["producer"] == {"ingest:events"}
    assert {r.value for r in Role} == set(rbac.roles)
    assert all(desc and "\n" not in desc for desc in rbac.permissions.values())
    assert set(DASHBOARD_PERMISSION.values()) <= declared
    only_admin = [r for r, p in rbac.roles.items() if "manage:users" in p]
    assert only_admin == ["admin"]
    assert sorted(r for r, p in rbac.roles.items() if "ingest:events" in p) == ["admin", "producer"]


def test_rbac003_allows_and_permissions_for() -> None:
    rbac = load_rbac()
    assert rbac.allows(["executive"], "view:executive_dashboard")
    assert not rbac.allows(["executive"], "view:qa_dashboard")
    assert rbac.allows(["executive", "qa_lead"], "view:qa_dashboard")
    assert rbac.allows([Role.OPERATIONS], "view:deadletter")
    assert not rbac.allows(["producer"], "view:alerts")
    assert not rbac.allows(["no_such_role"], "view:alerts")
    assert not rbac.allows([], "view:alerts")
    assert not rbac.allows(["admin"], "view:nothing")
    assert rbac.allows("admin", "manage:users"), "a bare string is one role, not its letters"
    assert rbac.permissions_for(["no_such_role", "developer"]) == rbac.roles["developer"]


def test_rbac004_sanitization_decisions() -> None:
    rbac = load_rbac()
    s = rbac.sanitization
    assert s["executive"].pseudonymize_authors and s["operations"].pseudonymize_authors
    assert not s["qa_lead"].pseudonymize_authors and not s["admin"].pseudonymize_authors
    assert s["admin"].hidden_fields == frozenset()
    assert all("data.user" in s[r].hidden_fields for r in SEED), "survey answers stay anonymous"
    assert not (s["qa_lead"].hidden_fields & set(AUTHOR_FIELDS))
    both = rbac.sanitization_for(["executive", "qa_lead"])
    assert not both.pseudonymize_authors and both.hidden_fields == {"data.user"}
    unknown = rbac.sanitization_for(["ghost"])
    assert unknown.pseudonymize_authors and "data.title" in unknown.hidden_fields


def test_rbac005_unknown_permission_names_file_role_and_permission(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("[view:alerts]", "[view:alerts, view:alert]"))
    with pytest.raises(RBACError) as err:
        load_rbac(path)
    message = str(err.value)
    assert str(path) in message and "'viewer'" in message and "'view:alert'" in message


ROLE_X = "  viewer2: {permissions: [view:alerts], colour: red}\n"
ROLE_Y = "  viewer2: {description: no permissions}\n"


@pytest.mark.parametrize("text, expect", [
    (MINIMAL + "roles:\n  other: {permissions: [view:alerts]}\n", "duplicate key 'roles'"),
    (MINIMAL + "extra: 1\n", "unknown key(s) 'extra'"),
    (MINIMAL.replace("sanitization:", ROLE_X + "sanitization:"), "role 'viewer2': unknown key(s) 'colour'"),
    (MINIMAL.replace("sanitization:", ROLE_Y + "sanitization:"),
     "role 'viewer2': 'permissions' must be a non-empty list"),
    (MINIMAL.replace("pseudonymize_authors: true", "pseudonymize_authors: maybe"), "must be true or false"),
])
def test_rbac006_loader_refuses_broken_files(tmp_path: Path, text: str, expect: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RBACError) as err:
        load_rbac(path)
    assert str(path) in str(err.value) and expect in str(err.value)


def test_rbac007_yaml_errors_and_missing_sanitization_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "roles: [unclosed\n")
    with pytest.raises(RBACError, match="invalid YAML") as err:
        load_rbac(path)
    assert str(path) in str(err.value)
    path = write(tmp_path, MINIMAL.replace("sanitization:\n  viewer: {hidden_fields: [], pseudonymize_authors: true}\n",
                                           "sanitization: {}\n"))
    with pytest.raises(RBACError, match="role 'viewer' has no entry"):
        load_rbac(path)
    with pytest.raises(RBACError, match="cannot read"):
        load_rbac(tmp_path / "missing.yaml")


def test_rbac008_developer_scoped_to_its_team_and_roles_merge_row_by_row() -> None:
    from auth.sanitize import KINDS, OtherTeams
    rbac = load_rbac()
    dev = rbac.sanitization["developer"]
    assert dev.other_teams == OtherTeams(frozenset({"data.user", "data.title", "data.message", "data.old", "data.new"}),
                                         True, True, frozenset()), "every kind pseudonymised, none left out"
    assert [r for r, s in rbac.sanitization.items() if s.other_teams is not None] == ["developer"]
    assert rbac.sanitization_for(["developer"]).other_teams == dev.other_teams
    assert rbac.sanitization_for(["developer", "qa_lead"]).other_teams is None, "qa_lead names every team"
    assert rbac.sanitization_for(["developer", "admin"]).other_teams is None
    with_ops = rbac.sanitization_for(["developer", "operations"])
    assert with_ops.hidden_fields == {"data.user"} and not with_ops.pseudonymize_authors
    assert with_ops.other_teams == OtherTeams(frozenset({"data.user", "data.title"}), True, False)
    ghost = rbac.sanitization_for(["ghost"]).other_teams
    assert ghost is not None and ghost.pseudonymize and ghost.drop_undeclared and "data.title" in ghost.hidden_fields
    assert len(KINDS) == 5


OTHER = ("sanitization:\n  viewer:\n    hidden_fields: []\n    pseudonymize_authors: false\n    other_teams:\n"
         "      events: pseudonymize\n      workflows: omit\n      reviews: pseudonymize\n"
         "      defects: pseudonymize\n      violations: pseudonymize\n      free_text: [data.title]\n")
BASE = MINIMAL.split("sanitization:")[0]


def test_rbac009_other_teams_loads_and_omits_per_kind(tmp_path: Path) -> None:
    rbac = load_rbac(write(tmp_path, BASE + OTHER))
    other = rbac.sanitization["viewer"].other_teams
    assert other is not None and other.omit == {"workflows"} and other.hidden_fields == {"data.title"}


@pytest.mark.parametrize("change, expect", [
    (("      free_text:", "      colour: red\n      free_text:"),
     "sanitization of role 'viewer': other_teams: unknown key(s) 'colour'"),
    (("      workflows: omit\n", ""), "other_teams: decide every data kind; missing 'workflows'"),
    (("workflows: omit", "workflows: hide"), "'workflows' must be one of pseudonymize, omit, not 'hide'"),
    (("[data.title]", "data.title"), "'free_text' must be a list of dotted field paths"),
    (("    other_teams:\n      events", "    other_teams: yes\n    x:\n      events"), "unknown key(s) 'x'"),
])
def test_rbac010_other_teams_refused_naming_file_and_role(tmp_path: Path, change: tuple[str, str], expect: str) -> None:
    path = write(tmp_path, BASE + OTHER.replace(*change))
    with pytest.raises(RBACError) as err:
        load_rbac(path)
    assert str(path) in str(err.value) and expect in str(err.value), str(err.value)
