"""A bounded pool of native threads: work beyond its backlog is refused, not queued for ever."""

import concurrent.futures
import threading

from common import exception


class BoundedWorkPool:
    """The standard library's pool with a limit on work that waits for a thread.

    (futurist's pool has the limit built in, but its idle threads notice a shutdown only at
    their next one-second poll, which every service stop then waits for.)"""

    def __init__(self, name, max_workers, max_backlog):
        self.name = name
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=name.split(" ")[0])
        self._max_backlog = max_backlog
        self._lock = threading.Lock()
        self._waiting = 0

    def submit(self, fn, *args, **kwargs):
        with self._lock:
            if self._waiting >= self._max_backlog:
                raise exception.ServiceBusy(service=self.name)
            self._waiting += 1

        def started():
            with self._lock:
                self._waiting -= 1
            return fn(*args, **kwargs)

        try:
            return self._executor.submit(started)
        except RuntimeError:  # shut down
            with self._lock:
                self._waiting -= 1
            raise exception.ServiceBusy(service=self.name)

    def shutdown(self, wait=True):
        self._executor.shutdown(wait=wait)
