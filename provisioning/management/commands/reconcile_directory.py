from django.core.management.base import BaseCommand

from provisioning.reconciliation import reconcile_all


class Command(BaseCommand):
    help = ("Compare the panel with Active Directory by objectGUID: missing objects, objects "
            "renamed or moved outside the panel (the cache is refreshed), and orphans.")

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true",
                            help="re-provision objects missing from the directory, or never "
                                 "linked to one")

    def handle(self, *args, repair=False, **options):
        for report in reconcile_all(repair=repair):
            self.stdout.write(self.style.MIGRATE_HEADING(report.service))
            for customer in report.missing:
                self.stdout.write(f"  missing   {customer} (objectGUID {customer.object_guid})")
            for customer in report.unlinked:
                self.stdout.write(f"  unlinked  {customer}: no directory object and no "
                                  "operation under way")
            for customer, changes in report.changed:
                detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in
                                   changes.items())
                self.stdout.write(f"  changed   {customer}: {detail}")
            for customer, _, dn in report.moved:
                self.stdout.write(f"  moved     {customer} now at {dn}")
            for entry in report.orphans:
                self.stdout.write(f"  orphan    {entry['dn']} (objectGUID {entry['objectGUID']})")
            for operation in report.repaired:
                self.stdout.write(f"  repairing {operation.customer} as operation "
                                  f"#{operation.pk}")
            if not (report.missing or report.unlinked or report.changed or report.moved
                    or report.orphans):
                self.stdout.write("  in step with the directory")
