"""Quotas, quota classes and limits through the API, on the in-process stack (noauth: token
`user:project` is a member of the project, `admin:project` an administrator)."""

import concurrent.futures
import os
import subprocess
import sys

from oslo_config import cfg

from common import quota
from common.db import quota_api

MEMBER = "u1:p1"
OTHER = "u2:p2"


def usage(project="p1"):
    return quota.project_usage(project, ["volumes", "gigabytes", "snapshots"])


def count_volumes(stack, project="p1"):
    resp = stack.request("GET", "/volumes?all_tenants=1&project_id=%s" % project)
    assert resp.status_code == 200, resp.text
    return len(resp.json()["volumes"])


def test_quota_set_show_defaults_update_revert(make_stack):
    stack = make_stack(overrides={"quota_volumes": 4, "quota_gigabytes": 20})
    resp = stack.request("GET", "/os-quota-sets/p1", token=MEMBER)
    assert resp.status_code == 200, resp.text
    qs = resp.json()["quota_set"]
    assert qs["id"] == "p1" and qs["volumes"] == 4 and qs["gigabytes"] == 20
    assert qs["per_volume_gigabytes"] == -1 and qs["backups"] == 10
    assert qs["volumes___DEFAULT__"] == -1 and qs["gigabytes___DEFAULT__"] == -1

    # members may not change quotas, nor read another project's
    body = {"quota_set": {"volumes": 7}}
    resp = stack.request("PUT", "/os-quota-sets/p1", body, token=MEMBER)
    assert resp.status_code == 403 and "forbidden" in resp.json()
    assert stack.request("GET", "/os-quota-sets/p2", token=MEMBER).status_code == 403
    assert stack.request("DELETE", "/os-quota-sets/p1", token=MEMBER).status_code == 403

    resp = stack.request("PUT", "/os-quota-sets/p1",
                         {"quota_set": {"volumes": 7, "gigabytes___DEFAULT__": 9,
                                        "tenant_id": "p1"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota_set"]["volumes"] == 7
    qs = stack.request("GET", "/os-quota-sets/p1", token=MEMBER).json()["quota_set"]
    assert qs["volumes"] == 7 and qs["gigabytes___DEFAULT__"] == 9 and qs["gigabytes"] == 20
    # defaults stay the defaults; another project is unaffected
    defaults = stack.request("GET", "/os-quota-sets/p1/defaults").json()["quota_set"]
    assert defaults["volumes"] == 4 and defaults["id"] == "p1"
    assert stack.request("GET", "/os-quota-sets/p2").json()["quota_set"]["volumes"] == 4

    for bad in ({"quota_set": {"volumez": 1}}, {"quota_set": {"volumes": -2}},
                {"quota_set": {"volumes": "many"}}, {"quota_set": {"volumes": True}},
                {"quota_set": []}, {"volumes": 1}):
        resp = stack.request("PUT", "/os-quota-sets/p1", bad)
        assert resp.status_code == 400, (bad, resp.text)
        assert "badRequest" in resp.json()
    assert stack.request("GET", "/os-quota-sets/p1").json()["quota_set"]["volumes"] == 7

    # delete reverts to the defaults
    assert stack.request("DELETE", "/os-quota-sets/p1").status_code == 200
    qs = stack.request("GET", "/os-quota-sets/p1").json()["quota_set"]
    assert qs["volumes"] == 4 and qs["gigabytes___DEFAULT__"] == -1


def test_quota_classes_set_the_defaults(make_stack):
    stack = make_stack(overrides={"quota_volumes": 4})
    resp = stack.request("GET", "/os-quota-class-sets/default")
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota_class_set"]["volumes"] == 4
    assert resp.json()["quota_class_set"]["id"] == "default"
    assert stack.request("GET", "/os-quota-class-sets/default", token=MEMBER).status_code == 403
    resp = stack.request("PUT", "/os-quota-class-sets/default",
                         {"quota_class_set": {"volumes": 6}}, token=MEMBER)
    assert resp.status_code == 403
    resp = stack.request("PUT", "/os-quota-class-sets/default",
                         {"quota_class_set": {"volumes": 6, "snapshots": 3}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota_class_set"]["volumes"] == 6
    # projects without their own limit get the class's
    assert stack.request("GET", "/os-quota-sets/p9").json()["quota_set"]["volumes"] == 6
    assert stack.request("GET", "/os-quota-sets/p9/defaults").json()["quota_set"][
        "snapshots"] == 3
    assert stack.request("PUT", "/os-quota-class-sets/default",
                         {"quota_class_set": {"bogus": 1}}).status_code == 400


def test_filling_a_project_then_413_and_nothing_created(make_stack):
    stack = make_stack(overrides={"quota_volumes": 3, "quota_gigabytes": 6})
    first = stack.create_volume(size=2, name="a")
    stack.create_volume(size=2, name="b")
    # 4 + 3 > 6 gigabytes
    resp = stack.request("POST", "/volumes", {"volume": {"size": 3}}, token=MEMBER)
    assert resp.status_code == 413, resp.text
    assert resp.json() == {"overLimit": {
        "code": 413,
        "message": "Requested volume or snapshot exceeds allowed gigabytes quota. Requested "
                   "3G, quota is 6G and 4G has been consumed."}}
    assert count_volumes(stack) == 2
    stack.create_volume(size=1, name="c")  # at the volumes limit, 1 GiB left
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=MEMBER)
    assert resp.status_code == 413
    assert resp.json()["overLimit"]["message"] == (
        "Maximum number of volumes allowed (3) exceeded for quota 'volumes'.")
    assert count_volumes(stack) == 3
    assert usage() == {"volumes": 3, "gigabytes": 5, "snapshots": 0}

    # usage shows in ?usage=true and in /limits
    qs = stack.request("GET", "/os-quota-sets/p1?usage=true", token=MEMBER).json()["quota_set"]
    assert qs["volumes"] == {"limit": 3, "in_use": 3, "reserved": 0}
    assert qs["gigabytes"] == {"limit": 6, "in_use": 5, "reserved": 0}
    assert qs["volumes___DEFAULT__"] == {"limit": -1, "in_use": 3, "reserved": 0}
    limits = stack.request("GET", "/limits", token=MEMBER).json()["limits"]
    assert limits["rate"] == []
    assert limits["absolute"]["maxTotalVolumes"] == 3
    assert limits["absolute"]["totalVolumesUsed"] == 3
    assert limits["absolute"]["maxTotalVolumeGigabytes"] == 6
    assert limits["absolute"]["totalGigabytesUsed"] == 5
    assert limits["absolute"]["maxTotalSnapshots"] == cfg.CONF.quota_snapshots

    # another project has its own room
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=OTHER, project="p2")
    assert resp.status_code == 202, resp.text

    # deleting frees quota
    stack.wait_volume(first["id"], ("available",))
    assert stack.request("DELETE", "/volumes/" + first["id"]).status_code == 202
    stack.wait_volume(first["id"], ("deleted",))
    assert usage() == {"volumes": 2, "gigabytes": 3, "snapshots": 0}
    stack.create_volume(size=2, name="d")
    assert usage() == {"volumes": 3, "gigabytes": 5, "snapshots": 0}
    assert quota.check() == []


def test_per_volume_and_per_type_limits(make_stack):
    stack = make_stack(overrides={"per_volume_size_limit": 4})
    resp = stack.request("POST", "/volumes", {"volume": {"size": 5}}, token=MEMBER)
    assert resp.status_code == 413
    assert resp.json()["overLimit"]["message"] == (
        "Requested volume size 5G is larger than maximum allowed limit 4G.")
    resp = stack.request("PUT", "/os-quota-sets/p1", {"quota_set": {
        "volumes___DEFAULT__": 1, "per_volume_gigabytes": 8}})
    assert resp.status_code == 200, resp.text
    stack.create_volume(size=5)
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=MEMBER)
    assert resp.status_code == 413
    assert "volumes___DEFAULT__" in resp.json()["overLimit"]["message"]
    assert count_volumes(stack) == 1


def test_concurrent_creates_against_quota_create_exactly_the_limit(make_stack):
    stack = make_stack(overrides={"quota_volumes": 10, "quota_gigabytes": 1000})

    def create(_):
        return stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=MEMBER)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(create, range(50)))
    codes = [r.status_code for r in responses]
    assert codes.count(202) == 10, codes
    assert codes.count(413) == 40, codes
    assert count_volumes(stack) == 10
    assert usage() == {"volumes": 10, "gigabytes": 10, "snapshots": 0}
    for r in responses:
        if r.status_code == 202:
            stack.wait_volume(r.json()["volume"]["id"], ("available",), timeout=120)
    assert quota.check() == []


