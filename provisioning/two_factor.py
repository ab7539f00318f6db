"""The second factor of a panel or admin login (django-otp): one TOTP authenticator app, and
recovery codes that stand in for it once each.

A login is *enrolled* when it has a confirmed authenticator; its recovery codes (a static
device) live and die with it. Enrolling again replaces both, and is only offered to a session
that has already given a code of the current authenticator (the views check
`request.user.is_verified()`); a provider's `reset` removes both and is written to the change
log."""

from auditlog.models import LogEntry
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
# The change-log field of a login whose second factor the provider removed.
CHANGELOG_FIELD = "two-factor authentication"

WRONG_CODE = gettext_lazy("That code is not right. Check your device's clock and try the "
                          "current code.")

VERIFY = "verify"
ENROL = "enrol"


def is_enrolled(user):
    """Whether `user` has a confirmed authenticator (one query)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def step_due(user):
    """What a signed-in `user` must still do before using the panel or the admin: give a code
    (VERIFY), enrol an authenticator because the provider requires one (ENROL), or nothing.
    A session verified earlier costs no query; nor does a panel account read this request
    (provisioning.scoping.account_of reads `two_factor_enrolled` with it)."""
    if user.is_verified():
        return None
    enrolled = _enrolled_this_request(user)
    if enrolled is None:
        enrolled = is_enrolled(user)
    if enrolled:
        return VERIFY
    if settings.REQUIRE_TWO_FACTOR:
        return ENROL
    return None


def _enrolled_this_request(user):
    """The enrolment read with the user's panel account, if it was read for this user
    object (a request's user lives as long as the request)."""
    accessor = getattr(user.__class__, "account", None)  # __class__: a lazy request.user
    descriptor = getattr(accessor, "related", None)
    if descriptor is None or not descriptor.is_cached(user):
        return None
    return getattr(descriptor.get_cached_value(user), "two_factor_enrolled", None)


def pending_authenticator(user):
    """The unconfirmed authenticator whose QR code the enrolment page shows."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME,
                                               confirmed=False)


def confirm_authenticator(user, code):
    """Confirm the pending authenticator with its first code, replacing the authenticator and
    recovery codes `user` had. Returns the device and the new recovery codes, which exist in
    clear text only in this return value and in the rows django-otp keeps."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    # Checked outside the transaction, so a wrong code's throttling is kept.
    if device is None or not device.verify_token(code):
        raise ValidationError({"token": WRONG_CODE})
    with transaction.atomic():
        # Of two requests confirming the same device, the second finds it confirmed.
        if not TOTPDevice.objects.select_for_update().filter(pk=device.pk,
                                                             confirmed=False).exists():
            raise ValidationError({"token": WRONG_CODE})
        # One by one, so the change log records each removal.
        for old in TOTPDevice.objects.filter(user=user).exclude(pk=device.pk):
            old.delete()
        for old in StaticDevice.objects.filter(user=user):
            old.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return device, _new_recovery_codes(user)


@transaction.atomic
def renew_recovery_codes(user):
    """New recovery codes in place of the old ones, which stop working."""
    if not is_enrolled(user):
        raise ValidationError(gettext_lazy("Set up an authenticator app first."))
    return _new_recovery_codes(user)


def _new_recovery_codes(user):
    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME,
                                                   defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = set()
    while len(codes) < RECOVERY_CODES:
        codes.add(StaticToken.random_token())
    codes = sorted(codes)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(user):
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def normalize(code):
    return "".join(code.split()).replace("-", "").lower()


def verify(user, code):
    """The confirmed device of `user` that accepts `code`, or None. Six digits are the
    authenticator's code; anything else may be a recovery code, which is used up."""
    code = normalize(code)
    if len(code) == 6 and code.isdigit():
        for device in TOTPDevice.objects.devices_for_user(user, confirmed=True):
            if device.verify_token(code):
                return device
        return None
    for device in StaticDevice.objects.devices_for_user(user, confirmed=True):
        if _use_recovery_code(device, code):
            return device
    return None


def _use_recovery_code(device, code):
    """django-otp's StaticDevice.verify_token, but the code is spent by its DELETE: of two
    requests racing with one code, only the one whose DELETE removed the row gets in."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False
    used, _ = StaticToken.objects.filter(device=device, token=code).delete()
    if not used:
        device.throttle_increment()
        return False
    device.throttle_reset(commit=False)
    device.set_last_used_timestamp(commit=False)
    device.save()
    return True


@transaction.atomic
def reset(user, *, actor):
    """The provider's reset: `user` loses its authenticator and recovery codes, so its next
    sign-in asks it to enrol (when the provider requires two-factor) or needs no code. Written
    to the change log of the login, where its organization sees it. Returns whether there was
    anything to reset."""
    authenticators = list(TOTPDevice.objects.filter(user=user))
    if not authenticators and not StaticDevice.objects.filter(user=user).exists():
        return False
    was_on = any(device.confirmed for device in authenticators)
    # One by one, so the change log records each removal.
    for device in authenticators:
        device.delete()
    for device in StaticDevice.objects.filter(user=user):
        device.delete()
    LogEntry.objects.log_create(user, action=LogEntry.Action.UPDATE, actor=actor,
                                changes={CHANGELOG_FIELD: ["on" if was_on else "setting up",
                                                           "reset by the provider"]})
    return True


@receiver(post_delete, sender=TOTPDevice)
def _recovery_codes_go_with_the_authenticator(sender, instance, **kwargs):
    """Recovery codes stand in for an authenticator: deleting the last one (in the admin, say)
    deletes them too, so no login is left with codes but no authenticator."""
    if instance.confirmed and not is_enrolled(instance.user_id):
        for device in StaticDevice.objects.filter(user_id=instance.user_id):
            device.delete()
