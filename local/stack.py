"""`make run`: the whole local stack in the foreground; Ctrl-C stops all of it.

Parts (each honours the contract's environment variables):
- DynamoDB: AWS's DynamoDB Local (`local.dynamodb_local`) on `DYNAMODB_PORT` (4567), its
  tables in `.local/dynamodb/`; with `EMULATOR=moto` (a machine without Java) moto's instead;
- S3 and SQS: moto (`local.emulator`, a process of its own) on `EMULATOR_PORT` (4566), on
  disk before it acknowledges a change; see docs/local-stack.md for why not LocalStack here;
- none of these when `AWS_ENDPOINT_URL`, `LOCALSTACK_HOST` or `AWS_ENDPOINT_URL_<SERVICE>`
  points elsewhere: resources are created there if missing;
- the aamarPay sandbox emulator (127.0.0.1:8001), unless `AAMARPAY_BASE_URL` is set;
- the API and dashboard on `API_PORT` (8000): `API_PROCESSES` processes on one socket
  (`local.api`), as Lambda runs concurrent requests in containers of their own;
- the SQS workers, the outbox stream's relay and the scheduled jobs, run as Lambda would run
  them, in this process (the stream's read positions kept in `stream-checkpoints.json`).

State lives in `.local/` (`LOCAL_STATE_DIR`); `--fresh` (`make run FRESH=1`) deletes it first.
Stopping lets the API answer what it is answering and the workers finish their message.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from local import console, dynamodb_local, env, processes
from local.state import IncompatibleState, StateDir

PROJECT_DIR = Path(__file__).resolve().parent.parent
STOP_WAIT_SECONDS = 30  # for a request being answered, or a message being processed, to finish
ENGINES = ("dynamodb-local", "localstack", "moto")  # EMULATOR=; docs/local-stack.md says what each keeps
SERVICES = ("dynamodb", "s3", "sqs")  # what the app stores


def _configure_environment(state: StateDir) -> None:
    env.apply_defaults()
    os.environ.setdefault("API_PORT", "8000")
    os.environ.setdefault("JWT_SIGNING_KEY", state.signing_key())
    os.environ.setdefault("LOCAL_STATE_DIR", str(state.path))  # the mail outbox lives below it


def _external(service: str) -> str | None:
    """The endpoint someone configured for a service (not started here), if any."""
    return os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL") or None


def _label(services: Iterable[str]) -> str:
    return " ".join("DynamoDB" if service == "dynamodb" else service.upper() for service in services)


def _quiet_http_logs() -> None:
    for name in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _die_with_parent() -> None:
    """Runs in each child before it starts: if the stack is killed, so is the child (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    options.setdefault("cwd", PROJECT_DIR)
    return subprocess.Popen(command, preexec_fn=_die_with_parent, **options)  # noqa: S603, PLW1509


class Stack:
    """Start and stop every part; usable from tests as well as from `make run`."""

    def __init__(
        self, *, schedule_seconds: float, visibility_timeout: int, state: StateDir, engine: str = ENGINES[0]
    ) -> None:
        if engine not in ENGINES:
            raise SystemExit(f"EMULATOR={engine!r} is not one of {', '.join(ENGINES)}")
        self.schedule_seconds = schedule_seconds
        self.visibility_timeout = visibility_timeout
        self.state = state
        self.engine = engine
        self._stoppers: list[Any] = []
        self._api_processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> dict[str, str]:
        """Start every part; raises IncompatibleState before anything listens."""
        _configure_environment(self.state)
        _quiet_http_logs()
        where: dict[str, str] = {}
        endpoints = {service: url for service in SERVICES if (url := _external(service))}
        for url in dict.fromkeys(endpoints.values()):
            where[_label(s for s, at in endpoints.items() if at == url)] = f"{url} (external)"
        # Both engines start side by side: a JVM and a Python process, about a second each.
        waits: list[Callable[[], None]] = []
        if "dynamodb" not in endpoints and self.engine != "moto":
            endpoints["dynamodb"] = self._start_dynamodb_local(waits)
            where["DynamoDB"] = f"{endpoints['dynamodb']} (DynamoDB Local, {self.state.dynamodb_path})"
        on_localstack = tuple(s for s in ("s3", "sqs") if s not in endpoints) if self.engine == "localstack" else ()
        if on_localstack:
            url = self._start_localstack(on_localstack, waits)
            endpoints.update(dict.fromkeys(on_localstack, url))
            where[_label(on_localstack)] = f"{url} (LocalStack, in memory: a restart starts it empty)"
        on_moto = tuple(service for service in SERVICES if service not in endpoints)
        if on_moto:
            url = self._start_emulator(on_moto)
            endpoints.update(dict.fromkeys(on_moto, url))
            where[_label(on_moto)] = f"{url} (moto)"
        for wait in waits:
            wait()
        for service, url in endpoints.items():
            os.environ[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = endpoints["dynamodb"]  # served beside the tables
        self.state.write_endpoints(endpoints)
        where["State"] = f"{self.state.path} (FRESH=1 starts empty)"
        shown = "shown here too" if console.verbose() else "VERBOSE=1 shows them here too"
        where["Logs"] = f"{console.log_path(self.state.path)} (JSON logs, EMF metrics; {shown})"
        if not os.environ.get("AAMARPAY_BASE_URL"):
            from local.sandbox import SandboxServer

            sandbox = SandboxServer(port=int(os.environ.get("SANDBOX_PORT", "8001")))
            sandbox.start()
            self._stoppers.append(sandbox.stop)
            os.environ["AAMARPAY_BASE_URL"] = sandbox.url
            where["aamarPay"] = sandbox.url
        else:
            where["aamarPay"] = os.environ["AAMARPAY_BASE_URL"] + " (external)"

        from local import bootstrap

        created = bootstrap.ensure_all(visibility_timeout=self.visibility_timeout)
        self._start_background(created["queues"], created["streams"])
        where["API"] = f"http://localhost:{os.environ['API_PORT']}/api/ ({self.api_processes} processes)"
        where["Dashboard"] = f"http://localhost:{os.environ['API_PORT']}/dashboard/"
        return where

    def _start_dynamodb_local(self, waits: list[Callable[[], None]]) -> str:
        """Its endpoint; `waits` gets what to call to wait until it answers."""
        port = int(os.environ.get("DYNAMODB_PORT", "4567"))
        if self.state.snapshot_holds("dynamodb"):
            raise IncompatibleState(
                f"The local state in {self.state.path} keeps its DynamoDB tables in moto (EMULATOR=moto). Nothing "
                "was loaded. Run `make run EMULATOR=moto`, or start empty with `make run FRESH=1` (this deletes it)."
            )
        process = dynamodb_local.launch(port, self.state.dynamodb_path, spawn=spawn)
        self._stoppers.append(lambda: dynamodb_local.stop(process))
        waits.append(lambda: dynamodb_local.wait_until_answering(process, port, self.state.dynamodb_path))
        return f"http://127.0.0.1:{port}"

    def _start_localstack(self, services: tuple[str, ...], waits: list[Callable[[], None]]) -> str:
        from local import localstack

        port = int(os.environ.get("EMULATOR_PORT", "4566"))
        volume = self.state.path / "localstack"
        process = localstack.launch(port, volume, spawn, ",".join(services))
        self._stoppers.append(lambda: localstack.stop(process))
        waits.append(lambda: localstack.wait_until_ready(process, port, volume, ",".join(services)))
        return f"http://127.0.0.1:{port}"

    def _start_emulator(self, services: tuple[str, ...]) -> str:
        if "dynamodb" in services and self.state.dynamodb_path.exists():
            raise IncompatibleState(
                f"The local state in {self.state.path} keeps its DynamoDB tables in DynamoDB Local. Nothing was "
                "loaded. Run `make run` without EMULATOR=moto, or start empty with `make run FRESH=1` "
                "(this deletes it)."
            )
        port = int(os.environ.get("EMULATOR_PORT", "4566"))
        emulator = _start_emulator(port, self.state, services)
        self._stoppers.append(lambda: _stop_process(emulator))
        return env.emulator_url()

    def _start_background(self, queue_urls: dict[str, str], stream_arns: dict[str, str]) -> None:
        import app as application
        from local.runner import Checkpoints, Scheduler, sqs_pollers, stream_pollers

        checkpoints = Checkpoints(self.state.path / "stream-checkpoints.json")
        workers: list[Any] = [
            *sqs_pollers(application, queue_urls),
            *stream_pollers(application, stream_arns, checkpoints),
            Scheduler(
                application.reconcile_payments, name="reconcile-payments", interval_seconds=self.schedule_seconds
            ),
            Scheduler(application.expire_uploads, name="expire-uploads", interval_seconds=self.schedule_seconds),
        ]
        for worker in workers:
            worker.start()
        self._stoppers.append(lambda: _stop_all(workers))

    @property
    def api_processes(self) -> int:
        return int(os.environ.get("API_PROCESSES") or os.cpu_count() or 1)

    def start_api(self) -> None:
        """Last, once every part behind it is up: from now on requests are answered."""
        from local.api import listening_socket

        sock = listening_socket(os.environ.get("API_HOST", "127.0.0.1"), int(os.environ["API_PORT"]))
        for _ in range(self.api_processes):
            command = [sys.executable, "-m", "local.api", "--fd", str(sock.fileno())]
            self._api_processes.append(spawn(command, pass_fds=(sock.fileno(),)))
        self._stoppers.append(lambda: _stop_api(self._api_processes, sock))
        _wait_until_answering(int(os.environ["API_PORT"]), self._api_processes)

    def wait(self) -> None:
        """Until an API process ends by itself (then the stack stops: a crash is not hidden)."""
        while all(process.poll() is None for process in self._api_processes):
            time.sleep(0.5)
        raise RuntimeError("an API process exited; stopping the stack")

    def stop(self) -> None:
        """Newest part first: the API stops taking requests, workers finish, the engines stop."""
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                print(f"stop failed: {error}", file=sys.stderr)
        self._stoppers.clear()


def _wait_until_answering(port: int, processes: list[subprocess.Popen[bytes]]) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("an API process exited while starting")
        try:
            requests.get(f"http://127.0.0.1:{port}/api/health/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("the API did not start answering")


def _start_emulator(port: int, state: StateDir, services: tuple[str, ...]) -> subprocess.Popen[bytes]:
    """`local.emulator` in its own process; returns once it listens (raises IncompatibleState
    if it refused the kept state: its message is already on stderr)."""
    command = [sys.executable, "-m", "local.emulator", "--port", str(port), "--state-dir", str(state.path)]
    process = spawn([*command, "--services", ",".join(services)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if process.returncode == 2:
                raise IncompatibleState("The emulator refused the kept local state (see above).")
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        if processes.listens_on(process.pid, port):  # its own socket: not a process that took the port first
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the emulator did not start listening")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the emulator writes its last snapshot, an API process finishes its requests)."""
    processes.stop(process, grace_seconds=STOP_WAIT_SECONDS)


def _stop_api(processes: list[subprocess.Popen[bytes]], sock: socket.socket) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        _stop_process(process)
    sock.close()


def _stop_all(workers: list[Any]) -> None:
    """Signal every worker, then wait for each to finish what it holds (a message left
    unfinished stays on the queue and is redelivered after the restart)."""
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.join(timeout=STOP_WAIT_SECONDS)


def _interrupt(*_: Any) -> None:
    """SIGTERM (and SIGINT, even where a parent shell ignores it) stops the stack like Ctrl-C;
    a second one while stopping is ignored, so the last snapshot is always taken."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _still_stopping)
    raise KeyboardInterrupt


def _still_stopping(*_: Any) -> None:
    print("Stopping: finishing work in progress and saving state...", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule-seconds", type=float, default=float(os.environ.get("SCHEDULE_SECONDS", "30")))
    parser.add_argument("--visibility-timeout", type=int, default=int(os.environ.get("QUEUE_VISIBILITY_TIMEOUT", "30")))
    parser.add_argument("--emulator", choices=ENGINES, default=os.environ.get("EMULATOR") or ENGINES[0])
    parser.add_argument("--fresh", action="store_true", help="delete the kept local state first (make run FRESH=1)")
    args = parser.parse_args(argv)
    state = StateDir(Path(os.environ.get("LOCAL_STATE_DIR") or PROJECT_DIR / ".local"))
    if args.fresh:
        state.wipe()
    console.route(state.path)
    stack = Stack(
        schedule_seconds=args.schedule_seconds,
        visibility_timeout=args.visibility_timeout,
        state=state,
        engine=args.emulator,
    )
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        where = stack.start()
        for part, url in where.items():
            print(f"{part:<13} {url}", flush=True)
        stack.start_api()
        print("Ready. Press Ctrl-C to stop.", flush=True)
        stack.wait()
    except IncompatibleState as refused:
        print(refused, file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        pass
    except RuntimeError as failed:
        print(f"error: {failed}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
