"""`make user USERNAME=u PASSWORD=p ROLE=user|staff|superuser`: create or update an account.

Works on the stack `make run` started (the endpoints it wrote to `LOCAL_STATE_DIR`, `.local/`
by default: DynamoDB Local on 127.0.0.1:4567) or, with
`AWS_ENDPOINT_URL`/real credentials and the stage's `RESOURCE_PREFIX`, on any other.
"""

from __future__ import annotations

import argparse
import sys

from local import env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--role", default="user", choices=["user", "staff", "superuser"])
    parser.add_argument("--email", default=None)
    args = parser.parse_args(argv)
    env.use_local_stack()
    env.require_tables()

    from chalicelib.accounts import accounts
    from chalicelib.core import errors

    try:
        user, created = accounts.upsert_user(args.username, args.password, args.role, args.email)
    except errors.ApiError as error:
        print(f"error: {error.message} {error.details or ''}", file=sys.stderr)
        return 2
    print(f"{'created' if created else 'updated'} {user.username} ({args.role}) id={user.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
