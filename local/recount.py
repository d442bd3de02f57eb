"""`make recount [FIX=1]`: recompute every statistic from the records and report any drift.

The counters are exact by construction (written in the transactions that change the
records); this is the superuser's proof, and the repair for data written before that (or by
hand). The records are read by Query on the day-sharded indexes, from the first recorded day
(or `--since`) to today: never a Scan. With `--fix`, each drift is added to the counters
(an atomic add, so commits made meanwhile keep theirs); run it while the service is quiet,
as a request committed between the two reads looks like drift for that moment.

Works on the stack `make run` started or, with `AWS_ENDPOINT_URL`/real credentials and the
stage's `RESOURCE_PREFIX`, on any other.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from local import env


@dataclass
class Tally:
    """Counter values: the totals by name and each day's fields."""

    totals: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    days: dict[date, dict[str, Decimal]] = field(default_factory=dict)
    usage: dict[str, tuple[int, int]] = field(default_factory=lambda: defaultdict(lambda: (0, 0)))

    def hold(self, user_id: str, size: int) -> None:
        """One more file that is not `deleted` held by `user_id` (its fair-use quota)."""
        files, held_bytes = self.usage[user_id]
        self.usage[user_id] = (files + 1, held_bytes + size)

    def add(self, name: str, amount: Decimal, day: date) -> None:
        from chalicelib.core import counters

        self.totals[name] += amount
        if daily := counters.daily_field(name):
            self.days[day][daily] += amount


@dataclass(frozen=True)
class Drift:
    counter: str  # a total's name, or `<YYYY-MM-DD> <field>`
    counted: Decimal
    recorded: Decimal


def from_records(first: date, last: date) -> Tally:
    """What the records say, one Query per day and status (a COUNT where no sum is needed)."""
    from chalicelib import payments
    from chalicelib.core import counters
    from chalicelib.core.models import File, Payment, User, status_day
    from chalicelib.files import uploads
    from chalicelib.staff import admin

    tally = Tally()
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        tally.days[day] = dict.fromkeys(counters.DAILY_FIELDS, Decimal(0))
        text = day.isoformat()
        tally.add(counters.USERS, Decimal(User.by_day.count(text)), day)
        for status in admin.PAYMENT_STATUSES:
            for payment in Payment.by_status_day.query(status_day(status, text)):
                tally.add(counters.status_key("payments", status), Decimal(1), day)
                if status == payments.Status.SUCCESS:
                    tally.add(counters.revenue_key(payment.currency), Decimal(payment.amount), day)
        for file_status in admin.FILE_STATUSES:
            for item in File.by_status_day.query(status_day(file_status, text)):
                tally.add(counters.status_key("files", file_status), Decimal(1), day)
                if file_status != uploads.FileStatus.DELETED:
                    tally.hold(item.user_id, int(item.size))
                if file_status == uploads.FileStatus.COMPLETED:
                    tally.add(counters.WORDS, Decimal(int(item.word_count or 0)), day)
    return tally


USAGE = ("files_held", "bytes_held")  # the User attributes behind the fair-use quota


def usage_drift(first: date, last: date, recorded: Tally) -> list[Drift]:
    """Users whose quota sums differ from the files they hold (one Query per day on
    `by_day`); the counter is named `user <id> <attribute>`."""
    from chalicelib.core.models import User
    from chalicelib.files import quota

    drifts = []
    for n in range((last - first).days + 1):
        for user in User.by_day.query((first + timedelta(days=n)).isoformat()):
            for name, counted, held in zip(USAGE, quota.held(user), recorded.usage[user.id], strict=True):
                if counted != held:
                    drifts.append(Drift(f"user {user.id} {name}", Decimal(counted), Decimal(held)))
    return drifts


def from_counters(first: date, last: date, names: list[str]) -> Tally:
    from chalicelib.staff import stats

    counted = Tally()
    counted.totals.update({name: Decimal(value) for name, value in stats.values(names).items()})
    counted.days.update(stats.daily_sums(first, last))
    return counted


def drift(since: date | None = None) -> list[Drift]:
    """Every counter whose value differs from what the records say, oldest day first."""
    from chalicelib.core import clock, counters
    from chalicelib.core.config import settings
    from chalicelib.staff import admin, stats

    first, last = since or stats.feed_start(), clock.now().date()
    recorded = from_records(first, last)
    names = [
        counters.USERS,
        counters.WORDS,
        counters.revenue_key(settings().payment_currency),
        *(counters.status_key("payments", status) for status in admin.PAYMENT_STATUSES),
        *(counters.status_key("files", status) for status in admin.FILE_STATUSES),
    ]
    names += sorted(set(recorded.totals) - set(names))
    counted = from_counters(first, last, names)
    drifts = [
        Drift(name, counted.totals[name], recorded.totals[name])
        for name in names
        if counted.totals[name] != recorded.totals[name]
    ]
    for day, fields in recorded.days.items():
        for name, value in fields.items():
            if counted.days[day][name] != value:
                drifts.append(Drift(f"{day.isoformat()} {name}", counted.days[day][name], value))
    return drifts + usage_drift(first, last, recorded)


def fix(drifts: list[Drift]) -> None:
    """Add each drift to its counter, so it says what the records say (atomic adds: commits
    made meanwhile keep theirs)."""
    from chalicelib.core import counters
    from chalicelib.core.models import User

    totals: dict[str, Decimal] = {}
    days: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for found in drifts:
        text, _, daily = found.counter.partition(" ")
        if text == "user":
            user_id, name = daily.split(" ")
            User(user_id).update(actions=[getattr(User, name).add(int(found.recorded - found.counted))])
            continue
        if daily:
            days[date.fromisoformat(text)][daily] = found.recorded - found.counted
        else:
            totals[found.counter] = found.recorded - found.counted
    counters.adjust(totals, days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fix", action="store_true", help="correct the counters that drifted")
    parser.add_argument("--since", type=date.fromisoformat, help="first day to recount (default: first recorded)")
    args = parser.parse_args(argv)
    env.use_local_stack()
    env.require_tables()
    drifts = drift(args.since)
    for found in drifts:
        print(f"drift {found.counter}: counted {found.counted}, records say {found.recorded}")
    if not drifts:
        print("no drift: every counter equals what the records say")
        return 0
    if args.fix:
        fix(drifts)
        print(f"fixed {len(drifts)} counter(s)")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
