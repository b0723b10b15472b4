"""iSCSI exports through tgt (the userspace target daemon tgtd, managed with tgtadm).

One target per attachment: the IQN is ``<target_prefix><attachment id>``, LUN 1 is the
volume's storage (bstype rdwr), the ACL admits only the connector's initiator IQN and the
target has its own CHAP account with a random user name and secret. tgtd keeps no passwords
we can read back, so the data handed out is also kept in ``tgt_state_dir`` (mode 0600): asked
again for an export, or after tgtd lost its targets, the same credentials come back."""

import json
import logging
import os
import re
import secrets
import string
import subprocess
import threading

from oslo_config import cfg

from common import exception

LOG = logging.getLogger(__name__)

target_opts = [
    cfg.StrOpt("target_ip_address", default="127.0.0.1",
               help="Address of the iSCSI portal compute hosts connect to (where tgtd "
                    "listens); handed out as target_portal."),
    cfg.PortOpt("target_port", default=3260, help="Port of the iSCSI portal."),
    cfg.StrOpt("target_prefix", default="iqn.2010-10.org.openstack:",
               help="Prefix of the IQN of every target this back end makes; the attachment "
                    "id follows. Targets with this prefix are ours (restored at start)."),
    cfg.StrOpt("tgtadm_path", default="tgtadm", help="The tgtadm command."),
    cfg.IntOpt("tgt_control_port", default=0, min=0,
               help="Control port of the tgtd to use (tgtadm -C): one tgtd per control port "
                    "on a host."),
    cfg.StrOpt("tgt_state_dir", default="$state_path/tgt",
               help="Directory keeping each export's connection data (CHAP secret included; "
                    "files are mode 0600): tgtd cannot tell a password back."),
    cfg.IntOpt("tgtadm_timeout", default=30, min=1,
               help="Seconds one tgtadm command may take."),
]

TARGET_LUN = 1  # LUN 0 is tgt's controller
TID_ATTEMPTS = 10
_CHAP_ALPHABET = string.ascii_letters + string.digits
# One lock per process: tids are picked from what tgtd shows, so two threads must not pick
# the same one. Other processes sharing the tgtd are handled by retrying on a collision.
_LOCK = threading.Lock()
_TARGET_LINE = re.compile(r"^Target (\d+): (\S+)\s*$")
# What an IQN may hold after the prefix (RFC 3720 names), and a safe state file name.
_EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,199}$")


