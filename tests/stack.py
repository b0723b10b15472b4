"""The whole system in one process, for functional tests and benchmarks: API (waitress on an
ephemeral 127.0.0.1 port), scheduler, volume and backup services on the fake:// transport, a
database of the caller's choice (SQLite file by default) and back ends of any driver (file by
default, under a temp directory; the backup repository is a posix one there too)."""

import os
import threading
import time

import requests
from oslo_config import cfg

from common import rpc, service
from common.db import migration, session
from volume_worker import drivers
from volume_worker.drivers import base

CONF = cfg.CONF
_parsed = False


def parse_once():
    global _parsed
    if not _parsed:
        from common import config

        config.parse_args([], default_config_files=[])
        _parsed = True


class Stack:
    def __init__(self, workdir, backends=None, overrides=None, database_url=None,
                 project="p1"):
        self.workdir = str(workdir)
        # backend name -> options of its section (file driver by default)
        self.backends = backends or {"file": {}}
        self.overrides = dict(overrides or {})
        self.database_url = database_url or "sqlite:///%s/lamina.sqlite" % self.workdir
        self.project = project
        self._set = []
        self.services = []
        self.server = None

    # --- configuration ----------------------------------------------------------------------

    def override(self, name, value, group=None):
        CONF.set_override(name, value, group=group)
        self._set.append((name, group))

    def configure(self):
        parse_once()
        import api.service  # noqa: F401  (register options)
        import backup_worker.chunkstore.posix  # noqa: F401
        import backup_worker.service  # noqa: F401
        import scheduler.service  # noqa: F401
        import volume_worker.service  # noqa: F401

        self.override("state_path", self.workdir)
        self.override("connection", self.database_url, group="database")
        self.override("host", "stack")
        self.override("enabled_backends", list(self.backends))
        self.override("pool_report_interval", 1)
        # the backup service (host "stack", where the file volumes' local connections are)
        self.override("backup_posix_path", os.path.join(self.workdir, "backups"),
                      group="backup")
        self.override("report_interval", 1)
        # No quota limits unless a test sets them (overrides win; tests/functional/test_quotas.py)
        for opt in ("quota_volumes", "quota_gigabytes", "quota_snapshots"):
            self.override(opt, -1)
        for name, value in self.overrides.items():
            group, _, opt = name.rpartition(".")
            self.override(opt, value, group=group or None)
        for backend, options in self.backends.items():
            driver = options.get("volume_driver", "file")
            base.register_backend_opts(CONF, backend, drivers._driver_classes()[driver]
                                       .extra_opts)
            if driver == "file":
                self.override("file_volume_dir", os.path.join(self.workdir, backend),
                              group=backend)
            for opt, value in options.items():
                self.override(opt, value, group=backend)
        rpc.use_transport_url("fake://")

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self):
        from api import service as api_service
        from api.app import create_app
        from common.cmd import aio

        self.configure()
        session.dispose()
        migration.db_sync()
        self.services = aio.start_services()
        self.server = api_service.make_server(create_app(), host="127.0.0.1", port=0)
        threading.Thread(target=self.server.run, daemon=True).start()
        self.url = "http://127.0.0.1:%s" % self.server.effective_port
        self.http = requests.Session()
        return self

    def stop(self):
        from api import service as api_service

        if self.server is not None:
            api_service.stop_server(self.server)
        service.stop_all(self.services)
        rpc.cleanup()
        rpc.use_transport_url(None)
        session.dispose()
        for name, group in reversed(self._set):
            CONF.clear_override(name, group=group)

    # --- HTTP --------------------------------------------------------------------------------

    def request(self, method, path, body=None, token=None, version=None, raw=None,
                project=None, api="v3"):
        headers = {"X-Auth-Token": token or "admin:%s" % (project or self.project)}
        if version:
            headers["OpenStack-API-Version"] = "volume " + version
        url = "%s/%s/%s%s" % (self.url, api, project or self.project, path)
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return requests.request(method, url, data=raw, headers=headers)
        return requests.request(method, url, json=body, headers=headers)

    def create_volume(self, size=1, **fields):
        resp = self.request("POST", "/volumes", {"volume": dict(size=size, **fields)})
        assert resp.status_code == 202, resp.text
        return resp.json()["volume"]

    def wait_volume(self, volume_id, statuses, timeout=30, token=None):
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request("GET", "/volumes/%s" % volume_id, token=token)
            if resp.status_code == 404 and "deleted" in statuses:
                return {"status": "deleted"}
            assert resp.status_code == 200, resp.text
            volume = resp.json()["volume"]
            if volume["status"] in statuses:
                return volume
            if time.monotonic() > deadline:
                raise AssertionError("volume %s is %s, not %s after %ss"
                                     % (volume_id, volume["status"], statuses, timeout))
            time.sleep(0.05)

    def volume_files(self, prefix="volume-"):
        found = []
        for backend, options in self.backends.items():
            if options.get("volume_driver", "file") != "file":
                continue
            for root, _dirs, files in os.walk(os.path.join(self.workdir, backend)):
                found += [os.path.join(root, f) for f in files if f.startswith(prefix)]
        return found

    def snapshot_files(self):
        return self.volume_files(prefix="snapshot-")

    def create_snapshot(self, volume_id, **fields):
        resp = self.request("POST", "/snapshots",
                            {"snapshot": dict(volume_id=volume_id, **fields)})
        assert resp.status_code == 202, resp.text
        return resp.json()["snapshot"]

    def wait_snapshot(self, snapshot_id, statuses, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request("GET", "/snapshots/%s" % snapshot_id)
            if resp.status_code == 404 and "deleted" in statuses:
                return {"status": "deleted"}
            assert resp.status_code == 200, resp.text
            snapshot = resp.json()["snapshot"]
            if snapshot["status"] in statuses:
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError("snapshot %s is %s, not %s after %ss"
                                     % (snapshot_id, snapshot["status"], statuses, timeout))
            time.sleep(0.05)