def test_extend_charges_the_difference(make_stack):
    stack = make_stack(overrides={"quota_gigabytes": 6})
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    path = "/volumes/%s/action" % volume["id"]
    resp = stack.request("POST", path, {"os-extend": {"new_size": 7}}, token=MEMBER)
    assert resp.status_code == 413, resp.text
    assert resp.json()["overLimit"]["message"] == (
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is "
        "6G and 2G has been consumed.")
    unchanged = stack.wait_volume(volume["id"], ("available",))
    assert unchanged["size"] == 2
    resp = stack.request("POST", path, {"os-extend": {"new_size": 6}}, token=MEMBER)
    assert resp.status_code == 202, resp.text
    assert stack.wait_volume(volume["id"], ("available",))["size"] == 6
    assert usage()["gigabytes"] == 6
    assert quota.check() == []
    # deleting gives the whole new size back
    assert stack.request("DELETE", "/volumes/" + volume["id"]).status_code == 202
    stack.wait_volume(volume["id"], ("deleted",))
    assert usage()["gigabytes"] == 0


def test_failures_leave_usage_equal_to_resources(make_stack):
    """Fault injection at a create, an extend and a delete step: afterwards the usage rows
    equal the recount from the tables (and the error volumes count until deleted)."""
    stack = make_stack(overrides={"quota_volumes": 20, "quota_gigabytes": 100})
    ok = stack.create_volume(size=3)
    stack.wait_volume(ok["id"], ("available",))

    stack.override("fail_points", ["create_volume.create_storage"], group="debug")
    failed_create = stack.create_volume(size=4)
    stack.wait_volume(failed_create["id"], ("error",))
    assert usage() == {"volumes": 2, "gigabytes": 7, "snapshots": 0}

    stack.override("fail_points", ["extend_volume.extend_storage"], group="debug")
    resp = stack.request("POST", "/volumes/%s/action" % ok["id"],
                         {"os-extend": {"new_size": 10}})
    assert resp.status_code == 202, resp.text
    assert stack.wait_volume(ok["id"], ("error_extending",))["size"] == 3
    assert usage() == {"volumes": 2, "gigabytes": 7, "snapshots": 0}

    stack.override("fail_points", ["delete_volume.delete_storage"], group="debug")
    assert stack.request("DELETE", "/volumes/" + ok["id"]).status_code == 202
    stack.wait_volume(ok["id"], ("error_deleting",))
    assert usage() == {"volumes": 2, "gigabytes": 7, "snapshots": 0}
    assert quota.check() == []

    stack.override("fail_points", [], group="debug")
    assert stack.request("DELETE", "/volumes/" + failed_create["id"]).status_code == 202
    stack.wait_volume(failed_create["id"], ("deleted",))
    assert usage() == {"volumes": 1, "gigabytes": 3, "snapshots": 0}
    assert quota.check() == []


