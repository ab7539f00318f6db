"""The panel's language per login: Account.language, kept in the session at sign-in and when
changed, where panel.middleware.LanguageMiddleware reads it before the browser's choice."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import translation

from .models import Account

LANGUAGE_SESSION_KEY = "panel_language"


def remember(request, language):
    """Use `language` for this session from now on; empty: the browser's again."""
    if language and language in dict(settings.LANGUAGES):
        request.session[LANGUAGE_SESSION_KEY] = language
        translation.activate(language)
        request.LANGUAGE_CODE = language
    else:
        request.session.pop(LANGUAGE_SESSION_KEY, None)


def set_language(account, language, request):
    """The account's choice, stored and applied to the current session."""
    account.language = language
    account.save(update_fields=["language"])
    remember(request, language)


@receiver(user_logged_in, dispatch_uid="panel-language-at-sign-in")
def _language_at_sign_in(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    language = Account.objects.filter(user=user).values_list("language", flat=True).first()
    remember(request, language or "")
