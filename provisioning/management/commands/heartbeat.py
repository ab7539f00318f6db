"""The compose health checks of the worker and beat containers: exit 0 when the process
recorded a heartbeat recently (see panel/health.py), 1 when not."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from panel import health


class Command(BaseCommand):
    help = ("Exit 0 if beat, or the worker named (celery@<host>), recorded a heartbeat within "
            "--max-age seconds (default READINESS_MAX_AGE_SECONDS); exit 1 if not.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("process", choices=["worker", "beat"])
        parser.add_argument("name", nargs="?", default="",
                            help="the worker's name, e.g. celery@$HOSTNAME")
        parser.add_argument("--max-age", type=float, default=None)

    def handle(self, process, name, max_age, **options):
        if process == "worker" and not name:
            raise CommandError("Name the worker, e.g. celery@$HOSTNAME.")
        max_age = settings.READINESS_MAX_AGE_SECONDS if max_age is None else max_age
        who = f"{process} {name}".strip()
        try:
            age = health.heartbeat_age(process, name if process == "worker" else "")
        except Exception as exc:  # noqa: BLE001 - any failure is unhealthy
            raise CommandError(f"{who}: the broker cannot be read ({exc.__class__.__name__})"
                               ) from None
        if age is None:
            raise CommandError(f"{who}: no heartbeat")
        if age > max_age:
            raise CommandError(f"{who}: last heartbeat {age:.0f} s ago (more than {max_age:.0f})")
        self.stdout.write(f"{who}: last heartbeat {age:.0f} s ago")
