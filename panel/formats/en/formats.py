"""English dates as the panel always showed them: ISO dates and 24-hour times. German
ones are Django's own (d.m.Y H:i)."""

from django.conf.locale.en.formats import *  # noqa: F403

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
DATETIME_FORMAT = "Y-m-d H:i"
