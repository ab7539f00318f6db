"""A work-around for a defect of the pinned Celery and kombu releases, applied when
panel.celery is imported (by the worker and by every process that sends tasks).

The worker exited when Redis restarted while it held an unacknowledged message (a task
running with acks_late, or one with a countdown/ETA waiting in the worker)::

    CRITICAL Unrecoverable error: AttributeError("'NoneType' object has no attribute
    'hostname'")

celery 5.7.0, on losing the broker (celery/worker/consumer/consumer.py,
``Consumer.on_connection_error_after_connected``), first calls ``connection.collect()`` and
then, new in 5.7.0 (celery/celery#10242), ``connection.close()`` as well. With kombu 5.7.0:

1. ``collect()`` tries to close the channels, but the Redis channel's ``close()`` raises a
   connection error (its pending BRPOP reply, or the pidbox queue's deletion, cannot be
   read from the dead socket) before it marks itself closed. kombu swallows the error,
   then drops the transport: ``Connection._do_close_transport`` sets
   ``transport.client = None`` — but ``Connection._default_channel`` still points at the
   half-closed channel of that transport.
2. ``close()`` closes that default channel again. This time it gets as far as restoring
   its unacknowledged messages (``virtual.Channel.close`` -> ``QoS.restore_unacked_once``),
   which needs a new Redis connection pool, whose parameters come from
   ``transport.client`` (kombu/transport/redis.py ``Channel._connparams``):
   ``None.hostname``. ``ignore_errors`` in the consumer only ignores connection errors, so
   the AttributeError stops the worker.

kombu itself resets ``_default_channel`` whenever it connects anew
(``Connection._connection_factory``): the default channel belongs to one transport
connection. So once ``collect()`` has dropped the transport, its default channel is
forgotten too, and the ``close()`` that follows has nothing left to do — as in celery 5.6,
which did not call it. The unacknowledged messages stay in Redis's ``unacked`` hash, and
the visibility-timeout sweep (``CELERY_BROKER_TRANSPORT_OPTIONS``) delivers them again.

No release fixes it yet (celery 5.7.0 and kombu 5.7.0 are the newest). Remove this module
once tests/test_broker_restart.py passes without it.
"""

import functools

from kombu import Connection


def forget_default_channel_of_collected_transport():
    original = Connection.collect
    if getattr(original, "panel_fix", False):
        return

    @functools.wraps(original)
    def collect(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        finally:
            if self._transport is None:
                self._default_channel = None

    collect.panel_fix = True
    Connection.collect = collect


forget_default_channel_of_collected_transport()
