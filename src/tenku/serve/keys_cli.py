"""``tenku keys``: API keys of a server's store. A key sees, downloads and deletes only its own
videos; an ``--admin`` key sees all (as the server's ``--token`` does). Only each key's sha256 is
stored; the key itself is printed once, by ``add``. Works beside a running server (SQLite or
PostgreSQL), which picks a change up within seconds."""

from __future__ import annotations

import argparse
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keys", help="API keys of tenku serve: add, list, revoke",
                       description="Manage the API keys of a tenku serve store. Once a key exists, every /v1 request "
                       "needs a key (or the server's --token). Examples:\n"
                       "  tenku keys add alice --data-dir serve-data       prints the key once\n"
                       "  tenku keys add ops --admin --store postgresql://tenku@db/tenku\n"
                       "  tenku keys list --data-dir serve-data\n"
                       "  tenku keys revoke key_0123456789ab --data-dir serve-data",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ks = k.add_subparsers(dest="action", required=True, metavar="{add,list,revoke}")
    add = ks.add_parser("add", help="a new key (printed once)")
    add.add_argument("name", help="who the key is for (shown in `list`)")
    add.add_argument("--admin", action="store_true", help="the key sees every video, not only its own")
    ks.add_parser("list", help="every key: id, name, admin, created, revoked")
    rev = ks.add_parser("revoke", help="revoke a key at once (its videos stay)")
    rev.add_argument("id", help="the key's id (key_...), as `list` shows it")
    for p in (add, ks.choices["list"], rev):
        p.add_argument("--data-dir", default="serve-data", help="the server's --data-dir (default ./serve-data)")
        p.add_argument("--store", default=None, metavar="postgresql://...", help="the server's --store, if it has one")
        p.set_defaults(func=cmd_keys, command="keys")


def cmd_keys(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tenku.cli import UsageError
    from tenku.serve.store import open_store

    if not args.store and not (Path(args.data_dir) / "jobs.sqlite3").exists() and args.action != "add":
        raise UsageError(f"{args.data_dir}: no tenku serve data dir here (give the server's --data-dir or --store)")
    try:
        store = open_store(args.store, args.data_dir, lock=False)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        if args.action == "add":
            if not args.name.strip():
                raise UsageError("give the key a name (who it is for)")
            key_id, secret = store.add_key(args.name.strip(), args.admin)
            print(f"{key_id} {'(admin) ' if args.admin else ''}for {args.name.strip()}: {secret}")
            print("keep it now: only its hash is stored")
        elif args.action == "list":
            day = lambda t: time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))  # noqa: E731
            for r in store.keys():
                state = f"revoked {day(r['revoked_at'])}" if r["revoked_at"] else "live"
                print(f"{r['id']}  {'admin' if r['admin'] else 'user '}  {day(r['created_at'])}  {state}  {r['name']}")
        elif not store.revoke_key(args.id):
            raise UsageError(f"no live key {args.id!r} (see `tenku keys list`)")
        else:
            print(f"revoked {args.id}")
    finally:
        store.close()
    return 0
