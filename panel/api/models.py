from django.db import models


class IdempotentRequest(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, per token (or session login)
    and key, with the request's fingerprint: a retry gets this answer again, a different
    request under the same key is refused (panel/api/idempotency.py)."""

    owner = models.CharField(max_length=40, help_text="token:<id> or user:<id>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField(null=True)
    location = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"],
                                               name="one_answer_per_key")]

    def __str__(self):
        return f"{self.owner} {self.key} → {self.status}"
