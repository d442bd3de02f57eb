"""The hourly expiry of uploads whose bytes never came."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.core.models import Activity, File
from chalicelib.files import expiry, uploads, worker
from local import recount
from tests.unit.conftest import Api
from tests.unit.files.test_quota import usage
from tests.unit.files.test_uploads import ask, paid, store
from tests.unit.files.test_worker import event_for


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    moment = clock.now() + timedelta(seconds=seconds)
    monkeypatch.setattr(clock, "now", lambda: moment)


def test_an_upload_that_never_arrived_is_deleted_and_frees_its_quota(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    token, user_id = paid(api)
    file_id = ask(api, token, size=1000).data["file"]["id"]
    assert usage(api, token)["files"] == 1

    assert expiry.expire_stale_uploads()["expired"] == 0  # young: its URL may still be used
    later(monkeypatch, settings().pending_upload_expire_seconds + 1)
    assert expiry.expire_stale_uploads() == {"expired": 1, "arrived": 0, "lost_race": 0}

    item = File.get(file_id)
    assert (item.status, item.error, item.listed_user_id) == ("deleted", expiry.NEVER_ARRIVED, None)
    assert (usage(api, token)["files"], usage(api, token)["bytes"]) == (0, 0)
    assert api.call("GET", "/api/files/", token=token).data["items"] == []
    actions = [entry.action for entry in Activity.query(user_id)]
    assert actions[-1] == "file_upload_expired"
    assert recount.drift() == []  # per-status counters and usage moved with it
    assert expiry.expire_stale_uploads()["expired"] == 0  # nothing left, nothing twice


def test_bytes_that_did_arrive_are_left_to_the_worker(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    item = store(file_id)
    later(monkeypatch, settings().pending_upload_expire_seconds + 1)
    assert expiry.expire_stale_uploads() == {"expired": 0, "arrived": 1, "lost_race": 0}
    worker.handle_records([event_for(item)])
    assert File.get(file_id).status == "completed"


def test_old_days_are_caught_up_and_each_run_is_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = paid(api)
    ids = [ask(api, token, filename=f"f{i}.txt").data["file"]["id"] for i in range(3)]
    later(monkeypatch, (expiry.LOOKBACK_DAYS - 1) * 86400)  # the job was down for most of two weeks
    assert expiry.expire_stale_uploads(max_files=2)["expired"] == 2
    assert expiry.expire_stale_uploads(max_files=2)["expired"] == 1
    assert {File.get(file_id).status for file_id in ids} == {"deleted"}


def test_expiry_racing_the_worker_leaves_exactly_one_winner(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object lands after expiry's HEAD: the conditional moves let one of them win, and the
    other's write fails; either way the file ends in one state with exact counters."""
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    later(monkeypatch, settings().pending_upload_expire_seconds + 1)

    def head_then_arrive(item: File) -> int | None:
        answer = uploads.stored_size(item)
        store(item.id)
        worker.handle_records([event_for(item)])  # the worker wins the race
        return answer

    monkeypatch.setattr(expiry, "stored_size", head_then_arrive)
    assert expiry.expire_stale_uploads() == {"expired": 0, "arrived": 0, "lost_race": 1}
    assert File.get(file_id).status == "completed"
    assert recount.drift() == []


def test_the_hourly_schedule_runs_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    later(monkeypatch, settings().pending_upload_expire_seconds + 1)
    event = api.client.events.generate_cw_event("aws.events", "", {}, [], "us-east-1")
    api.client.lambda_.invoke("expire_uploads", event)
    assert File.get(file_id).status == "deleted"
