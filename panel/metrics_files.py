"""Where the processes of one deployment keep their Prometheus metrics (multiprocess mode).

prometheus_client names each process's files after its pid. The web and the worker
containers of one stack share the directory (a volume) but not a pid namespace: both have
a process 7, whose files would be one. So a process is named by host and pid. Called from
the settings, before any metric exists; prometheus_client itself switches to files when it
sees PROMETHEUS_MULTIPROC_DIR in the environment.
"""

import os
import socket

from prometheus_client import values


def process_name():
    # '_' separates the parts of the file names that prometheus_client parses.
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


def use_directory(path):
    os.makedirs(path, exist_ok=True)
    values.ValueClass = values.MultiProcessValue(process_name)
