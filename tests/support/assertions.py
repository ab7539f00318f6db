"""Assertions more than one test file makes."""

import pytest
from django.core.exceptions import ValidationError


def refused(field, call, *args, **kwargs):
    """Run `call`, which must refuse with a ValidationError on `field`; return the message."""
    with pytest.raises(ValidationError) as exc:
        call(*args, **kwargs)
    assert field in exc.value.message_dict, exc.value
    return " ".join(exc.value.message_dict[field])
