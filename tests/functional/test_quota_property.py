"""Quota usage cannot drift: seeded random sequences of everything that creates, deletes,
moves or forgets a volume, snapshot, backup or group (with failures injected into some flows,
flows held at a step while an admin resets or force-deletes under them, and requests lost
between the API and the volume service, ended by the service's start-up cleanup), over two
projects, two back ends and three volume types; after each step, once nothing is in flight,
`quota check` finds no drift and the API's usage equals the recount.

A failure names the seed and prints the steps taken; replay one with
LAMINA_QUOTA_SEED=<seed> (and LAMINA_QUOTA_STEPS=<n>) on this file."""

import os
import random
import time

import pytest
from oslo_config import cfg

from common import quota
from common.db import api as db
from common.db import quota_api

PROJECTS = ("p1", "p2")
BACKENDS = ("file", "other")
# on-file / on-other pin a back end (a retype between them migrates); plain matches both (a
# retype to or from it stays in place when the pool still matches)
TYPES = {"on-file": {"volume_backend_name": "file"},
         "on-other": {"volume_backend_name": "other"},
         "plain": {}}
VOLUME_BUSY = {"creating", "deleting", "extending", "retyping", "maintenance", "managing",
               "unmanaging", "attaching", "detaching", "downloading", "uploading",
               "backing-up", "restoring-backup", "awaiting-transfer", "reserved"}
MIGRATION_BUSY = {"starting", "migrating", "completing"}
SNAPSHOT_BUSY = {"creating", "deleting", "unmanaging", "backing-up", "restoring"}
BACKUP_BUSY = {"creating", "deleting", "restoring"}
GROUP_BUSY = {"creating", "deleting", "updating"}
GROUPS = "3.20"  # the group calls' microversion
# statuses os-reset_status may set here (deleting: nothing then runs, the volume waits there)
RESET_STATUSES = ("available", "error", "deleting", "in-use", "error_deleting",
                  "error_extending", "extending")
# flows held at a step while an admin resets or force-deletes what they work on
HELD_STEPS = {"create": "create_volume.create_storage", "extend": "extend_volume.extend_storage",
              "delete": "delete_volume.delete_storage", "migrate": "migrate_volume.copy_data",
              "snapshot": "create_snapshot.create_snapshot_storage"}
HOLD_SECONDS = 0.3
# a client may be refused; a 5xx is a bug
REFUSALS = (400, 403, 404, 409, 413)

SEEDS = [int(os.environ["LAMINA_QUOTA_SEED"])] if os.environ.get("LAMINA_QUOTA_SEED") \
    else [11, 23, 37]
STEPS = int(os.environ.get("LAMINA_QUOTA_STEPS", "60"))


