"""After a load run, check through the API what must hold, whatever the interleaving was."""

from __future__ import annotations

from typing import Any

import requests

from bench.load.users import Finished


def admin_stats(api: str, admin_bearer: dict[str, str]) -> dict[str, Any]:
    answer = requests.get(f"{api}/api/admin/stats/", headers=admin_bearer, timeout=60)
    answer.raise_for_status()
    return answer.json()


def _get(api: str, path: str, bearer: dict[str, str]) -> Any:
    answer = requests.get(api + path, headers=bearer, timeout=60)
    answer.raise_for_status()
    return answer.json()


def journey_violations(api: str, journey: Finished) -> list[str]:
    """Paid once with one payment_success entry; the one file counted once, with its words."""
    found: list[str] = []
    me = _get(api, "/api/me/", journey.bearer)["user"]
    if not me["has_paid"]:
        found.append("has_paid is false")
    payments = _get(api, "/api/transactions/", journey.bearer)["items"]
    if [(p["transaction_id"], p["status"]) for p in payments] != [(journey.transaction_id, "success")]:
        found.append(f"payments {[(p['transaction_id'], p['status']) for p in payments]}")
    actions = [entry["action"] for entry in _get(api, "/api/activity/?limit=100", journey.bearer)["items"]]
    for action, expected in (("payment_success", 1), ("file_uploaded", 1), ("file_processed", 1)):
        if actions.count(action) != expected:
            found.append(f"{actions.count(action)} {action} entries")
    files = _get(api, "/api/files/", journey.bearer)["items"]
    if [(f["id"], f["status"], f["word_count"]) for f in files] != [(journey.file_id, "completed", journey.words)]:
        found.append(f"files {[(f['id'], f['status'], f['word_count']) for f in files]}")
    return [f"{journey.username}: {violation}" for violation in found]


def stats_violations(
    before: dict[str, Any], after: dict[str, Any], journeys: list[Finished], registered: int
) -> list[str]:
    """Admin stats moved by exactly what the journeys did (nothing else ran meanwhile)."""
    (currency, revenue_before), *_ = before["revenue"].items()
    fee = 100  # PAYMENT_AMOUNT's default, the stack the benchmark starts
    expected = {
        "users": before["users"] + registered,
        "payments.success": before["payments"]["success"] + len(journeys),
        f"revenue.{currency}": f"{float(revenue_before) + fee * len(journeys):.2f}",
        "files.completed": before["files"]["completed"] + len(journeys),
        "words_counted": before["words_counted"] + sum(j.words for j in journeys),
    }
    actual = {
        "users": after["users"],
        "payments.success": after["payments"]["success"],
        f"revenue.{currency}": after["revenue"][currency],
        "files.completed": after["files"]["completed"],
        "words_counted": after["words_counted"],
    }
    return [f"stats {key}: {actual[key]} (expected {value})" for key, value in expected.items() if actual[key] != value]
