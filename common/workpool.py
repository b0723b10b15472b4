"""A bounded pool of native threads: work beyond its backlog is refused, not queued for ever."""

import futurist
from futurist import rejection

from common import exception


class BoundedWorkPool:
    def __init__(self, name, max_workers, max_backlog):
        self.name = name
        self._executor = futurist.ThreadPoolExecutor(
            max_workers=max_workers,
            check_and_reject=rejection.reject_when_reached(max_backlog))

    def submit(self, fn, *args, **kwargs):
        try:
            return self._executor.submit(fn, *args, **kwargs)
        except futurist.RejectedSubmission:
            raise exception.ServiceBusy(service=self.name)

    def shutdown(self, wait=True):
        self._executor.shutdown(wait=wait)
