"""Project-level checks: migrations are complete, production settings pass the deploy
checklist, and the demo data command is idempotent."""

import os
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from provisioning.models import Customer, Event

ROOT = Path(__file__).resolve().parent.parent


def clean_environment():
    # The browser tests allow async-unsafe calls in this process; a deployment never does.
    return {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args, **env):
    environment = {**clean_environment(), **env}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_makemigrations_is_clean(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DJANGO_SETTINGS_MODULE="panel.settings", DEBUG="false",
                    SECRET_KEY="a-long-random-production-key-" + "x" * 40,
                    ALLOWED_HOSTS="panel.example.net", SECURE_SSL_REDIRECT="true",
                    SESSION_COOKIE_SECURE="true", CSRF_COOKIE_SECURE="true")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_development_key_fails_check_deploy():
    env = {k: v for k, v in clean_environment().items() if k != "SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**env, "DJANGO_SETTINGS_MODULE": "panel.settings"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_seed_demo_is_idempotent(demo):
    counts = (Customer.objects.count(), Event.objects.count())
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (Customer.objects.count(), Event.objects.count()) == counts
    assert Customer.objects.filter(parent=demo).count() == 3


# --- The compose stack (there is no Docker engine here: the file is read, its checks run) ----

def compose_services():
    import yaml

    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def one_shot_services(services):
    """Services others wait for to exit successfully (the migration)."""
    return {name for service in services.values()
            for name, need in (service.get("depends_on") or {}).items()
            if isinstance(need, dict) and need.get("condition") == "service_completed_successfully"}


def test_every_long_running_service_has_a_health_check():
    services = compose_services()
    one_shot = one_shot_services(services)
    assert one_shot == {"migrate"}
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name, service in services.items():
        if name in one_shot:
            assert service.get("restart", "no") == "no", name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name


def check_command(service):
    test = compose_services()[service]["healthcheck"]["test"]
    # Compose turns $$ into $; CMD runs the list as is, CMD-SHELL through sh -c.
    test = [part.replace("$$", "$") for part in test]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    assert test[0] == "CMD"
    return test[1:]


def test_the_web_health_check_passes_whatever_allowed_hosts_says():
    """The exact command of the web health check, against gunicorn with production settings
    whose ALLOWED_HOSTS is the real host name and HTTPS redirect is on."""
    from tests.support.processes import Gunicorn

    command = check_command("web")
    assert "Host" not in " ".join(command)
    env = {**clean_environment(), "DJANGO_SETTINGS_MODULE": "panel.settings", "DEBUG": "false",
           "SECRET_KEY": "a-long-random-production-key-" + "x" * 40,
           "ALLOWED_HOSTS": "panel.example.net", "SECURE_SSL_REDIRECT": "true",
           "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    web = Gunicorn(env, workers=1).start()
    try:
        command = [part.replace(":8000/", f":{web.port}/") for part in command]
        command = [sys.executable if part == "python" else part for part in command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr + web.tail()
    finally:
        web.remove()


def test_the_worker_and_beat_health_checks_read_their_heartbeats(own_broker):
    from panel import health

    # `python` is the virtualenv's, as it is the image's.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    env = {**clean_environment(), "CELERY_BROKER_URL": own_broker.url, "PATH": path,
           "HOSTNAME": "c0ffee123456", "DJANGO_SETTINGS_MODULE": "panel.test_settings"}
    worker, beat = check_command("worker"), check_command("beat")
    for command, said in ((worker, "worker celery@c0ffee123456: no heartbeat"),
                          (beat, "beat: no heartbeat")):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)
        assert (result.returncode, said) == (1, result.stderr.strip()[-len(said):]), command
    health.record_heartbeat("worker", "celery@c0ffee123456")
    health.record_heartbeat("beat")
    for command in (worker, beat):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_leaves_out_the_virtualenv_the_repository_and_local_data():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "db.sqlite3", "staticfiles", ".env"} <= ignored
    assert {"**/__pycache__", "docs/screenshots"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "--no-cache-dir" in dockerfile
    assert [line for line in dockerfile.splitlines() if line.startswith("USER ")] == [
        "USER panel"]
