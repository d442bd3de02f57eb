"""Fair use: one fee buys bounded storage and worker time.

A user holds at most `MAX_FILES_PER_USER` files that are not `deleted`, whose declared sizes
add up to at most `MAX_BYTES_PER_USER`. The User item keeps both sums (`files_held`,
`bytes_held`), moved in the same transaction as the file that changes them, so the limit is a
condition inside the transaction that records a new file: parallel requests cannot pass it
together, and a delete gives the room back in the transaction that deletes. Upload requests
are also limited per user and minute, so nobody can make the API sign posts in a loop.
"""

from __future__ import annotations

from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.accounts import ratelimit
from chalicelib.core import errors
from chalicelib.core.config import settings
from chalicelib.core.models import File, User

WINDOW_SECONDS = 60


def limit_requests(user_id: str) -> None:
    """`429 too_many_requests` past `UPLOAD_REQUESTS_PER_MINUTE` upload requests in the window."""
    config = settings()
    if ratelimit.hit(f"uploads:{user_id}", WINDOW_SECONDS, window_is_open=False) > config.upload_requests_per_minute:
        raise errors.TooManyRequests(
            f"At most {config.upload_requests_per_minute} upload requests a minute; try again shortly.",
            code="too_many_requests",
        )


def refuse_if_over(user: User, size: int) -> None:
    """`403 quota_exceeded` naming the limit that one more file of `size` bytes would break."""
    config = settings()
    files, held_bytes = held(user)
    if files >= config.max_files_per_user:
        raise _exceeded(f"You can keep at most {config.max_files_per_user} files.", "max_files", files)
    if held_bytes + size > config.max_bytes_per_user:
        raise _exceeded(f"Your files may total at most {config.max_bytes_per_user} bytes.", "max_bytes", held_bytes)


def reserve(transaction: TransactWrite, user: User, size: int) -> None:
    """Count one more file of `size` bytes, conditional on the room being there at commit
    (and on the account not being deleted meanwhile: `chalicelib.leaving`)."""
    config = settings()
    room_for_a_file = User.files_held.does_not_exist() | (User.files_held < config.max_files_per_user)
    # Absent means none held: `refuse_if_over` has already refused a first file above the limit.
    room_for_bytes = User.bytes_held.does_not_exist() | (User.bytes_held <= config.max_bytes_per_user - size)
    transaction.update(
        user,
        actions=[User.files_held.add(1), User.bytes_held.add(size)],
        condition=User.id.exists() & User.deleting.does_not_exist() & room_for_a_file & room_for_bytes,
    )


def release(transaction: TransactWrite, item: File) -> None:
    """Give back what a file held, in the transaction that deletes it."""
    transaction.update(User(item.user_id), actions=[User.files_held.add(-1), User.bytes_held.add(-int(item.size))])


def resize(transaction: TransactWrite, item: File, stored_bytes: int) -> None:
    """The worker measured the stored object: from now on the file holds what it really
    stores, not what was declared (the POST policy allows up to `MAX_UPLOAD_BYTES`)."""
    transaction.update(User(item.user_id), actions=[User.bytes_held.add(stored_bytes - int(item.size))])


def held(user: User) -> tuple[int, int]:
    return int(user.files_held or 0), int(user.bytes_held or 0)


def usage_view(user: User) -> dict[str, Any]:
    """`GET /api/me/`'s `usage`: what the user holds and the limits."""
    config = settings()
    files, held_bytes = held(user)
    return {
        "files": files,
        "bytes": held_bytes,
        "max_files": config.max_files_per_user,
        "max_bytes": config.max_bytes_per_user,
    }


def _exceeded(message: str, limit: str, used: int) -> errors.Forbidden:
    config = settings()
    limits = {"max_files": config.max_files_per_user, "max_bytes": config.max_bytes_per_user}
    details = {"limit": limit, "max": limits[limit], "used": used}
    return errors.Forbidden(message, code="quota_exceeded", details=details)
