"""iSCSI exports of file volumes through the real tgtd (volume_worker/targets/tgt.py), driven
through the file driver directly (no API) and checked from the compute side with qemu's
iSCSI initiator (libiscsi): data, CHAP, the initiator ACL, removal, restore, failures.

Needs tgtd answering on control port 0 with a portal on 127.0.0.1:3260 (`make services` runs
deploy/tgt/tgt-aio.sh start). Without it these tests skip, unless LAMINA_REQUIRE_TGT=1 (as
`make test` sets), when they fail. LIO (the kernel target) cannot run on this machine (no
configfs, no target_core_mod), so tgt is the only target tested."""

import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import types
import uuid

import pytest
from oslo_config import cfg

from common import exception
from tests import compute_client
from volume_worker.drivers import base
from volume_worker.drivers.file import FileDriver
from volume_worker.targets import tgt

MiB = 1024 * 1024
GiB = 1024 * MiB
COMPUTE = "iqn.1994-05.com.example:lamina-test-compute1"
OTHER_COMPUTE = "iqn.1994-05.com.example:lamina-test-compute2"
NO_DAEMON_CONTROL_PORT = 77  # no tgtd listens on socket.77


def tgtadm(*args, control_port=0, check=True):
    result = subprocess.run(["tgtadm", "-C", str(control_port), "--lld", "iscsi"] + list(args),
                            capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def tgtd_unavailable():
    if not shutil.which("tgtd") or not shutil.which("tgtadm"):
        return "tgt is not installed (apt-get install tgt; deploy/tgt/tgt-aio.sh start)"
    if not shutil.which("qemu-io"):
        return "qemu-io is not installed (apt-get install qemu-utils qemu-block-extra)"
    result = tgtadm("--op", "show", "--mode", "system", check=False)
    if result.returncode != 0:
        return "tgtd does not answer (deploy/tgt/tgt-aio.sh start): " + result.stderr.strip()
    return None


@pytest.fixture(scope="module", autouse=True)
def tgtd():
    reason = tgtd_unavailable()
    if reason is None:
        return
    if os.environ.get("LAMINA_REQUIRE_TGT") == "1":
        pytest.fail("tgtd is required here (make test starts it): " + reason)
    pytest.skip(reason)


def shown_targets():
    return tgt.parse_targets(tgtadm("--op", "show", "--mode", "target").stdout)


def shown_accounts():
    out = tgtadm("--op", "show", "--mode", "account").stdout
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


_sections = iter(range(1, 1_000_000))


def file_driver(tmp_path, execute=None, **overrides):
    """A file back end in its own config (a fresh section per call), exporting through tgt."""
    conf = cfg.ConfigOpts()
    name = "tgt%d" % next(_sections)
    section = base.register_backend_opts(conf, name, FileDriver.extra_opts)
    conf([], project="lamina-test", default_config_files=[])
    options = {"file_volume_dir": str(tmp_path / "volumes"),
               "tgt_state_dir": str(tmp_path / "tgt"), "target_protocol": "iscsi"}
    options.update(overrides)
    for key, value in options.items():
        conf.set_override(key, value, group=name)
    driver = FileDriver(name, section)
    if execute is not None:
        driver._target = tgt.TgtTarget(section, execute=execute)
    driver.do_setup()
    return driver


@pytest.fixture
def exports():
    """Attachment ids the test exports; their targets are removed (by tgtadm, not by the code
    under test) whatever the test did."""
    made = []

    def new():
        made.append(str(uuid.uuid4()))
        return made[-1]

    yield new
    targets = shown_targets()
    for attachment_id in made:
        found = targets.get("iqn.2010-10.org.openstack:" + attachment_id)
        if found:
            tgtadm("--op", "delete", "--mode", "target", "--tid", str(found["tid"]), "--force")
            for account in found["accounts"]:
                tgtadm("--op", "delete", "--mode", "account", "--user", account, check=False)


@pytest.fixture
def driver(tmp_path):
    return file_driver(tmp_path)


def new_volume(driver, size_gb=1):
    volume = types.SimpleNamespace(id=str(uuid.uuid4()), size=size_gb,
                                   host="host@%s#pool0" % driver.backend_name)
    driver.create_volume(volume)
    return volume


def file_range_sha(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return hashlib.sha256(f.read(length)).hexdigest()


def with_data(connection, **changes):
    return {"driver_volume_type": connection["driver_volume_type"],
            "data": dict(connection["data"], **changes)}


# --- data through the export ------------------------------------------------------------------

def test_write_and_read_4mib_through_iscsi_with_chap(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    connection = driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert connection["driver_volume_type"] == "iscsi"
    data = connection["data"]
    assert data["target_iqn"] == "iqn.2010-10.org.openstack:" + attachment
    assert (data["target_portal"], data["target_lun"], data["target_discovered"]) == (
        "127.0.0.1:3260", 1, False)
    assert (data["auth_method"], data["access_mode"], data["encrypted"], data["volume_id"]) == (
        "CHAP", "rw", False, volume.id)
    assert len(data["auth_password"]) >= 12 and data["auth_username"]
    found = shown_targets()[data["target_iqn"]]
    path = driver.volume_path(volume)
    assert found["luns"][1] == path and found["acls"] == [COMPUTE]
    assert found["accounts"] == [data["auth_username"]]

    disk = compute_client.connect(connection, initiator=COMPUTE)
    disk.write_pattern(0x5A, 1 * MiB, 4 * MiB)
    assert disk.read_pattern(0x5A, 1 * MiB, 4 * MiB)
    assert not disk.read_pattern(0x5B, 1 * MiB, 4 * MiB)  # the check can fail
    assert disk.read_pattern(0x00, 5 * MiB, 1 * MiB)  # past the written range: still zeros
    # the bytes landed in the backing file, and qemu reads what the file holds
    assert file_range_sha(path, 1 * MiB, 4 * MiB) == hashlib.sha256(b"\x5a" * 4 * MiB).hexdigest()
    assert disk.checksum(8 * MiB) == file_range_sha(path, 0, 8 * MiB)


def test_a_multiattach_file_serves_two_initiators_each_with_its_own_target(driver, exports):
    volume = new_volume(driver)
    first = driver.initialize_connection(volume, {"initiator": COMPUTE}, exports())
    second = driver.initialize_connection(volume, {"initiator": OTHER_COMPUTE}, exports())
    assert first["data"]["target_iqn"] != second["data"]["target_iqn"]
    assert first["data"]["auth_username"] != second["data"]["auth_username"]
    assert first["data"]["auth_password"] != second["data"]["auth_password"]
    compute_client.connect(first, COMPUTE).write_pattern(0xC3, 0, 4 * MiB)
    assert compute_client.connect(second, OTHER_COMPUTE).read_pattern(0xC3, 0, 4 * MiB)


# --- who may log in ----------------------------------------------------------------------------

def test_wrong_or_no_chap_and_other_initiators_are_refused(driver, exports):
    volume = new_volume(driver)
    connection = driver.initialize_connection(volume, {"initiator": COMPUTE}, exports())
    compute_client.connect(connection, COMPUTE).write_pattern(0x11, 0, MiB)  # the right one

    wrong_secret = with_data(connection, auth_password="WrongSecret12345")
    with pytest.raises(compute_client.ConnectError, match=r"Authentication failure\(513\)"):
        compute_client.connect(wrong_secret, COMPUTE).read_pattern(0x11, 0, MiB)

    no_chap = with_data(connection, auth_method=None, auth_username=None, auth_password=None)
    with pytest.raises(compute_client.ConnectError, match=r"Authentication failure\(513\)"):
        compute_client.connect(no_chap, COMPUTE).read_pattern(0x11, 0, MiB)

    # the right credentials from an initiator the ACL does not name
    with pytest.raises(compute_client.ConnectError, match=r"Target not found\(515\)"):
        compute_client.connect(connection, OTHER_COMPUTE).read_pattern(0x11, 0, MiB)

    # another attachment's credentials do not open this target
    other = driver.initialize_connection(volume, {"initiator": COMPUTE}, exports())
    borrowed = with_data(connection, auth_username=other["data"]["auth_username"],
                         auth_password=other["data"]["auth_password"])
    with pytest.raises(compute_client.ConnectError, match=r"Authentication failure\(513\)"):
        compute_client.connect(borrowed, COMPUTE).read_pattern(0x11, 0, MiB)


# --- life cycle ------------------------------------------------------------------------------

def test_terminate_removes_target_and_account_and_is_idempotent(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    connector = {"initiator": COMPUTE}
    connection = driver.initialize_connection(volume, connector, attachment)
    iqn, user = connection["data"]["target_iqn"], connection["data"]["auth_username"]
    assert iqn in shown_targets() and user in shown_accounts()
    assert attachment in driver.target.exports()
    driver.terminate_connection(volume, connector, attachment)
    assert iqn not in tgtadm("--op", "show", "--mode", "target").stdout
    assert user not in shown_accounts()
    assert attachment not in driver.target.exports()
    driver.terminate_connection(volume, connector, attachment)  # already gone: fine
    # the login fails (libiscsi words it as a failed reconnect when the target is gone)
    with pytest.raises(compute_client.ConnectError, match="can't open: iSCSI"):
        compute_client.connect(connection, COMPUTE).read_pattern(0, 0, MiB)


def test_create_is_idempotent_per_attachment(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    first = driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    tid = shown_targets()[first["data"]["target_iqn"]]["tid"]
    again = driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert again == first
    assert shown_targets()[first["data"]["target_iqn"]]["tid"] == tid  # the same target
    # a new driver (a restarted service) with the same state directory: still the same
    assert file_driver(driver_tmp(driver)).initialize_connection(
        volume, {"initiator": COMPUTE}, attachment) == first
    assert compute_client.connect(first, COMPUTE).read_pattern(0, 0, MiB)


def driver_tmp(driver):
    import pathlib

    return pathlib.Path(driver.configuration.file_volume_dir).parent


def test_ensure_export_recreates_a_lost_target_with_the_same_credentials(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    connector = {"initiator": COMPUTE}
    connection = driver.initialize_connection(volume, connector, attachment)
    compute_client.connect(connection, COMPUTE).write_pattern(0x77, 0, 4 * MiB)
    iqn = connection["data"]["target_iqn"]

    tid = shown_targets()[iqn]["tid"]
    driver.ensure_export(volume, connector, attachment, connection)  # present: left alone
    assert shown_targets()[iqn]["tid"] == tid

    # tgtd loses the target and the account (as when it restarts), behind our back
    tgtadm("--op", "delete", "--mode", "target", "--tid", str(tid), "--force")
    tgtadm("--op", "delete", "--mode", "account", "--user", connection["data"]["auth_username"])
    assert iqn not in shown_targets()
    # a restarted volume service (a new driver, its state directory gone too) restores it
    # from the connection_info it kept
    shutil.rmtree(driver.configuration.tgt_state_dir)
    restarted = file_driver(driver_tmp(driver))
    restarted.ensure_export(volume, connector, attachment, connection)
    found = shown_targets()[iqn]
    assert found["accounts"] == [connection["data"]["auth_username"]]
    assert found["acls"] == [COMPUTE] and found["luns"][1] == driver.volume_path(volume)
    assert compute_client.connect(connection, COMPUTE).read_pattern(0x77, 0, 4 * MiB)
    # and only half of it lost (the ACL): ensure_export makes it whole again
    tgtadm("--op", "unbind", "--mode", "target", "--tid", str(found["tid"]),
           "--initiator-name", COMPUTE)
    restarted.ensure_export(volume, connector, attachment, connection)
    assert compute_client.connect(connection, COMPUTE).read_pattern(0x77, 0, 4 * MiB)
    # afterwards the export is removed like any other
    restarted.terminate_connection(volume, connector, attachment)
    assert iqn not in shown_targets()


def test_extend_of_an_exported_volume_shows_the_new_size_through_the_target(driver, exports):
    volume = new_volume(driver)
    connector = {"initiator": COMPUTE}
    connection = driver.initialize_connection(volume, connector, exports())
    other = driver.initialize_connection(volume, {"initiator": OTHER_COMPUTE}, exports())
    disk = compute_client.connect(connection, COMPUTE)
    disk.write_pattern(0xAB, 1020 * MiB, 4 * MiB)
    with pytest.raises(compute_client.ConnectError):
        disk.write_pattern(0xCD, 2044 * MiB, 4 * MiB)  # past the end of a 1 GiB volume
    driver.extend_volume(volume, 2)
    for iqn in (connection["data"]["target_iqn"], other["data"]["target_iqn"]):
        found = shown_targets()[iqn]
        assert found["luns"][1] == driver.volume_path(volume) and found["acls"]
    disk.write_pattern(0xCD, 2044 * MiB, 4 * MiB)  # the new end, through the same credentials
    assert disk.read_pattern(0xCD, 2044 * MiB, 4 * MiB)
    assert disk.read_pattern(0xAB, 1020 * MiB, 4 * MiB)
    assert compute_client.connect(other, OTHER_COMPUTE).read_pattern(0xCD, 2044 * MiB, 4 * MiB)


def test_exports_lists_only_ours(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert attachment in driver.target.exports()
    other_prefix = file_driver(driver_tmp(driver), target_prefix="iqn.2026-12.org.example:")
    assert attachment not in other_prefix.target.exports()


# --- failures ----------------------------------------------------------------------------------

def test_connector_without_initiator_is_refused_and_nothing_made(driver, exports):
    volume = new_volume(driver)
    attachment = exports()
    before = shown_targets()
    for connector in ({}, {"host": "compute1", "ip": "127.0.0.1"}, {"initiator": ""}, None):
        with pytest.raises(exception.DriverError, match="initiator"):
            driver.initialize_connection(volume, connector, attachment)
    assert shown_targets().keys() == before.keys()
    assert not driver.target.recorded(attachment)


def test_an_attachment_id_that_cannot_name_a_target_is_refused(driver):
    volume = new_volume(driver)
    for bad in ("../../etc/x", "a b", "", "-x"):
        with pytest.raises(exception.DriverError, match="cannot name an iSCSI target"):
            driver.initialize_connection(volume, {"initiator": COMPUTE}, bad or "/")
    assert not os.path.exists(driver.configuration.tgt_state_dir) or \
        os.listdir(driver.configuration.tgt_state_dir) == []


def test_missing_backing_file_leaves_no_target(driver, exports):
    volume = new_volume(driver)
    os.unlink(driver.volume_path(volume))
    attachment = exports()
    accounts = shown_accounts()
    with pytest.raises(exception.DriverError, match="logicalunit"):
        driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert "iqn.2010-10.org.openstack:" + attachment not in shown_targets()
    assert shown_accounts() == accounts and not driver.target.recorded(attachment)


def failing_at(step):
    """A real tgtadm runner that fails the first command containing all of `step`."""
    state = {"failed": False}

    def execute(*argv):
        if not state["failed"] and all(word in argv for word in step):
            state["failed"] = True
            raise exception.DriverError(reason="injected failure at %s" % " ".join(step))
        return tgt.subprocess_execute(*argv)

    return execute


@pytest.mark.parametrize("step", [("--mode", "account", "new"), ("--mode", "account", "bind"),
                                  ("--initiator-name",)])
def test_failure_part_way_removes_what_was_made(tmp_path, exports, step):
    driver = file_driver(tmp_path, execute=failing_at(step))
    volume = new_volume(driver)
    attachment = exports()
    accounts = shown_accounts()
    with pytest.raises(exception.DriverError, match="injected failure"):
        driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert "iqn.2010-10.org.openstack:" + attachment not in shown_targets()
    assert shown_accounts() == accounts and not driver.target.recorded(attachment)
    # the next try (the injected failure was one-off) works
    connection = driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert compute_client.connect(connection, COMPUTE).read_pattern(0, 0, MiB)


def test_tgtd_not_running_is_a_clear_driver_error(tmp_path, exports):
    driver = file_driver(tmp_path, tgt_control_port=NO_DAEMON_CONTROL_PORT)
    assert tgtadm("--op", "show", "--mode", "system", control_port=NO_DAEMON_CONTROL_PORT,
                  check=False).returncode != 0  # no daemon there indeed
    volume = new_volume(driver)
    attachment = exports()
    with pytest.raises(exception.DriverError, match="tgtd is not running .*control port 77"):
        driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment)
    assert not driver.target.recorded(attachment)
    with pytest.raises(exception.DriverError, match="tgtd is not running"):
        driver.terminate_connection(volume, {"initiator": COMPUTE}, attachment)


def test_tgtadm_missing_is_a_driver_error(tmp_path, exports):
    driver = file_driver(tmp_path, tgtadm_path=str(tmp_path / "no-tgtadm"))
    volume = new_volume(driver)
    with pytest.raises(exception.DriverError, match="no-tgtadm"):
        driver.initialize_connection(volume, {"initiator": COMPUTE}, exports())


# --- tids --------------------------------------------------------------------------------------

def test_a_tid_taken_by_another_process_meanwhile_is_retried(tmp_path, exports):
    """Two volume services on one host share one tgtd: between our look at the tids and our
    create, the other one takes the tid we picked."""
    squatter_iqn = "iqn.2010-10.org.openstack:" + exports()
    state = {"squatted": None}

    def execute(*argv):
        if state["squatted"] is None and "--tid" in argv and "-T" in argv:
            tid = argv[argv.index("--tid") + 1]
            tgtadm("--op", "new", "--mode", "target", "--tid", tid, "-T", squatter_iqn)
            state["squatted"] = int(tid)
        return tgt.subprocess_execute(*argv)

    driver = file_driver(tmp_path, execute=execute)
    volume = new_volume(driver)
    connection = driver.initialize_connection(volume, {"initiator": COMPUTE}, exports())
    targets = shown_targets()
    assert targets[squatter_iqn]["tid"] == state["squatted"]
    assert targets[connection["data"]["target_iqn"]]["tid"] != state["squatted"]
    assert compute_client.connect(connection, COMPUTE).read_pattern(0, 0, MiB)


def test_concurrent_exports_get_distinct_tids(driver, exports):
    volume = new_volume(driver)
    attachments = [exports() for _ in range(12)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        connections = list(pool.map(
            lambda a: driver.initialize_connection(volume, {"initiator": COMPUTE}, a),
            attachments))
    targets = shown_targets()
    tids = {targets[c["data"]["target_iqn"]]["tid"] for c in connections}
    assert len(tids) == 12
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda a: driver.terminate_connection(volume, {}, a), attachments))
    assert not {c["data"]["target_iqn"] for c in connections} & shown_targets().keys()


# --- without tgt: the file itself -------------------------------------------------------------

def test_local_protocol_hands_out_the_file_and_reports_what_the_pool_has(tmp_path, exports):
    local = file_driver(tmp_path / "local", target_protocol="local")
    volume = new_volume(local)
    before = shown_targets().keys()
    connection = local.initialize_connection(volume, {"initiator": COMPUTE}, exports())
    assert connection == {"driver_volume_type": "local",
                          "data": {"device_path": local.volume_path(volume),
                                   "volume_id": volume.id, "access_mode": "rw"}}
    assert shown_targets().keys() == before  # nothing exported
    disk = compute_client.connect(connection)
    disk.write_pattern(0x42, 0, 4 * MiB)
    assert disk.read_pattern(0x42, 0, 4 * MiB) and not disk.read_pattern(0x43, 0, 4 * MiB)
    local.terminate_connection(volume, {}, exports())
    local.ensure_export(volume, {}, exports(), connection)
    (pool,) = local.get_pools()
    assert (pool["storage_protocol"], pool["multiattach"]) == ("local", True)
    (pool,) = file_driver(tmp_path / "iscsi").get_pools()
    assert (pool["storage_protocol"], pool["multiattach"]) == ("iSCSI", True)


# --- deploy/tgt/tgt-aio.sh, and a tgtd restart --------------------------------------------------

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "tgt", "tgt-aio.sh")
PRIVATE_CONTROL_PORT = 61  # a tgtd of this test's own, beside the shared one on control port 0
PRIVATE_PORTAL_PORT = 3261


def tgt_aio(command, tmp_path, check=True):
    env = dict(os.environ, LAMINA_TGT_CONTROL_PORT=str(PRIVATE_CONTROL_PORT),
               LAMINA_TGT_PORTAL="127.0.0.1:%d" % PRIVATE_PORTAL_PORT,
               LAMINA_TGT_LOGDIR=str(tmp_path / "tgt-log"))
    result = subprocess.run(["bash", SCRIPT, command], capture_output=True, text=True,
                            env=env, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def private_tgtd(tmp_path):
    if tgtadm("--op", "show", "--mode", "system", control_port=PRIVATE_CONTROL_PORT,
              check=False).returncode == 0:
        pytest.fail("a tgtd already answers on control port %d" % PRIVATE_CONTROL_PORT)
    yield
    tgt_aio("stop", tmp_path, check=False)


def test_tgt_aio_script_and_exports_across_a_tgtd_restart(tmp_path, private_tgtd):
    assert tgt_aio("status", tmp_path, check=False).returncode == 1
    assert "tgtd up" in tgt_aio("start", tmp_path).stdout
    assert "already answers" in tgt_aio("start", tmp_path).stdout  # idempotent
    assert tgt_aio("status", tmp_path).stdout.strip() == "up"

    driver = file_driver(tmp_path, tgt_control_port=PRIVATE_CONTROL_PORT,
                         target_port=PRIVATE_PORTAL_PORT)
    volume = new_volume(driver)
    connector = {"initiator": COMPUTE}
    attachment = str(uuid.uuid4())
    connection = driver.initialize_connection(volume, connector, attachment)
    assert connection["data"]["target_portal"] == "127.0.0.1:%d" % PRIVATE_PORTAL_PORT
    compute_client.connect(connection, COMPUTE).write_pattern(0x3C, 0, 4 * MiB)
    assert attachment not in file_driver(tmp_path / "shared").target.exports()  # other tgtd

    # tgtd goes away with its targets (stop removes them), and comes back empty
    assert "tgtd stopped" in tgt_aio("stop", tmp_path).stdout
    assert tgt_aio("status", tmp_path, check=False).returncode == 1
    with pytest.raises(exception.DriverError, match="tgtd is not running"):
        driver.ensure_export(volume, connector, attachment, connection)
    tgt_aio("start", tmp_path)
    assert attachment not in driver.target.exports()
    with pytest.raises(compute_client.ConnectError):
        compute_client.connect(connection, COMPUTE).read_pattern(0x3C, 0, 4 * MiB)
    # the volume service's start restores it: the compute host's credentials work again
    driver.ensure_export(volume, connector, attachment, connection)
    assert compute_client.connect(connection, COMPUTE).read_pattern(0x3C, 0, 4 * MiB)
    driver.terminate_connection(volume, connector, attachment)
    assert driver.target.exports() == set()


def test_stale_exports_removed_live_ones_kept(driver, exports):
    """At start the volume service removes the exports of attachments that are gone (an
    attach whose caller gave up mid-export); the live ones, and names it did not make, stay."""
    volume = new_volume(driver)
    live, gone = exports(), exports()
    for attachment_id in (live, gone):
        driver.initialize_connection(volume, {"initiator": COMPUTE}, attachment_id)
    asked = []

    def still_live(names):
        asked.append(set(names))
        return {live}

    driver.remove_stale_exports(still_live)
    assert asked == [{live, gone}]
    targets = shown_targets()
    assert "iqn.2010-10.org.openstack:" + live in targets
    assert "iqn.2010-10.org.openstack:" + gone not in targets
    assert driver.target.recorded(live) and not driver.target.recorded(gone)
