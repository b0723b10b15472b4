"""Telling the compute service what changed under an attached volume, as Cinder does: after
an in-use volume grows, Nova gets a `volume-extended` server external event for each instance
it is attached to (POST /os-server-external-events, compute microversion 2.51), so the
hypervisor resizes the guest's disk; after a reimage of a volume a rebuild reserved
(3.68), `volume-reimaged` (compute microversion 2.93) for the instance being rebuilt.

The `[nova]` section holds the service credentials (keystoneauth's auth, session and adapter
options: auth_type, auth_url, username, ..., region_name, interface, endpoint_override). With
no auth_type set, nothing is sent and the log says so (the embedded all-in-one has no compute
service)."""

import logging

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
GROUP = "nova"
EVENTS_MICROVERSION = "2.51"  # the first that knows volume-extended
REIMAGED_MICROVERSION = "2.93"  # the first that knows volume-reimaged

nova_opts = [
    cfg.FloatOpt("events_timeout", default=30.0, min=1.0,
                 help="Seconds to wait for the compute service to take server external "
                      "events."),
]
CONF.register_opts(nova_opts, group=GROUP)
ks_loading.register_auth_conf_options(CONF, GROUP)
ks_loading.register_session_conf_options(CONF, GROUP)
ks_loading.register_adapter_conf_options(CONF, GROUP)
CONF.set_default("service_type", "compute", group=GROUP)
CONF.set_default("interface", "public", group=GROUP)


def list_opts():
    """The [nova] options for the sample config."""
    return (nova_opts + ks_loading.get_auth_common_conf_options()
            + ks_loading.get_session_conf_options()
            + ks_loading.get_adapter_conf_options(include_deprecated=False))


def _adapter():
    auth = ks_loading.load_auth_from_conf_options(CONF, GROUP)
    session = ks_loading.load_session_from_conf_options(CONF, GROUP, auth=auth)
    return ks_loading.load_adapter_from_conf_options(CONF, GROUP, session=session, auth=auth)


def volume_extended(volume_id, instance_uuids):
    """Send one volume-extended event per instance. Returns True when the compute service
    took them; failures are logged (the volume has grown either way: the guest then sees
    the new size at its next attach)."""
    return _send("volume-extended", EVENTS_MICROVERSION, volume_id, instance_uuids,
                 "grew while attached to")


def volume_reimaged(volume_id, instance_uuids, succeeded):
    """Tell the instances whose rebuild reserved the volume (Nova's reimage of a server
    booted from a volume waits for it) that its new image is written, or that it failed."""
    return _send("volume-reimaged", REIMAGED_MICROVERSION, volume_id, instance_uuids,
                 "was reimaged for", status="completed" if succeeded else "failed")


def _send(name, microversion, volume_id, instance_uuids, what, status=None):
    if not instance_uuids:
        return True
    if not CONF[GROUP].auth_type:
        LOG.info("Volume %s %s %s; no compute service is configured ([nova] auth_type), so "
                 "no %s event is sent", volume_id, what, ", ".join(instance_uuids), name)
        return False
    events = [dict({"name": name, "server_uuid": instance, "tag": volume_id},
                   **({"status": status} if status else {}))
              for instance in instance_uuids]
    try:
        resp = _adapter().post("/os-server-external-events", json={"events": events},
                               microversion=microversion, raise_exc=False,
                               timeout=CONF[GROUP].events_timeout)
    except Exception:
        LOG.exception("Could not send %s events for volume %s", name, volume_id)
        return False
    if resp.status_code not in (200, 207):
        LOG.error("The compute service refused %s events for volume %s: %s %s", name,
                  volume_id, resp.status_code, resp.text[:500])
        return False
    LOG.info("Compute service sent %s for volume %s (instances %s)", name, volume_id,
             ", ".join(instance_uuids))
    return True