class Run:
    def __init__(self, stack, seed):
        self.stack = stack
        self.rng = random.Random(seed)
        self.seed = seed
        self.log = []
        # ids in the order they were made (choices are made in this order, so a seed replays)
        self.volumes, self.snapshots, self.backups = [], [], []
        self.loose_volume_files = []    # (backend, name) of unmanaged volumes' storage
        self.loose_snapshot_files = []  # (backend, name)
        self.parked = {}  # volume id -> the status a reset left it in (nothing moves it on)
        self.groups = []  # (id, project)
        self.peak = 0  # the largest total usage a check saw (the run did count something)
        types = stack.request("GET", "/types").json()["volume_types"]
        self.type_ids = {t["name"]: t["id"] for t in types}
        self.group_type_id = stack.request("GET", "/group_types", version=GROUPS).json()[
            "group_types"][0]["id"]

    # --- HTTP ---------------------------------------------------------------------------

    def call(self, method, path, body=None, project="p1", version=None):
        resp = self.stack.request(method, path, body, project=project, version=version)
        note = "%s %s %s-> %d" % (method, path, "%s " % body if body else "", resp.status_code)
        if resp.status_code in REFUSALS:
            note += " " + resp.text[:160]
        self.log[-1] += " | " + note
        if resp.status_code >= 500 or (resp.status_code >= 300
                                       and resp.status_code not in REFUSALS):
            self.fail("unexpected answer %s: %s" % (note, resp.text[:500]))
        return resp

    def fail(self, why):
        pytest.fail("seed %d, step %d: %s\nsteps:\n%s" % (
            self.seed, len(self.log) - 1, why, "\n".join(
                "%3d %s" % (i, s) for i, s in enumerate(self.log))), pytrace=False)

    def listing(self, kind):
        resp = self.stack.request("GET", "/%s/detail?all_tenants=1" % kind)
        assert resp.status_code == 200, resp.text
        return {item["id"]: item for item in resp.json()[kind]}

    # --- choosing -----------------------------------------------------------------------

    def pick(self, ids, live):
        present = [i for i in ids if i in live]
        return live[self.rng.choice(present)] if present else None

    def volume(self):
        """A live volume: mostly an available one (most actions want it), else any."""
        live = self.listing("volumes")
        if self.rng.random() < 0.8:
            ready = {i: v for i, v in live.items() if v["status"] == "available"}
            if ready:
                live = ready
        return self.pick(self.volumes, live)

    def snapshot(self):
        live = self.listing("snapshots")
        if self.rng.random() < 0.8:
            ready = {i: v for i, v in live.items() if v["status"] == "available"}
            if ready:
                live = ready
        return self.pick(self.snapshots, live)

    @staticmethod
    def owner(volume):
        return volume["os-vol-tenant-attr:tenant_id"]

    @staticmethod
    def backend(volume):
        host = volume.get("os-vol-host-attr:host") or ""
        return host.split("@")[-1].split("#")[0] or None

    def other_project(self, project):
        return PROJECTS[1 - PROJECTS.index(project)]

    def with_failure(self, points, chance=0.15):
        """Inject one of the named failures into the flow this step starts (cleared once
        the step has settled)."""
        if self.rng.random() < chance:
            point = self.rng.choice(points)
            cfg.CONF.set_override("fail_points", [point], group="debug")
            self.log[-1] += " [fail %s]" % point

    def made(self, resp, key, into):
        if resp.status_code == 202:
            into.append(resp.json()[key]["id"])
            self.parked.pop(into[-1], None)

    # --- operations ---------------------------------------------------------------------
    # (every volume has a name: Tempest's schema of a restore's answer wants volume_name a
    # string, and tests/contract.py checks every answer against it)

    def op_create(self):
        project = self.rng.choice(PROJECTS)
        body = {"size": self.rng.choice((1, 2)), "name": "v"}
        vtype = self.rng.choice(list(TYPES) + [None])
        if vtype:
            body["volume_type"] = vtype
        self.with_failure(["create_volume.check_still_creating", "create_volume.create_storage",
                           "create_volume.mark_available"])
        self.made(self.call("POST", "/volumes", {"volume": body}, project), "volume",
                  self.volumes)

    def op_create_from_snapshot(self):
        snap = self.snapshot()
        if snap is None:
            return
        project = snap["os-extended-snapshot-attributes:project_id"]
        body = {"size": snap["size"] + self.rng.choice((0, 1)), "snapshot_id": snap["id"],
                "name": "from-snapshot"}
        self.with_failure(["create_volume.create_storage"], chance=0.2)
        self.made(self.call("POST", "/volumes", {"volume": body}, project), "volume",
                  self.volumes)

    def op_clone(self):
        source = self.volume()
        if source is None:
            return
        body = {"size": source["size"], "source_volid": source["id"], "name": "clone"}
        self.made(self.call("POST", "/volumes", {"volume": body}, self.owner(source)),
                  "volume", self.volumes)

    def op_delete(self):
        v = self.volume()
        if v is None:
            return
        self.with_failure(["delete_volume.check_deleting", "delete_volume.delete_storage",
                           "delete_volume.mark_deleted"], chance=0.2)
        cascade = "?cascade=true" if self.rng.random() < 0.3 else ""
        if self.call("DELETE", "/volumes/%s%s" % (v["id"], cascade),
                     project=self.owner(v)).status_code == 202:
            self.parked.pop(v["id"], None)

    def action(self, v, name, args, project=None, version=None):
        return self.call("POST", "/volumes/%s/action" % v["id"], {name: args},
                         project or self.owner(v), version=version)

    def op_force_delete(self):
        v = self.volume()
        if v is not None and self.action(v, "os-force_delete", {}).status_code == 202:
            self.parked.pop(v["id"], None)

    def op_reset_status(self):
        v = self.volume()
        if v is None:
            return
        status = self.rng.choice(RESET_STATUSES)
        if self.action(v, "os-reset_status", {"status": status}).status_code == 202:
            self.parked.pop(v["id"], None)
            if status in VOLUME_BUSY:
                self.parked[v["id"]] = status

    def op_unmanage(self):
        v = self.volume()
        if v is None:
            return
        backend = self.backend(v)
        if self.action(v, "os-unmanage", {}).status_code == 202 and backend:
            self.parked.pop(v["id"], None)
            self.loose_volume_files.append((backend, "volume-" + v["id"]))

    def op_manage(self):
        if self.loose_volume_files and self.rng.random() < 0.85:
            backend, name = self.loose_volume_files.pop(
                self.rng.randrange(len(self.loose_volume_files)))
        else:  # nothing of that name: the manage ends in error_managing
            backend, name = self.rng.choice(BACKENDS), "missing-%d" % len(self.log)
        body = {"host": "stack@%s#pool0" % backend, "ref": {"source-name": name},
                "name": "managed"}
        vtype = self.rng.choice(["on-" + backend, "plain", None])
        if vtype:
            body["volume_type"] = vtype
        resp = self.call("POST", "/os-volume-manage", {"volume": body},
                         self.rng.choice(PROJECTS))
        if resp.status_code != 202:
            self.loose_volume_files.append((backend, name))
        self.made(resp, "volume", self.volumes)

    def op_transfer(self):
        v = self.volume()
        if v is None:
            return
        giver = self.owner(v)
        resp = self.call("POST", "/os-volume-transfer", {"transfer": {"volume_id": v["id"]}},
                         giver)
        if resp.status_code != 202:
            return
        transfer = resp.json()["transfer"]
        resp = self.call("POST", "/os-volume-transfer/%s/accept" % transfer["id"],
                         {"accept": {"auth_key": transfer["auth_key"]}},
                         self.other_project(giver))
        if resp.status_code != 202:  # (over the receiver's quota) the offer is withdrawn
            self.call("DELETE", "/os-volume-transfer/%s" % transfer["id"], project=giver)

    def op_retype(self):
        v = self.volume()
        if v is None:
            return
        new_type = self.rng.choice([t for t in TYPES if t != v["volume_type"]])
        policy = self.rng.choice(("never", "on-demand"))
        if policy == "on-demand":
            self.with_failure(["migrate_volume.check_migrating", "migrate_volume.copy_data",
                               "migrate_volume.switch_host"], chance=0.2)
        self.action(v, "os-retype", {"new_type": new_type, "migration_policy": policy})

    def op_migrate(self):
        v = self.volume()
        if v is None or not self.backend(v):
            return
        dest = [b for b in BACKENDS if b != self.backend(v)][0]
        self.with_failure(["migrate_volume.create_target", "migrate_volume.switch_host"],
                          chance=0.2)
        self.action(v, "os-migrate_volume", {"host": "stack@%s#pool0" % dest}, project="p1")

    def op_extend(self):
        v = self.volume()
        if v is None:
            return
        self.with_failure(["extend_volume.check_extending", "extend_volume.extend_storage",
                           "extend_volume.mark_extended"])
        self.action(v, "os-extend", {"new_size": v["size"] + 1})

    def op_snapshot_create(self):
        v = self.volume()
        if v is None:
            return
        self.with_failure(["create_snapshot.create_snapshot_storage",
                           "create_snapshot.mark_available"], chance=0.2)
        body = {"volume_id": v["id"], "force": self.rng.random() < 0.3}
        self.made(self.call("POST", "/snapshots", {"snapshot": body}, self.owner(v)),
                  "snapshot", self.snapshots)

    def op_snapshot_delete(self):
        snap = self.snapshot()
        if snap is None:
            return
        project = snap["os-extended-snapshot-attributes:project_id"]
        self.with_failure(["delete_snapshot.delete_snapshot_storage"], chance=0.2)
        if self.rng.random() < 0.5:
            self.call("DELETE", "/snapshots/%s" % snap["id"], project=project)
        else:
            self.call("POST", "/snapshots/%s/action" % snap["id"], {"os-force_delete": {}},
                      project)

    def op_snapshot_reset_status(self):
        snap = self.snapshot()
        if snap is not None:
            self.call("POST", "/snapshots/%s/action" % snap["id"], {"os-reset_status": {
                "status": self.rng.choice(("available", "error"))}},
                snap["os-extended-snapshot-attributes:project_id"])

    def op_snapshot_unmanage(self):
        snap = self.snapshot()
        if snap is None:
            return
        volume = self.listing("volumes").get(snap["volume_id"])
        resp = self.call("POST", "/snapshots/%s/action" % snap["id"], {"os-unmanage": None},
                         snap["os-extended-snapshot-attributes:project_id"])
        if resp.status_code == 202 and volume and self.backend(volume):
            self.loose_snapshot_files.append((self.backend(volume), "snapshot-" + snap["id"]))

    def op_snapshot_manage(self):
        if not self.loose_snapshot_files:
            return
        backend, name = self.loose_snapshot_files.pop(
            self.rng.randrange(len(self.loose_snapshot_files)))
        live = self.listing("volumes")
        here = [i for i in self.volumes if i in live and self.backend(live[i]) == backend]
        if not here:
            self.loose_snapshot_files.append((backend, name))
            return
        v = live[self.rng.choice(here)]
        resp = self.call("POST", "/os-snapshot-manage", {"snapshot": {
            "volume_id": v["id"], "ref": {"source-name": name}}}, self.owner(v))
        if resp.status_code != 202:
            self.loose_snapshot_files.append((backend, name))
        self.made(resp, "snapshot", self.snapshots)

    def op_backup_create(self):
        v = self.volume()
        if v is None:
            return
        self.made(self.call("POST", "/backups", {"backup": {"volume_id": v["id"]}},
                            self.owner(v)), "backup", self.backups)

    def op_backup_delete(self):
        live = self.listing("backups")
        b = self.pick(self.backups, live)
        if b is None:
            return
        project = b.get("os-backup-project-attr:project_id") or "p1"
        if self.rng.random() < 0.5:
            self.call("DELETE", "/backups/%s" % b["id"], project=project)
        else:
            self.call("POST", "/backups/%s/action" % b["id"], {"os-force_delete": {}},
                      project)

    def op_interrupt(self):
        """An operation held in its flow while an admin resets the status (or force-deletes)
        under it: the flow then finds the row changed and ends without touching it."""
        kind = self.rng.choice(sorted(HELD_STEPS))
        cfg.CONF.set_override("delay_points", ["%s:%s" % (HELD_STEPS[kind], HOLD_SECONDS)],
                              group="debug")
        self.log[-1] += " [hold %s]" % HELD_STEPS[kind]
        try:
            if kind == "create":
                resp = self.call("POST", "/volumes", {"volume": {"size": 1, "name": "held"}},
                                 self.rng.choice(PROJECTS))
                self.made(resp, "volume", self.volumes)
                if resp.status_code != 202:
                    return
                target = self.listing("volumes")[resp.json()["volume"]["id"]]
            else:
                target = self.volume()
                if target is None or target["status"] != "available":
                    return
                if kind == "extend":
                    resp = self.action(target, "os-extend", {"new_size": target["size"] + 1})
                elif kind == "delete":
                    resp = self.call("DELETE", "/volumes/" + target["id"],
                                     project=self.owner(target))
                elif kind == "migrate" and self.backend(target):
                    dest = [b for b in BACKENDS if b != self.backend(target)][0]
                    resp = self.action(target, "os-migrate_volume",
                                       {"host": "stack@%s#pool0" % dest}, project="p1")
                elif kind == "snapshot":
                    resp = self.call("POST", "/snapshots", {"snapshot": {
                        "volume_id": target["id"]}}, self.owner(target))
                    self.made(resp, "snapshot", self.snapshots)
                    if resp.status_code == 202:
                        self.wait_held(target["id"])
                        snap = resp.json()["snapshot"]
                        self.call("POST", "/snapshots/%s/action" % snap["id"],
                                  {"os-force_delete": {}}, self.owner(target))
                    return
                else:
                    return
                if resp.status_code != 202:
                    return
            self.wait_held(target["id"])
            if self.rng.random() < 0.3:
                self.action(target, "os-force_delete", {}, project=self.owner(target))
            else:
                status = self.rng.choice(RESET_STATUSES)
                reset = {"status": status}
                if kind == "migrate":  # as an admin would: the migration is over too
                    reset["migration_status"] = "error"
                if self.action(target, "os-reset_status", reset,
                               project=self.owner(target)).status_code == 202 \
                        and status in VOLUME_BUSY:
                    self.parked[target["id"]] = status
        finally:
            self.wait_flows_done()
            cfg.CONF.clear_override("delay_points", group="debug")

    def op_lost_request(self):
        """A request accepted by the API whose message never reaches a service (a crash
        between the two): the volume service's start-up cleanup ends what its workers rows
        say it owned (finishes a delete, fails an extend or a snapshot)."""
        from scheduler import rpcapi as scheduler_rpcapi
        from volume_worker import rpcapi as volume_rpcapi

        kind = self.rng.choice(("extend", "delete", "snapshot"))
        client, method = {"extend": (scheduler_rpcapi.SchedulerAPI, "extend_volume"),
                          "delete": (volume_rpcapi.VolumeAPI, "delete_volume"),
                          "snapshot": (volume_rpcapi.VolumeAPI, "create_snapshot")}[kind]
        target = self.volume()
        if target is None or target["status"] != "available":
            return
        self.log[-1] += " [%s lost]" % kind
        cast = getattr(client, method)
        setattr(client, method, lambda *args, **kwargs: None)
        try:
            if kind == "extend":
                self.action(target, "os-extend", {"new_size": target["size"] + 1})
            elif kind == "delete":
                self.call("DELETE", "/volumes/" + target["id"], project=self.owner(target))
            else:
                self.made(self.call("POST", "/snapshots", {"snapshot": {
                    "volume_id": target["id"]}}, self.owner(target)), "snapshot",
                    self.snapshots)
        finally:
            setattr(client, method, cast)
        for manager in self.volume_managers():
            manager.cleanup_interrupted()

    def volume_managers(self):
        return [svc.manager for svc in self.stack.services
                if hasattr(svc.manager, "_in_flight_lock")]

    def in_flight(self):
        found = set()
        for manager in self.volume_managers():
            with manager._in_flight_lock:
                found |= manager._in_flight
        return found

    def wait_held(self, resource_id, timeout=10):
        """Until the volume service runs a flow for resource_id (so it is held at its
        step), or the flow already ended."""
        deadline = time.monotonic() + timeout
        while resource_id not in self.in_flight() and time.monotonic() < deadline:
            if not self.busy():
                return  # (refused or ended before it was seen)
            time.sleep(0.01)

    def wait_flows_done(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() > deadline:
                self.fail("flows still running after %ss: %s" % (timeout, self.in_flight()))
            time.sleep(0.01)

    def op_backup_restore(self):
        """Into a new volume (charged as a create) or onto an existing one."""
        live = self.listing("backups")
        b = self.pick(self.backups, live)
        if b is None:
            return
        project = b.get("os-backup-project-attr:project_id") or "p1"
        body = {"name": "restored"}
        if self.rng.random() < 0.4:
            v = self.volume()
            if v is not None:
                body = {"volume_id": v["id"]}
        self.with_failure(["restore_backup.restore_data", "restore_backup.mark_restored"],
                          chance=0.2)
        resp = self.call("POST", "/backups/%s/restore" % b["id"], {"restore": body}, project)
        if resp.status_code == 202 and "volume_id" not in body:
            self.volumes.append(resp.json()["restore"]["volume_id"])

    # --- groups (3.20) -------------------------------------------------------------------

    def group(self):
        resp = self.stack.request("GET", "/groups/detail?all_tenants=1", version=GROUPS)
        assert resp.status_code == 200, resp.text
        live = {g["id"]: g for g in resp.json()["groups"]}
        present = [(i, p) for i, p in self.groups if i in live]
        return self.rng.choice(present) if present else (None, None)

    def op_group_create(self):
        project = self.rng.choice(PROJECTS)
        self.with_failure(["create_group.create_group_storage"], chance=0.2)
        resp = self.call("POST", "/groups", {"group": {
            "name": "g", "group_type": self.group_type_id,
            "volume_types": [self.type_ids["plain"], self.type_ids["on-file"]]}},
            project, version=GROUPS)
        if resp.status_code == 202:
            self.groups.append((resp.json()["group"]["id"], project))

    def op_group_volume(self):
        group_id, project = self.group()
        if group_id is not None:
            self.made(self.call("POST", "/volumes", {"volume": {
                "size": 1, "name": "member", "group_id": group_id,
                "volume_type": self.rng.choice(("plain", "on-file"))}}, project,
                version=GROUPS), "volume", self.volumes)

    def op_group_delete(self):
        group_id, project = self.group()
        if group_id is not None:
            self.with_failure(["delete_group.delete_members"], chance=0.2)
            self.call("POST", "/groups/%s/action" % group_id, {"delete": {
                "delete-volumes": self.rng.random() < 0.7}}, project, version=GROUPS)

    # (operation, weight)
    OPERATIONS = (("create", 6), ("create_from_snapshot", 2), ("clone", 2), ("delete", 3),
                  ("force_delete", 2), ("reset_status", 3), ("unmanage", 2), ("manage", 2),
                  ("transfer", 2), ("retype", 3), ("migrate", 2), ("extend", 3),
                  ("snapshot_create", 4), ("snapshot_delete", 2),
                  ("snapshot_reset_status", 1), ("snapshot_unmanage", 1),
                  ("snapshot_manage", 1), ("backup_create", 2), ("backup_delete", 1),
                  ("backup_restore", 1),
                  ("interrupt", 3), ("lost_request", 2), ("group_create", 2),
                  ("group_volume", 2), ("group_delete", 2))

    def step(self):
        names = [n for n, _ in self.OPERATIONS]
        name = self.rng.choices(names, weights=[w for _, w in self.OPERATIONS])[0]
        if len(self.log) < 4:
            name = "create"  # something to act on from the start
        self.log.append(name)
        try:
            getattr(self, "op_" + name)()
            self.settle()
        finally:
            cfg.CONF.clear_override("fail_points", group="debug")
        self.check()

    # --- settling and checking ----------------------------------------------------------

    def busy(self):
        found = []
        for v in self.listing("volumes").values():
            if v["status"] in VOLUME_BUSY and self.parked.get(v["id"]) != v["status"]:
                found.append("volume %s %s" % (v["id"], v["status"]))
            if v.get("os-vol-mig-status-attr:migstat") in MIGRATION_BUSY:
                found.append("volume %s migration %s"
                             % (v["id"], v["os-vol-mig-status-attr:migstat"]))
        for kind, statuses in (("snapshots", SNAPSHOT_BUSY), ("backups", BACKUP_BUSY)):
            found += ["%s %s %s" % (kind, i, item["status"])
                      for i, item in self.listing(kind).items() if item["status"] in statuses]
        if self.groups:
            resp = self.stack.request("GET", "/groups/detail?all_tenants=1", version=GROUPS)
            assert resp.status_code == 200, resp.text
            found += ["group %s %s" % (g["id"], g["status"]) for g in resp.json()["groups"]
                      if g["status"] in GROUP_BUSY]
        return found

    def settle(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            # cheap first: every operation owns a workers row from its acceptance to its end
            if db.worker_get_all() or self.in_flight():
                busy = ["workers %s" % [(w.resource_id, w.operation)
                                        for w in db.worker_get_all()], self.in_flight()]
            else:
                busy = self.busy()
            if not busy:
                return
            if time.monotonic() > deadline:
                self.fail("still in flight after %ss: %s" % (timeout, busy))
            time.sleep(0.02)

    def check(self):
        drift = quota.check()
        if drift:
            self.fail("quota check found drift (project, resource, in_use, counted): %s"
                      % drift)
        counted = quota_api.recount()
        self.peak = max(self.peak, sum(n for per in counted.values() for n in per.values()))
        for project in PROJECTS:
            resp = self.stack.request("GET", "/os-quota-sets/%s?usage=True" % project)
            assert resp.status_code == 200, resp.text
            want = counted.get(project, {})
            wrong = {r: (v["in_use"], want.get(r, 0))
                     for r, v in resp.json()["quota_set"].items()
                     if isinstance(v, dict) and r not in quota.NOT_COUNTED
                     and (v["in_use"] != want.get(r, 0) or v["reserved"])}
            if wrong:
                self.fail("the API's usage of %s is not the recount ({resource: (in_use, "
                          "counted)}): %s" % (project, wrong))


def stack_for_the_run(make_stack, database_url=None):
    stack = make_stack(backends={b: {} for b in BACKENDS}, database_url=database_url)
    deadline = time.monotonic() + 30
    while True:  # both back ends' pools reported to the scheduler, with room
        resp = stack.request("GET", "/scheduler-stats/get_pools?detail=True")
        assert resp.status_code == 200, resp.text
        reported = [p for p in resp.json()["pools"]
                    if p["capabilities"].get("free_capacity_gb", 0) > 10]
        if len(reported) == len(BACKENDS):
            break
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.05)
    for name, specs in TYPES.items():
        resp = stack.request("POST", "/types", {"volume_type": {"name": name,
                                                                "extra_specs": specs}})
        assert resp.status_code == 200, resp.text
    resp = stack.request("POST", "/group_types", {"group_type": {"name": "gt"}},
                         version=GROUPS)
    assert resp.status_code == 202, resp.text
    # limits that some sequences reach (413s are part of the run); p2 has a per-type one
    for project, limits in (("p1", {"volumes": 8, "gigabytes": 24, "snapshots": 5,
                                    "backups": 3, "groups": 2}),
                            ("p2", {"volumes": 10, "volumes_on-other": 2,
                                    "gigabytes": 30})):
        resp = stack.request("PUT", "/os-quota-sets/" + project, {"quota_set": limits})
        assert resp.status_code == 200, resp.text
    return stack


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_leave_no_quota_drift(make_stack, seed):
    stack = stack_for_the_run(make_stack)
    run = Run(stack, seed)
    for _ in range(STEPS):
        run.step()
    # the run did something: resources were made and counted
    assert run.volumes and run.peak > 0, "\n".join(run.log)


def test_retype_moves_per_type_usage_and_respects_the_new_types_limits(make_stack):
    """The drift the sequences found first, pinned: a retype in place moves
    volumes_<type>/gigabytes_<type> to the new type; a new type without room is a 413 at
    the API and nothing changes."""
    stack = stack_for_the_run(make_stack)

    def usage(project="p2"):
        return quota.project_usage(project, ["volumes_on-other", "gigabytes_on-other",
                                             "volumes_plain", "gigabytes_plain"])

    def made(**fields):
        resp = stack.request("POST", "/volumes", {"volume": dict(
            size=2, name="v", **fields)}, project="p2")
        assert resp.status_code == 202, resp.text
        return stack.wait_volume(resp.json()["volume"]["id"], ("available",))

    first = made(volume_type="on-other")
    made(volume_type="plain")
    assert usage() == {"volumes_on-other": 1, "gigabytes_on-other": 2,
                       "volumes_plain": 1, "gigabytes_plain": 2}
    path = "/volumes/%s/action"
    resp = stack.request("POST", path % first["id"], {"os-retype": {"new_type": "plain"}},
                         project="p2")
    assert resp.status_code == 202, resp.text
    assert stack.wait_volume(first["id"], ("available",))["volume_type"] == "plain"
    assert usage() == {"volumes_on-other": 0, "gigabytes_on-other": 0,
                       "volumes_plain": 2, "gigabytes_plain": 4}
    assert quota.check() == []
    # p2 may have 2 volumes of on-other: with two there, retyping a third to it is refused
    made(volume_type="on-other")
    made(volume_type="on-other")
    resp = stack.request("POST", path % first["id"], {"os-retype": {
        "new_type": "on-other", "migration_policy": "on-demand"}}, project="p2")
    assert resp.status_code == 413, resp.text
    assert "volumes_on-other" in resp.json()["overLimit"]["message"]
    assert stack.wait_volume(first["id"], ("available",))["volume_type"] == "plain"
    assert usage() == {"volumes_on-other": 2, "gigabytes_on-other": 4,
                       "volumes_plain": 2, "gigabytes_plain": 4}
    assert quota.check() == []
