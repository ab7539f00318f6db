from django.conf import settings
from django.db import models


class OperationState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)


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
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["scope", "state"]),
                   models.Index(fields=["customer", "state"])]

    def __str__(self):
        return f"#{self.pk} {self.action} {self.customer} ({self.state})"

    @property
    def is_finished(self):
        return self.state in FINISHED_STATES

    @property
    def done_steps(self):
        return [s["name"] for s in self.steps if s.get("state") == "done"]
