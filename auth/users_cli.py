"""`cli.py users ...` and `cli.py tokens ...`: manage accounts and API tokens from a shell.

    users add NAME --role ROLE [--role ...] [--password-stdin]
    users passwd NAME [--password-stdin]
    users disable NAME | users enable NAME | users list
    tokens create NAME --role ROLE [--role ...] [--created-by WHO]
    tokens revoke ID | tokens list

Handlers take `(args, services)`; `services` needs `.redis`, `.keys` and optionally
`.settings` (for `rbac_path`). Exit status 2 for a usage error such as an unknown role,
1 when the store refuses the change. Passwords are read with getpass or from stdin and
never printed; a token's secret is printed exactly once, on creation.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn

from auth.rbac import DEFAULT_RBAC_PATH, RBACError, load_rbac
from data.users import TokenStore, UserError, UserStore, check_password_policy

Handler = Callable[[argparse.Namespace, Any], None]


def register(subparsers: Any) -> None:
    """Add the `users` and `tokens` commands to an argparse subparsers object.

    Each leaf parser gets `fn=<handler>` and `needs_services=True` as defaults.
    """
    users = subparsers.add_parser("users", help="manage user accounts")
    users_sub = users.add_subparsers(dest="users_cmd", required=True)
    p = users_sub.add_parser("add", help="create a user (asks for the password twice)")
    p.add_argument("name")
    p.add_argument("--role", action="append", required=True, help="a role from the RBAC file; repeatable")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    _leaf(p, cmd_users_add)
    p = users_sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    _leaf(p, cmd_users_passwd)
    p = users_sub.add_parser("disable", help="refuse sign-in and end the user's sessions")
    p.add_argument("name")
    _leaf(p, cmd_users_disable)
    p = users_sub.add_parser("enable", help="allow a disabled user to sign in again")
    p.add_argument("name")
    _leaf(p, cmd_users_enable)
    _leaf(users_sub.add_parser("list", help="list users"), cmd_users_list)

    tokens = subparsers.add_parser("tokens", help="manage API tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_cmd", required=True)
    p = tokens_sub.add_parser("create", help="create an API token and print its secret once")
    p.add_argument("name", help="what the token is for, e.g. ci-producer")
    p.add_argument("--role", action="append", required=True, help="a role from the RBAC file; repeatable")
    p.add_argument("--created-by", help="who asked for it (default: cli:<login>)")
    _leaf(p, cmd_tokens_create)
    p = tokens_sub.add_parser("revoke", help="revoke an API token for good")
    p.add_argument("id")
    _leaf(p, cmd_tokens_revoke)
    _leaf(tokens_sub.add_parser("list", help="list API tokens"), cmd_tokens_list)


_AUDITED = {"cmd_users_add": "admin.user_added", "cmd_users_passwd": "admin.password_changed",
            "cmd_users_disable": "admin.user_disabled", "cmd_users_enable": "admin.user_enabled",
            "cmd_tokens_create": "admin.token_created", "cmd_tokens_revoke": "admin.token_revoked"}


def _leaf(parser: argparse.ArgumentParser, fn: Handler) -> None:
    action = _AUDITED.get(fn.__name__)
    if action is None:
        parser.set_defaults(fn=fn, needs_services=True)
        return

    def audited(args: argparse.Namespace, services: Any) -> None:
        fn(args, services)            # exits on failure: only done changes are recorded
        log = getattr(services, "audit", None)
        if log is not None:
            target = getattr(args, "name", None) or getattr(args, "id", None)
            log.record(action, f"cli:{getpass.getuser()}", details={"target": target,
                                                                    "roles": getattr(args, "role", None)})
    parser.set_defaults(fn=audited, needs_services=True)


def cmd_users_add(args: argparse.Namespace, services: Any) -> None:
    roles = _known_roles(args.role, services)
    store = UserStore(services.redis, services.keys)
    if store.get(args.name) is not None:     # before asking for a password that would be wasted
        _fail(f"user {args.name!r} already exists")
    password = _read_new_password(args.password_stdin)
    try:
        user = store.add(args.name, roles, password)
    except UserError as exc:
        _fail(str(exc))
    print(f"user {user.name} added with role(s) {', '.join(user.roles)}")


def cmd_users_passwd(args: argparse.Namespace, services: Any) -> None:
    store = UserStore(services.redis, services.keys)
    if store.get(args.name) is None:
        _fail(f"no user {args.name!r}")
    password = _read_new_password(args.password_stdin)
    try:
        store.set_password(args.name, password)
    except UserError as exc:
        _fail(str(exc))
    print(f"password of {args.name} changed; their existing sessions are ended")


def cmd_users_disable(args: argparse.Namespace, services: Any) -> None:
    _set_disabled(args, services, True)
    print(f"user {args.name} disabled; their existing sessions are ended")


def cmd_users_enable(args: argparse.Namespace, services: Any) -> None:
    _set_disabled(args, services, False)
    print(f"user {args.name} enabled")


def _set_disabled(args: argparse.Namespace, services: Any, disabled: bool) -> None:
    try:
        UserStore(services.redis, services.keys).set_disabled(args.name, disabled)
    except UserError as exc:
        _fail(str(exc))


def cmd_users_list(args: argparse.Namespace, services: Any) -> None:
    users = UserStore(services.redis, services.keys).list()
    if not users:
        print("no users")
        return
    rows = [(u.name, ",".join(u.roles), "disabled" if u.disabled else "active", _when(u.created),
             _when(u.password_changed)) for u in users]
    _table(("NAME", "ROLES", "STATUS", "CREATED", "PASSWORD CHANGED"), rows)


def cmd_tokens_create(args: argparse.Namespace, services: Any) -> None:
    roles = _known_roles(args.role, services)
    created_by = args.created_by or f"cli:{_login()}"
    try:
        token_id, secret = TokenStore(services.redis, services.keys).create(args.name, roles, created_by)
    except UserError as exc:
        _fail(str(exc))
    print(f"token {token_id} ({args.name}) created with role(s) {', '.join(roles)}", file=sys.stderr)
    print("Copy the secret now: it is shown only this once and cannot be recovered.", file=sys.stderr)
    print(secret)   # alone on stdout, so it can be piped into a secret store


def cmd_tokens_revoke(args: argparse.Namespace, services: Any) -> None:
    try:
        TokenStore(services.redis, services.keys).revoke(args.id)
    except UserError as exc:
        _fail(str(exc))
    print(f"token {args.id} revoked; its open live connections are closed")


def cmd_tokens_list(args: argparse.Namespace, services: Any) -> None:
    tokens = TokenStore(services.redis, services.keys).list()
    if not tokens:
        print("no API tokens")
        return
    rows = [(t.id, t.name, ",".join(t.roles), f"revoked {_when(t.revoked)}" if t.revoked else "active",
             t.created_by, _when(t.created), _when(t.last_used) if t.last_used else "never") for t in tokens]
    _table(("ID", "NAME", "ROLES", "STATUS", "CREATED BY", "CREATED", "LAST USED"), rows)


def _known_roles(roles: Sequence[str], services: Any) -> list[str]:
    settings = getattr(services, "settings", None)
    path = getattr(settings, "rbac_path", None) or DEFAULT_RBAC_PATH
    try:
        rbac = load_rbac(path)
    except RBACError as exc:
        _fail(str(exc), 2)
    unknown = [r for r in roles if r not in rbac.roles]
    if unknown:
        _fail(f"unknown role(s) {', '.join(map(repr, unknown))}; known roles: {', '.join(sorted(rbac.roles))}", 2)
    return list(dict.fromkeys(roles))


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            _fail("the passwords do not match")
    try:
        check_password_policy(password)
    except UserError as exc:
        _fail(str(exc))
    return password


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:   # no login name in some containers; the field is informational
        return "unknown"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)