def test_manage_quota_check_reports_and_fixes_drift(make_stack, tmp_path):
    stack = make_stack(overrides={"quota_volumes": 5})
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))
    quota_api.usage_set("p1", "gigabytes", 9)  # drift, as a bug or a hand edit would make
    conf = tmp_path / "manage.conf"
    conf.write_text("[database]\nconnection = %s\n" % stack.database_url)
    manage = os.path.join(os.path.dirname(sys.executable), "lamina-manage")

    def run(*args):
        return subprocess.run([manage, "--config-file", str(conf), "quota", *args],
                              capture_output=True, text=True, timeout=120)

    result = run("check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "p1" in result.stdout and "gigabytes" in result.stdout and "9" in result.stdout
    result = run("check", "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert usage()["gigabytes"] == 2
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no drift" in result.stdout


def test_all_tenants_is_for_admins_only(make_stack):
    stack = make_stack()
    mine = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=MEMBER).json()
    theirs = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=OTHER,
                           project="p2").json()
    listed = stack.request("GET", "/volumes?all_tenants=1", token=MEMBER).json()["volumes"]
    assert [v["id"] for v in listed] == [mine["volume"]["id"]]
    listed = stack.request("GET", "/volumes?all_tenants=1").json()["volumes"]
    assert {v["id"] for v in listed} == {mine["volume"]["id"], theirs["volume"]["id"]}
    # another project's volume: 404, for every verb
    path = "/volumes/" + theirs["volume"]["id"]
    assert stack.request("GET", path, token=MEMBER).status_code == 404
    assert stack.request("PUT", path, {"volume": {"name": "x"}}, token=MEMBER).status_code == 404
    assert stack.request("DELETE", path, token=MEMBER).status_code == 404
    assert stack.request("GET", path + "/metadata", token=MEMBER).status_code == 404
    assert stack.request("POST", path + "/action", {"os-extend": {"new_size": 2}},
                         token=MEMBER).status_code == 404
    # members may not manage types or see services
    assert stack.request("POST", "/types", {"volume_type": {"name": "t"}},
                         token=MEMBER).status_code == 403
    assert stack.request("GET", "/os-services", token=MEMBER).status_code == 403


