"""Who calls the API: a token (`Authorization: Bearer ho_…`), or the panel's own session.

A token stands for its login's second factor: it was made by a session that gave one (or by
provider staff), it is shown once and kept only as a digest, and it is revoked in one click,
so a token request is not asked for a TOTP code. A session is the browser's: it must have
given its code (provisioning.two_factor.step_due), as every panel page requires, and its
unsafe requests carry the CSRF token."""

from rest_framework import authentication, exceptions

from provisioning import tokens, two_factor

SECOND_FACTOR_OWED = ("This session has not given its second factor yet: sign in to the panel "
                      "and give your code, or call the API with a token.")


class TokenAuthentication(authentication.BaseAuthentication):
    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give the token as: Authorization: Bearer "
                                                  "<token>.")
        try:
            value = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        record = tokens.authenticate(value)
        if record is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return record.user, record

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        # The session's user, as django-otp's middleware marked it (verified or not).
        if two_factor.step_due(request._request.user) is not None:
            raise exceptions.PermissionDenied(SECOND_FACTOR_OWED, code="second_factor")
        return result
