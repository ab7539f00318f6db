"""How many live users each customer holds, by service plan: what the users, mailboxes and
mailbox disk quotas count, read without counting the users themselves.

The database keeps the counts (a trigger on provisioning_customer, see migration 0017), in
the transaction that creates, deletes or re-plans a user, whichever way it does: a service,
a bulk update, the admin. So the counts cannot drift from the rows, and reading an
organization's use costs the same at 10 users and at 100,000 (issue #10).
`provisioning.quotas.recount_users` rebuilds them from the rows; a test checks they agree."""

from django.db import models


class UserCount(models.Model):
    """The live users whose parent is `holder` (an organization's users; a reseller's
    consumer users) with service plan `plan_id` (0: none, so no mailbox)."""

    holder = models.ForeignKey("provisioning.Customer", on_delete=models.CASCADE,
                               related_name="user_counts")
    plan_id = models.PositiveIntegerField()
    users = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["holder", "plan_id"],
                                               name="user_count_holder_plan")]

    def __str__(self):
        return f"{self.users} users of {self.holder_id} on plan {self.plan_id}"
