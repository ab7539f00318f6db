"""A real Celery worker, in its own process group, on the suite's Redis database and the
suite's PostgreSQL test database."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class CeleryWorker:
    def __init__(self, env, concurrency=2, name="suite"):
        self.env = {**os.environ, **env}
        self.concurrency = concurrency
        self.name = name
        self.process = None
        self.log = Path(tempfile.mkdtemp(prefix="celery-worker-")) / "worker.log"

    @property
    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def start(self, timeout=60):
        output = open(self.log, "ab")  # noqa: SIM115 - lives as long as the worker
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "panel", "worker", "--pool", "prefork",
             "--concurrency", str(self.concurrency), "--hostname", f"{self.name}@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log.read_bytes():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not start:\n{self.tail()}")

    def stop(self):
        if self.is_running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self):
        """Lose the worker as a crash would: SIGKILL, no chance to ack or clean up."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        self.process = None

    def remove_log(self):
        shutil.rmtree(self.log.parent, ignore_errors=True)

    def tail(self, lines=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