def subprocess_execute(*argv, timeout=None):
    """Run argv; its stdout, or DriverError with its stderr."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise exception.DriverError(reason="%s failed: %s" % (" ".join(argv), exc))
    if result.returncode != 0:
        raise exception.DriverError(reason="%s failed (exit %d): %s" % (
            " ".join(argv), result.returncode, (result.stderr or result.stdout).strip()))
    return result.stdout


def parse_targets(show_output):
    """`tgtadm --op show --mode target` -> {iqn: {"tid", "luns": {lun: backing path},
    "accounts": [...], "acls": [...]}}."""
    targets, current, section, lun = {}, None, None, None
    for line in show_output.splitlines():
        match = _TARGET_LINE.match(line)
        if match:
            current = {"tid": int(match.group(1)), "luns": {}, "accounts": [], "acls": []}
            targets[match.group(2)] = current
            section = None
            continue
        if current is None:
            continue
        text = line.strip()
        if line.startswith("    ") and not line.startswith("     "):
            section = text  # a heading of the target's block
            continue
        if section == "LUN information:":
            if text.startswith("LUN: "):
                lun = int(text[5:])
                current["luns"][lun] = None
            elif text.startswith("Backing store path: ") and lun is not None:
                path = text[len("Backing store path: "):]
                current["luns"][lun] = None if path == "None" else path
        elif section == "Account information:" and text:
            current["accounts"].append(text.split()[0])
        elif section == "ACL information:" and text:
            current["acls"].append(text)
    return targets


class TgtTarget:
    def __init__(self, configuration, execute=None):
        self.configuration = configuration
        self._execute = execute or self._subprocess_execute

    # --- tgtadm ------------------------------------------------------------------------------

    def _tgtadm(self, *args):
        conf = self.configuration
        argv = (conf.tgtadm_path, "-C", str(conf.tgt_control_port), "--lld", "iscsi") + args
        try:
            return self._execute(*argv)
        except exception.DriverError as exc:
            text = str(exc)
            if "not connected" in text or "Connection refused" in text or \
                    "No such file or directory" in text and "socket" in text:
                raise exception.DriverError(
                    reason="tgtd is not running (tgtadm could not reach it on control port "
                           "%d; deploy/tgt/tgt-aio.sh start): %s"
                           % (conf.tgt_control_port, text))
            raise

    def _subprocess_execute(self, *argv):
        return subprocess_execute(*argv, timeout=self.configuration.tgtadm_timeout)

    def _targets(self):
        return parse_targets(self._tgtadm("--op", "show", "--mode", "target"))

    def iqn(self, export_name):
        if not isinstance(export_name, str) or not _EXPORT_NAME.match(export_name):
            raise exception.DriverError(reason="%r cannot name an iSCSI target (letters, "
                                               "digits, '.', ':', '-')" % (export_name,))
        return self.configuration.target_prefix + export_name

    def portal(self):
        conf = self.configuration
        host = conf.target_ip_address
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host  # IPv6
        return "%s:%d" % (host, conf.target_port)

    # --- state kept beside tgtd (the CHAP secret) --------------------------------------------

    def _state_path(self, export_name):
        self.iqn(export_name)  # refuses a name that is no file name (a '/', '..')
        return os.path.join(self.configuration.tgt_state_dir, export_name + ".json")

    def _load_state(self, export_name):
        try:
            with open(self._state_path(export_name)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            LOG.warning("Unreadable export state %s; making the export anew",
                        self._state_path(export_name))
            return None

    def _save_state(self, export_name, state):
        os.makedirs(self.configuration.tgt_state_dir, mode=0o700, exist_ok=True)
        path = self._state_path(export_name)
        staging = path + ".tmp"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staging, path)  # a reader sees the old state or the new, never half

    def recorded(self, export_name):
        """Whether this host made an export of that name (and has not removed it)."""
        return os.path.exists(self._state_path(export_name))

    def recorded_exports(self):
        """Names of the exports this host has made and not removed (its state files)."""
        try:
            names = os.listdir(self.configuration.tgt_state_dir)
        except FileNotFoundError:
            return set()
        return {n[:-len(".json")] for n in names if n.endswith(".json")}

    def remove_exports_except(self, is_live):
        """Remove the exports this host made whose attachment is gone (an attach whose
        caller gave up while the export was being made; a detach the service did not
        finish). is_live(names) -> the names still wanted; back ends sharing the state
        directory keep each other's. Returns the names removed."""
        recorded = self.recorded_exports()
        stale = recorded - set(is_live(recorded))
        for name in sorted(stale):
            LOG.warning("Removing export %s: no live attachment holds it", name)
            self.remove_export(name)
        return stale

    def _drop_state(self, export_name):
        try:
            os.unlink(self._state_path(export_name))
        except FileNotFoundError:
            pass

    # --- exports -----------------------------------------------------------------------------

    @staticmethod
    def _initiator(connector):
        initiator = connector.get("initiator") if isinstance(connector, dict) else None
        if not initiator or not isinstance(initiator, str):
            raise exception.DriverError(
                reason="an iSCSI export needs the connector's initiator IQN (connector "
                       "%r has no \"initiator\")" % (connector,))
        return initiator

    def connection_data(self, export_name, volume_id, username, password):
        return {"target_discovered": False, "target_iqn": self.iqn(export_name),
                "target_portal": self.portal(), "target_lun": TARGET_LUN,
                "volume_id": volume_id, "auth_method": "CHAP", "auth_username": username,
                "auth_password": password, "access_mode": "rw", "encrypted": False}

    def create_export(self, export_name, backing_path, connector, volume_id):
        """Export backing_path to connector's initiator; returns the iSCSI connection data.
        Idempotent per export_name."""
        initiator = self._initiator(connector)
        with _LOCK:
            state = self._load_state(export_name)
            if state and state.get("initiator") == initiator and \
                    state.get("backing_path") == backing_path:
                self._ensure(export_name, backing_path, initiator, state["data"])
                return dict(state["data"])
            username = "lamina" + "".join(secrets.choice(_CHAP_ALPHABET) for _ in range(14))
            password = "".join(secrets.choice(_CHAP_ALPHABET) for _ in range(16))
            data = self.connection_data(export_name, volume_id, username, password)
            # Anything under this IQN now is a leftover (made without state): start clean.
            self._remove(export_name)
            self._save_state(export_name, {"initiator": initiator,
                                           "backing_path": backing_path, "data": data})
            try:
                self._create(export_name, backing_path, initiator, username, password)
            except BaseException:
                self._drop_state(export_name)
                raise
        LOG.info("Exported %s as %s to %s", backing_path, data["target_iqn"], initiator)
        return dict(data)

    def ensure_export(self, export_name, backing_path, connector, data):
        """Make tgtd hold the target `data` describes (same IQN, CHAP, ACL), re-creating it
        when tgtd lost it (restarted) or holds only part of it."""
        initiator = self._initiator(connector)
        if data.get("target_iqn") != self.iqn(export_name):
            raise exception.DriverError(
                reason="export %s: connection data names target %s, expected %s"
                       % (export_name, data.get("target_iqn"), self.iqn(export_name)))
        with _LOCK:
            self._save_state(export_name, {"initiator": initiator,
                                           "backing_path": backing_path, "data": dict(data)})
            self._ensure(export_name, backing_path, initiator, data)

    def _ensure(self, export_name, backing_path, initiator, data):
        found = self._targets().get(self.iqn(export_name))
        if found and found["luns"].get(TARGET_LUN) == backing_path and \
                data["auth_username"] in found["accounts"] and initiator in found["acls"]:
            return
        LOG.info("Target %s missing or incomplete in tgtd; re-creating it",
                 self.iqn(export_name))
        self._remove(export_name)
        self._create(export_name, backing_path, initiator, data["auth_username"],
                     data["auth_password"])

    def remove_export(self, export_name):
        """Remove the target and its CHAP account; succeeds when already gone."""
        with _LOCK:
            self._remove(export_name)
            self._drop_state(export_name)

    def refresh_size(self, backing_path):
        """After the storage behind backing_path grew: tgtd keeps the size a LUN had when it
        was made, so every target of ours on it gets its LUN made anew (same target, ACL and
        CHAP; an initiator in the middle of I/O sees it fail for that moment, and reads the
        new capacity on its next READ CAPACITY). Returns the export names refreshed."""
        prefix = self.configuration.target_prefix
        refreshed = set()
        with _LOCK:
            for iqn, found in self._targets().items():
                if not iqn.startswith(prefix) or found["luns"].get(TARGET_LUN) != backing_path:
                    continue
                tid = str(found["tid"])
                self._tgtadm("--op", "delete", "--mode", "logicalunit", "--tid", tid,
                             "--lun", str(TARGET_LUN))
                self._tgtadm("--op", "new", "--mode", "logicalunit", "--tid", tid,
                             "--lun", str(TARGET_LUN), "--backing-store", backing_path,
                             "--bstype", "rdwr")
                refreshed.add(iqn[len(prefix):])
        if refreshed:
            LOG.info("New size of %s shown by targets %s", backing_path, sorted(refreshed))
        return refreshed

    def exports(self):
        """Names of the exports (attachment ids) tgtd holds under our prefix."""
        prefix = self.configuration.target_prefix
        return {iqn[len(prefix):] for iqn in self._targets() if iqn.startswith(prefix)}

    # --- the tgtadm steps --------------------------------------------------------------------

    def _create(self, export_name, backing_path, initiator, username, password):
        """Target, LUN, ACL, CHAP account; on a failure part way, remove what was made."""
        iqn = self.iqn(export_name)
        tid = self._new_target(iqn)
        try:
            self._tgtadm("--op", "new", "--mode", "logicalunit", "--tid", str(tid),
                         "--lun", str(TARGET_LUN), "--backing-store", backing_path,
                         "--bstype", "rdwr")
            self._tgtadm("--op", "bind", "--mode", "target", "--tid", str(tid),
                         "--initiator-name", initiator)
            self._new_account(username, password)
            self._tgtadm("--op", "bind", "--mode", "account", "--tid", str(tid),
                         "--user", username)
        except BaseException:
            LOG.warning("Creating target %s failed part way; removing it", iqn)
            self._undo_create(tid, iqn, username)
            raise

    def _undo_create(self, tid, iqn, username):
        # Runs while the first error propagates: a second one is logged, never raised over it.
        for step, args in ((self._delete_target, (tid, iqn)), (self._delete_account, (username,))):
            try:
                step(*args)
            except Exception:
                LOG.exception("Could not remove %s after a failed create (tid %d)", iqn, tid)

    def _new_target(self, iqn):
        """Create the target under a free tid; retry when another process took that tid
        between our look and our create (volume services on one host share one tgtd)."""
        for _attempt in range(TID_ATTEMPTS):
            targets = self._targets()
            if iqn in targets:  # another process made this very target meanwhile
                raise exception.DriverError(reason="target %s already exists in tgtd" % iqn)
            used = {t["tid"] for t in targets.values()}
            tid = next(n for n in range(1, len(used) + 2) if n not in used)
            try:
                self._tgtadm("--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn)
                return tid
            except exception.DriverError as exc:
                if "already exists" not in str(exc):
                    raise
                LOG.info("tid %d was taken meanwhile; picking another for %s", tid, iqn)
        raise exception.DriverError(reason="no free tgt tid for %s after %d attempts"
                                    % (iqn, TID_ATTEMPTS))

    def _new_account(self, username, password):
        try:
            self._tgtadm("--op", "new", "--mode", "account", "--user", username,
                         "--password", password)
        except exception.DriverError as exc:
            if "already exists" not in str(exc):
                raise
            # Left by an earlier attempt with these credentials: replace it.
            self._delete_account(username)
            self._tgtadm("--op", "new", "--mode", "account", "--user", username,
                         "--password", password)

    def _remove(self, export_name):
        iqn = self.iqn(export_name)
        found = self._targets().get(iqn)
        state = self._load_state(export_name)
        accounts = set(found["accounts"]) if found else set()
        if state:
            accounts.add(state["data"]["auth_username"])
        if found:
            self._delete_target(found["tid"], iqn)
            LOG.info("Removed target %s", iqn)
        for account in accounts:
            self._delete_account(account)

    def _delete_target(self, tid, iqn):
        try:
            # --force: close the initiators' sessions too (a detach or a force-detach).
            self._tgtadm("--op", "delete", "--mode", "target", "--tid", str(tid), "--force")
        except exception.DriverError as exc:
            if "can't find the target" not in str(exc):
                raise
            LOG.info("Target %s (tid %d) already gone", iqn, tid)

    def _delete_account(self, username):
        try:
            self._tgtadm("--op", "delete", "--mode", "account", "--user", username)
        except exception.DriverError as exc:
            if "can't find the account" not in str(exc):
                raise
