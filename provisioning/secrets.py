"""Passwords travel from the web process to the worker sealed (Fernet, keyed from
SECRET_KEY) inside the task message, so the broker never holds them in clear text, and the
database and the journal never hold them at all."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

# A sealed password is only good for a day; a task older than that asks for a new one.
MAX_AGE_SECONDS = 24 * 3600


def _fernet():
    digest = hashlib.sha256(f"operation-secret:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret):
    if secret is None:
        return None
    return _fernet().encrypt(secret.encode()).decode()


def unseal(token):
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode(), ttl=MAX_AGE_SECONDS).decode()
    except InvalidToken:
        return None
