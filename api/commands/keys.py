"""`vidsight keys create --scope read [--scope ingest] [--name N]`, `keys list`, `keys revoke ID`:
API keys, stored hashed in the server's Redis (the configured one, or the embedded one under the
data dir; a running server's embedded Redis is shared, not restarted)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("keys", help="create, list and revoke API keys")
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key and print its token (shown once)")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=["read", "ingest", "admin"],
        help="read: search, ask, listings, /v1/live; ingest: add streams and videos; admin: everything",
    )
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument("--json", action="store_true", help="print JSON")
    listing = sub.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", help="the 12-hex id (vsk_<id>_...)")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.errors import ApiError
    from api.redis_conn import StandaloneRedis
    from api.security import KeyStore

    conn = StandaloneRedis(settings.redis_url, settings.data_dir, settings.memory.embedded_redis_appendfsync)
    try:
        store = KeyStore(conn.client, settings.api.keys_prefix)
        if args.keys_command == "create":
            token, key = store.create(args.scope, args.name)
            if args.json:
                print(json.dumps({"token": token, "key": key.as_dict()}))
            else:
                print(token)
                print(
                    f"key {key.key_id} ({', '.join(sorted(key.scopes))}); the token is not stored: keep it",
                    file=sys.stderr,
                )
        elif args.keys_command == "list":
            for key in store.all():
                print(json.dumps(key.as_dict()) if args.json else _line(key.as_dict()))
        else:
            key = store.revoke(args.key_id)
            print(json.dumps(key.as_dict()) if args.json else f"revoked {key.key_id}")
    except ApiError as exc:
        print(f"vidsight keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


def _line(key: dict[str, Any]) -> str:
    state = "revoked" if key["revoked_s"] else "active"
    return f"{key['key_id']}  {','.join(key['scopes']):<18} {state:<8} {key['name']}"