def test_hooks_for_status_changes_outside_the_usual_paths(make_stack):
    """What force delete, unmanage, os-reset_status and manage existing call (in their own
    transactions) keeps usage equal to the recount."""
    from sqlalchemy import update

    from common.db import models
    from common.db.session import writer

    stack = make_stack(overrides={"quota_volumes": 5, "quota_gigabytes": 10})
    volume = stack.create_volume(size=2)
    stack.wait_volume(volume["id"], ("available",))

    def set_status(old, new):
        with writer() as s:
            s.execute(update(models.Volume).where(models.Volume.id == volume["id"])
                      .values(status=new))
            quota.on_status_change(s, volume["id"], old, new)

    set_status("available", "deleting")  # a force delete accepted
    assert usage() == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
    assert quota.check() == []
    set_status("deleting", "error")  # os-reset_status back to a live status
    assert usage() == {"volumes": 1, "gigabytes": 2, "snapshots": 0}
    assert quota.check() == []
    with writer() as s:  # manage existing: the row learns its size
        s.execute(update(models.Volume).where(models.Volume.id == volume["id"])
                  .values(size=5))
        quota.charge_size(s, volume["id"], 3)
    assert usage()["gigabytes"] == 5 and quota.check() == []


def test_volumes_from_before_quotas_are_counted(make_stack):
    """Usage rows missing (volumes made before schema 0003): the first charge or release
    starts them from a recount, whichever comes first."""
    from sqlalchemy import delete

    from common.db import models
    from common.db.session import writer

    stack = make_stack(overrides={"quota_volumes": 3})
    volumes = [stack.create_volume(size=1) for _ in range(2)]
    for v in volumes:
        stack.wait_volume(v["id"], ("available",))

    def forget_usage():
        with writer() as s:
            s.execute(delete(models.QuotaUsage))

    forget_usage()
    assert stack.request("DELETE", "/volumes/" + volumes[0]["id"]).status_code == 202
    stack.wait_volume(volumes[0]["id"], ("deleted",))
    assert usage() == {"volumes": 1, "gigabytes": 1, "snapshots": 0}
    forget_usage()
    stack.create_volume(size=1)
    stack.create_volume(size=1)
    resp = stack.request("POST", "/volumes", {"volume": {"size": 1}}, token=MEMBER)
    assert resp.status_code == 413, resp.text
    assert usage() == {"volumes": 3, "gigabytes": 3, "snapshots": 0}
    assert quota.check() == []


def test_force_delete_unmanage_reset_status_and_manage_keep_usage_exact(make_stack):
    """Through the API, each of the paths issue 13 found drifting: after each, usage is
    what `quota check` recounts (drift would be listed)."""
    import os

    stack = make_stack(overrides={"quota_volumes": 10, "quota_gigabytes": 100})

    def made(size):
        return stack.wait_volume(stack.create_volume(size=size)["id"], ("available",))["id"]

    def action(volume_id, name, args=None):
        resp = stack.request("POST", "/volumes/%s/action" % volume_id, {name: args or {}})
        assert resp.status_code == 202, resp.text

    def gone(volume_id):
        stack.wait_volume(volume_id, ("deleted",))

    forced, unmanaged, reset = made(2), made(3), made(4)
    assert usage() == {"volumes": 3, "gigabytes": 9, "snapshots": 0}
    action(forced, "os-force_delete")
    gone(forced)
    assert usage()["gigabytes"] == 7 and quota.check() == []
    action(unmanaged, "os-unmanage")
    gone(unmanaged)
    assert usage() == {"volumes": 1, "gigabytes": 4, "snapshots": 0}
    assert quota.check() == []
    action(reset, "os-reset_status", {"status": "deleting"})
    assert usage() == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
    assert quota.check() == []
    action(reset, "os-reset_status", {"status": "available"})
    assert usage() == {"volumes": 1, "gigabytes": 4, "snapshots": 0}
    assert quota.check() == []
    # manage existing: a 2 GiB file of the pool becomes a volume of 2 GiB
    path = os.path.join(stack.workdir, "file", "pool0", "legacy")
    with open(path, "wb") as f:
        f.truncate(2 * 1024 ** 3)
    resp = stack.request("POST", "/os-volume-manage", {"volume": {
        "host": "stack@file#pool0", "ref": {"source-name": "legacy"}}})
    assert resp.status_code == 202, resp.text
    managed = stack.wait_volume(resp.json()["volume"]["id"], ("available", "error_managing"))
    assert managed["status"] == "available"
    assert usage() == {"volumes": 2, "gigabytes": 6, "snapshots": 0}
    assert quota.check() == []
    # a manage that fails (no such storage) holds nothing once deleted
    resp = stack.request("POST", "/os-volume-manage", {"volume": {
        "host": "stack@file#pool0", "ref": {"source-name": "missing"}}})
    failed = stack.wait_volume(resp.json()["volume"]["id"], ("error_managing",))
    assert quota.check() == []
    assert stack.request("DELETE", "/volumes/" + failed["id"]).status_code == 202
    gone(failed["id"])
    assert usage() == {"volumes": 2, "gigabytes": 6, "snapshots": 0}
    assert quota.check() == []
