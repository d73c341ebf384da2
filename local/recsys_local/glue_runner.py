"""Glue job runs on the local stack: `StartJobRun` really runs the job's script with local Spark.

moto records the run (and its id); this executor then downloads the job's ``ScriptLocation`` from the local S3,
merges the job's ``DefaultArguments`` with the run's ``Arguments`` and runs ``python <script> --JOB_NAME <name>
--key value ...`` in a subprocess whose AWS endpoint is the local stack. ``GetJobRun``/``GetJobRuns`` answers carry
the real state (``STARTING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` with ``ErrorMessage``, ``TIMEOUT``,
``STOPPED``), ``ExecutionTime`` and ``LogGroupName``. As in Glue:

* the driver's output streams to CloudWatch Logs (``/aws-glue/jobs/output``, stream = run id) every few seconds
  while it runs, so the provider's ``verbose=True`` shows progress in the task log, not only at the end;
* ``MaxConcurrentRuns`` is checked and the new run registered under one lock, so two simultaneous ``StartJobRun``
  calls (a task retry racing its first try) cannot both start;
* the run's ``Timeout`` (minutes; else the job's, else 2,880) is enforced: the driver is stopped and the run ends in
  ``TIMEOUT`` (``GLUE_TIMEOUT_UNIT_SECONDS`` shortens the minute for tests);
* the driver gets a minimal environment (``PATH``, locale, Java and Spark settings, the local endpoint), not the
  endpoint's own, which may hold other services' secrets;
* ``UpdateJob`` (which moto lacks) replaces the job's definition;
* ``--extra-files`` (comma-separated ``s3://`` URLs) are copied into the script's working directory before it
  starts, where Glue puts them (the source's CA trust store reaches the job this way).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.wrappers import Response

from recsys.config import aws_region
from recsys_local import service_roles
from recsys_local.aws_server import AwsCall, Forward, json_response
from recsys_local.clients import local_client
from recsys_local.settings import ExecutorSettings

log = logging.getLogger("recsys_local.glue")

LOG_GROUP = "/aws-glue/jobs"
ACTIVE_STATES = ("STARTING", "RUNNING", "STOPPING")
#: Glue's default job timeout, in minutes (48 hours).
DEFAULT_TIMEOUT_MINUTES = 2880
#: Variables the driver inherits from the endpoint's environment (everything else is left out).
DRIVER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "MARIADB_JDBC_JAR", "VIRTUAL_ENV")
DRIVER_ENV_PREFIXES = ("SPARK_", "PYSPARK_")
#: Seconds between two shipments of a running driver's output.
LOG_SHIP_SECONDS = 3.0


@dataclass
class LocalRun:
    job_name: str
    run_id: str
    state: str = "STARTING"
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None
    process: subprocess.Popen[bytes] | None = None
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    #: How much of driver.log CloudWatch has, and whether the run's log streams exist yet.
    log_offset: int = 0
    log_streams: bool = False

    def execution_time(self) -> int:
        return int((self.finished or time.time()) - self.started)


class GlueRunner:
    def __init__(self, state_dir: Path) -> None:
        self.workdir = state_dir / "glue"
        self.endpoint_url = ""
        self.runs: dict[str, LocalRun] = {}
        self.lock = threading.Lock()
        #: Held from the MaxConcurrentRuns check until the new run is registered.
        self.start_lock = threading.Lock()
        self.minute_seconds = ExecutorSettings.load().glue_timeout_unit_seconds
        #: run id -> the job role's session the run acts as (enforcing endpoint only; recsys_local.service_roles)
        self.sessions: dict[str, dict[str, str] | None] = {}

    # --- Extension protocol ---------------------------------------------------------------------------------------
    @property
    def saved_runs(self) -> Path:
        return self.workdir / "runs.json"

    def restore(self, endpoint_url: str) -> None:
        """The runs a graceful stop saved (moto's job runs come back with the snapshot, and moto alone would call
        each of them SUCCEEDED); read once, like the snapshot, so a later kill does not bring them back."""
        try:
            saved = json.loads(self.saved_runs.read_text())
        except (OSError, ValueError):
            return
        self.saved_runs.unlink(missing_ok=True)
        with self.lock:
            for entry in saved:
                self.runs[entry["run_id"]] = LocalRun(**entry)

    def start(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def stop(self) -> None:
        """Stop the drivers still running; their runs end FAILED (as an interrupted run does in Glue) and every run's
        outcome is saved for the next start."""
        with self.lock:
            active = [r for r in self.runs.values() if r.process is not None and r.process.poll() is None]
        for run in active:
            run.process.terminate()  # type: ignore[union-attr]
        now = time.time()
        for run in active:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(timeout=10)  # type: ignore[union-attr]
            if run.state in ACTIVE_STATES:
                run.state, run.finished = "FAILED", now
                run.error = "the local AWS endpoint stopped during the run (make down); start the job again"
        with self.lock:
            saved = [{k: v for k, v in vars(run).items() if k != "process"} for run in self.runs.values()]
        if saved:
            self.workdir.mkdir(parents=True, exist_ok=True)
            tmp = self.saved_runs.with_suffix(".tmp")
            tmp.write_text(json.dumps(saved))
            os.replace(tmp, self.saved_runs)

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        if call.target == "AWSGlue.StartJobRun":
            return self._start_job_run(call, forward)
        if call.target == "AWSGlue.GetJobRun":
            return self._amend(forward(call), single=True)
        if call.target == "AWSGlue.GetJobRuns":
            return self._amend(forward(call), single=False)
        if call.target == "AWSGlue.BatchStopJobRun":
            return self._stop_runs(call, forward)
        if call.target == "AWSGlue.UpdateJob":
            return self._update_job(call)
        return None

    # --- calls ------------------------------------------------------------------------------------------------------
    def _start_job_run(self, call: AwsCall, forward: Forward) -> Response:
        request = call.json()
        job_name = request.get("JobName", "")
        glue = local_client("glue", self.endpoint_url)
        try:
            job = glue.get_job(JobName=job_name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            return forward(call)  # moto answers with its own EntityNotFoundException
        limit = int(job.get("ExecutionProperty", {}).get("MaxConcurrentRuns", 1))
        with self.start_lock:  # check and register as one step: a concurrent start sees this run as active
            with self.lock:
                active = [r for r in self.runs.values() if r.job_name == job_name and r.state in ACTIVE_STATES]
            if len(active) >= limit:
                return json_response(
                    {
                        "__type": "ConcurrentRunsExceededException",
                        "message": f"Concurrent runs exceeded for {job_name}: {len(active)} of {limit} running",
                    },
                    400,
                )
            response = forward(call)
            if response.status_code != 200:
                return response
            run_id = json.loads(response.get_data())["JobRunId"]
            timeout = int(request.get("Timeout") or job.get("Timeout") or DEFAULT_TIMEOUT_MINUTES)
            run = LocalRun(job_name=job_name, run_id=run_id, timeout_minutes=timeout)
            with self.lock:
                self.runs[run_id] = run
        arguments = {**job.get("DefaultArguments", {}), **request.get("Arguments", {})}
        threading.Thread(
            target=self._execute,
            args=(run, job["Command"]["ScriptLocation"], arguments, job.get("Role", "")),
            daemon=True,
        ).start()
        return response

    def _update_job(self, call: AwsCall) -> Response:
        """moto has no UpdateJob: replace the definition (as AWS does: the update is the whole new definition)."""
        request = call.json()
        name = request.get("JobName", "")
        glue = local_client("glue", self.endpoint_url)
        try:
            glue.get_job(JobName=name)
        except glue.exceptions.EntityNotFoundException:
            return json_response({"__type": "EntityNotFoundException", "message": f"Job {name} not found"}, 400)
        glue.delete_job(JobName=name)
        glue.create_job(Name=name, **request.get("JobUpdate", {}))
        return json_response({"JobName": name})

    def _amend(self, response: Response, single: bool) -> Response:
        if response.status_code != 200:
            return response
        payload = json.loads(response.get_data())
        runs = [payload.get("JobRun", {})] if single else payload.get("JobRuns", [])
        for job_run in runs:
            local = self.runs.get(job_run.get("Id", ""))
            if local is None:
                continue
            job_run["JobRunState"] = local.state
            job_run["ExecutionTime"] = local.execution_time()
            job_run["LogGroupName"] = LOG_GROUP
            if local.finished is not None:
                job_run["CompletedOn"] = local.finished
            if local.error:
                job_run["ErrorMessage"] = local.error
            else:
                job_run.pop("ErrorMessage", None)
        return json_response(payload)

    def _stop_runs(self, call: AwsCall, forward: Forward) -> Response:
        for run_id in call.json().get("JobRunIds", []):
            run = self.runs.get(run_id)
            if run is not None and run.process is not None and run.process.poll() is None:
                run.state = "STOPPING"
                run.process.terminate()
        return forward(call)

    # --- execution --------------------------------------------------------------------------------------------------
    def _execute(self, run: LocalRun, script_location: str, arguments: dict[str, str], role: str = "") -> None:
        folder = self.workdir / run.run_id
        folder.mkdir(parents=True, exist_ok=True)
        driver_log = folder / "driver.log"
        try:
            # as Glue: the job's role reads the script, runs the driver and writes its logs
            session = self.sessions[run.run_id] = service_roles.credentials(
                self.endpoint_url, role, "GlueJobRunnerSession", service_roles.GLUE
            )
            keys = session or {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # moto's own
            bucket, _, key = script_location.removeprefix("s3://").partition("/")
            script = folder / Path(key).name
            s3 = local_client("s3", self.endpoint_url, credentials=session)
            s3.download_file(bucket, key, str(script))
            for url in filter(None, (u.strip() for u in arguments.get("--extra-files", "").split(","))):
                extra_bucket, _, extra_key = url.removeprefix("s3://").partition("/")
                s3.download_file(extra_bucket, extra_key, str(folder / Path(extra_key).name))
            argv = [sys.executable, str(script), "--JOB_NAME", run.job_name]
            for name, value in arguments.items():
                argv += [name if name.startswith("--") else f"--{name}", str(value)]
            env = {
                **{k: v for k, v in os.environ.items() if k in DRIVER_ENV or k.startswith(DRIVER_ENV_PREFIXES)},
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **keys,
                "AWS_DEFAULT_REGION": aws_region(),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
            log.info("glue run %s of %s: %s", run.run_id, run.job_name, script_location)
            deadline = time.monotonic() + run.timeout_minutes * self.minute_seconds
            with open(driver_log, "wb") as out:
                run.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
                run.state = "RUNNING"
                timed_out = False
                while True:
                    try:
                        code = run.process.wait(timeout=min(LOG_SHIP_SECONDS, max(deadline - time.monotonic(), 0)))
                        break
                    except subprocess.TimeoutExpired:
                        self._ship_logs(run, driver_log)
                        if time.monotonic() >= deadline and not timed_out:
                            timed_out = True
                            run.state = "STOPPING"
                            run.process.terminate()
                            deadline = time.monotonic() + 10  # then SIGKILL
                        elif timed_out:
                            run.process.kill()
            if timed_out:
                state = "TIMEOUT"
                error = f"Job run timed out after {run.timeout_minutes} minute(s) (the run's Timeout)"
            elif run.state == "STOPPING":
                state, error = "STOPPED", ""
            elif code == 0:
                state, error = "SUCCEEDED", ""
            else:
                state, error = "FAILED", _error_message(driver_log, code)
        except Exception as exc:  # the run fails, with the reason, like Glue would report it
            log.exception("glue run %s could not start", run.run_id)
            state, error = "FAILED", f"{type(exc).__name__}: {exc}"
        # The output's last lines go to CloudWatch before the run reads finished: the provider's verbose poll that
        # sees the end prints the whole output (the job's summary is its last line).
        self._ship_logs(run, driver_log, ending=(state, error))
        run.finished = time.time()
        run.state, run.error = state, error
        log.info("glue run %s finished: %s %s", run.run_id, run.state, run.error)

    def _ship_logs(self, run: LocalRun, driver_log: Path, ending: tuple[str, str] | None = None) -> None:
        """Put the driver output written since the last shipment into CloudWatch Logs, where the provider's verbose
        mode reads it; complete lines only while the run goes on, everything (and the error) at the ``ending``
        (the run's final state and error)."""
        final = ending is not None
        state, error = ending or (run.state, run.error)
        try:
            with open(driver_log, "rb") as handle:
                handle.seek(run.log_offset)
                chunk = handle.read()
        except OSError:
            chunk = b""
        if not final:
            chunk = chunk[: chunk.rfind(b"\n") + 1]
        run.log_offset += len(chunk)
        lines = chunk.decode(errors="replace").splitlines()
        try:
            logs = local_client("logs", self.endpoint_url, credentials=self.sessions.get(run.run_id))
            if not run.log_streams:
                for group in (f"{LOG_GROUP}/output", f"{LOG_GROUP}/error"):
                    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                        logs.create_log_group(logGroupName=group)
                    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                        logs.create_log_stream(logGroupName=group, logStreamName=run.run_id)
                run.log_streams = True
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line or " "} for line in lines]
            if final and run.log_offset == 0:
                events = [{"timestamp": now, "message": f"run {run.run_id}: {state}"}]
            for start in range(0, len(events), 5000):
                logs.put_log_events(
                    logGroupName=f"{LOG_GROUP}/output", logStreamName=run.run_id, logEvents=events[start : start + 5000]
                )
            if final and error:
                logs.put_log_events(
                    logGroupName=f"{LOG_GROUP}/error",
                    logStreamName=run.run_id,
                    logEvents=[{"timestamp": now, "message": error}],
                )
        except Exception:  # shipping logs must not fail the run; driver.log keeps every line
            log.exception("could not ship glue run %s's output to CloudWatch Logs", run.run_id)


def _error_message(driver_log: Path, code: int) -> str:
    """The last meaningful line of the driver output (the exception), as Glue's ErrorMessage."""
    lines = [line.strip() for line in driver_log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line or line.startswith("SystemExit"):
            return line[:2000]
    return f"driver exited with code {code}" + (f": {lines[-1][:2000]}" if lines else "")
