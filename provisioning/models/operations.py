from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OperationState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED_STATES = (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)

# What each action (provisioning.actions.ACTIONS) is called where people read it: the
# panel, the admin and alert e-mails. The API and the journal keep the key.
ACTION_LABELS = {
    "provision_organization": _("Provision organization"),
    "provision_user": _("Provision user"),
    "rename_user": _("Rename user"),
    "set_user_enabled": _("Enable or disable user"),
    "set_organization_enabled": _("Suspend or resume organization"),
    "reset_password": _("Reset password"),
    "delete_user": _("Delete user"),
    "change_plan": _("Change service plan"),
    "add_domain": _("Add domain"),
    "delete_organization": _("Delete organization"),
    "disconnect_mailbox": _("Disconnect mailbox"),
    "reconnect_mailbox": _("Reconnect mailbox"),
    # Mail flow (issue #12).
    "set_email_addresses": _("Set e-mail addresses"),
    "set_forwarding": _("Set forwarding"),
    "provision_contact": _("Provision mail contact"),
    "delete_contact": _("Delete mail contact"),
}


def action_label(action):
    return ACTION_LABELS.get(action, action)


class Operation(models.Model):
    """One journaled provisioning call: the intent (customer, action, parameters) and its
    execution record (steps done, state, attempts, last error, task id).

    Parameters never hold a secret: a password travels to the worker sealed inside the task
    message only (see provisioning.journal)."""

    customer = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                 related_name="operations")
    # Operations of one organization (its own and its users') are ordered within this scope.
    scope = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                              related_name="+")
    action = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    steps = models.JSONField(default=list, blank=True,
                             help_text="Ordered steps with their state and result.")
    backend_log = models.JSONField(default=list, blank=True,
                                   help_text="What the dry-run backend would have done.")
    state = models.CharField(max_length=16, choices=OperationState.choices,
                             default=OperationState.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    needs_secret = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    lease_until = models.DateTimeField(null=True, blank=True)
    # When a worker is next expected to pick the operation up: now when it is enqueued,
    # after the backoff when a transient fault is retried, in a second when it waits
    # behind another operation. A queued operation well past it lost its message (the
    # broker was down or restarted) and is sent again by requeue_stale.
    due = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0, help_text="Task messages sent for it.")
    created = models.DateTimeField(auto_now_add=True)
    # When a person last asked for it: enqueued, or retried from the Operations page. Its
    # duration, its age in the queue and its waiting alert count from here.
    requested = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["scope", "state"]),
                   # An organization's operations page, newest first.
                   models.Index(fields=["scope", "-id"], name="operation_scope_newest"),
                   models.Index(fields=["customer", "state"]),
                   models.Index(fields=["state", "due"])]

    def __str__(self):
        return f"#{self.pk} {self.action} {self.customer} ({self.state})"

    @property
    def action_label(self):
        return action_label(self.action)

    @property
    def is_finished(self):
        return self.state in FINISHED_STATES

    @property
    def done_steps(self):
        return [s["name"] for s in self.steps if s.get("state") == "done"]


class OperationSecret(models.Model):
    """The transactional outbox of an operation's password, sealed (Fernet).

    Written in the transaction that enqueues the operation, so the password survives a
    broker that is down or restarted; the task message carries only the operation's id.
    Deleted as soon as the operation no longer needs it: when it succeeds or fails for
    good. Never registered in the change log, never shown."""

    operation = models.OneToOneField(Operation, on_delete=models.CASCADE,
                                     related_name="secret", primary_key=True)
    sealed = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"sealed secret of operation #{self.operation_id}"


class AlertKind(models.TextChoices):
    FAILED = "failed", "Failed"
    WAITING = "waiting", "Still waiting"


class OperationAlert(models.Model):
    """One e-mail about one operation to one address (provisioning.alerts).

    Written in the transaction that sends the e-mail, under a unique constraint, so each
    failure or long wait of an operation reaches each person once, however often the
    alert task runs. A person's retry deletes them: its next failure is news."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    email = models.EmailField()
    sent = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operation", "kind", "email"],
                                               name="one_alert_per_operation_kind_email")]

    def __str__(self):
        return f"{self.kind} alert of operation #{self.operation_id} to {self.email}"


class ProviderSummary(models.Model):
    """The provider's daily summary to one address on one day (provisioning.alerts).

    Written in the transaction that sends it, under a unique constraint, so a beat that
    fires twice (two schedulers for a moment, a restart at the hour) sends it once; a send
    that fails leaves no row, and the next run tries again."""

    day = models.DateField()
    email = models.EmailField()
    sent = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "email"],
                                               name="one_summary_per_day_and_email")]

    def __str__(self):
        return f"summary of {self.day} to {self.email}"
