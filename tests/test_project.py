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
