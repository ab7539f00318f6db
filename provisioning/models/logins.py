"""Panel logins are unique by `name_key`, like organization names and domains.

auth.User's own unique index compares usernames byte for byte, and a column cannot be added
to it, so each user has a LoginName row whose `key` is unique; signals on the user model keep
it in step, whoever saves the user (services, the admin, createsuperuser, a shell)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils.translation import gettext as _

from ..names import name_key


class LoginName(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="login_name")
    key = models.TextField(unique=True)

    def __str__(self):
        return self.key

    @staticmethod
    def is_taken(username, user=None):
        """Whether another user than `user` has a login that is the same name."""
        taken = LoginName.objects.filter(key=name_key(username))
        if user is not None and user.pk is not None:
            taken = taken.exclude(user_id=user.pk)
        return taken.exists()

    @staticmethod
    def taken_message(username):
        return _("The login '%(login)s' is already taken.") % {"login": username}


def _saves_username(update_fields):
    return update_fields is None or "username" in update_fields


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="login_name_check")
def refuse_a_taken_login(sender, instance, update_fields=None, raw=False, **kwargs):
    # The services and the admin's forms check first and name their own field; this refuses
    # every other path with the same message. A race is settled by the unique key below.
    if raw or not _saves_username(update_fields):
        return
    if LoginName.is_taken(instance.username, user=instance):
        raise ValidationError({"username": LoginName.taken_message(instance.username)})


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="login_name_keep")
def keep_the_login_name(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if not _saves_username(update_fields):
        return
    key = name_key(instance.username)
    if created or not LoginName.objects.filter(user=instance).update(key=key):
        LoginName.objects.create(user=instance, key=key)
