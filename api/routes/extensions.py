"""/extensions: the Cinder API extensions Lamina serves, under Cinder's names and aliases.

An extension is listed only when what it adds is served: a resource extension when the app
has its route, an action extension when the resource's action table holds its action, so the
list follows the code as resources land and never names what answers 404 or 400."""

import flask

from api import views
from api.routes import snapshots
from api.routes.helpers import reply
from common import exception

bp = flask.Blueprint("extensions", __name__)


def _route(path):
    """Served when the app has a route under /v3/{project_id}/<path>."""
    def served():
        prefix = "/v3/<project_id>/" + path
        return any(rule.rule == prefix or rule.rule.startswith(prefix + "/")
                   for rule in flask.current_app.url_map.iter_rules())
    return served


def _snapshot_action(name):
    return lambda: name in snapshots.ACTIONS


def _always():
    return True


# (name, alias, description, updated, served): Cinder's descriptors (cinder/api/contrib).
EXTENSIONS = [
    ("AdminActions", "os-admin-actions", "Enable admin actions.",
     "2012-08-25T00:00:00+00:00", _always),
    ("AvailabilityZones", "os-availability-zone", "Describe Availability Zones.",
     "2013-06-27T00:00:00+00:00", _route("os-availability-zone")),
    ("Backups", "backups", "Backups support.", "2012-12-12T00:00:00+00:00", _route("backups")),
    ("Capabilities", "capabilities", "Capabilities support.", "2015-08-31T00:00:00+00:00",
     _route("capabilities")),
    ("Cgsnapshots", "cgsnapshots", "API extension for cgsnapshots.",
     "2014-08-18T00:00:00+00:00", _route("cgsnapshots")),
    ("Consistencygroups", "consistencygroups", "consistency groups support.",
     "2014-08-18T00:00:00+00:00", _route("consistencygroups")),
    ("ExtendedServices", "os-extended-services", "Extended services support.",
     "2014-01-10T00:00:00-00:00", _route("os-services")),
    ("ExtendedSnapshotAttributes", "os-extended-snapshot-attributes",
     "Extended SnapshotAttributes support.", "2012-06-19T00:00:00+00:00", _always),
    ("Hosts", "os-hosts", "Admin-only host administration.", "2011-06-29T00:00:00+00:00",
     _route("os-hosts")),
    ("Qos_specs_manage", "qos-specs", "QoS specs support.", "2013-08-02T00:00:00+00:00",
     _route("qos-specs")),
    ("QuotaClasses", "os-quota-class-sets", "Quota classes management support.",
     "2012-03-12T00:00:00+00:00", _route("os-quota-class-sets")),
    ("Quotas", "os-quota-sets", "Quota management support.", "2011-08-08T00:00:00+00:00",
     _route("os-quota-sets")),
    ("Scheduler_stats", "scheduler-stats", "Scheduler stats support.",
     "2014-09-07T00:00:00+00:00", _route("scheduler-stats")),
    ("Services", "os-services", "Services support.", "2012-10-28T00:00:00-00:00",
     _route("os-services")),
    ("SnapshotActions", "os-snapshot-actions", "Enable snapshot manager actions.",
     "2013-07-16T00:00:00+00:00", _snapshot_action("os-update_snapshot_status")),
    ("SnapshotManage", "os-snapshot-manage",
     "Allows existing backend storage to be 'managed' by Cinder.",
     "2014-12-31T00:00:00+00:00", _route("os-snapshot-manage")),
    ("SnapshotUnmanage", "os-snapshot-unmanage", "Enable volume unmanage operation.",
     "2014-12-31T00:00:00+00:00", _snapshot_action("os-unmanage")),
    ("TypesExtraSpecs", "os-types-extra-specs", "Type extra specs support.",
     "2011-08-24T00:00:00+00:00", _always),
    ("TypesManage", "os-types-manage", "Types manage support.", "2011-08-24T00:00:00+00:00",
     _always),
    ("UsedLimits", "os-used-limits", "Provide data on limited resources that are being used.",
     "2013-10-03T00:00:00+00:00", _route("limits")),
    ("VolumeActions", "os-volume-actions", "Enable volume actions.",
     "2012-05-31T00:00:00+00:00", _always),
    ("VolumeEncryptionMetadata", "os-volume-encryption-metadata",
     "Volume encryption metadata retrieval support.", "2013-07-10T00:00:00+00:00",
     _route("volumes/<volume_id>/encryption")),
    ("VolumeHostAttribute", "os-vol-host-attr", "Expose host as an attribute of a volume.",
     "2011-11-03T00:00:00+00:00", _always),
    ("VolumeImageMetadata", "os-vol-image-meta",
     "Show image metadata associated with the volume.", "2012-12-07T00:00:00+00:00",
     _always),
    ("VolumeManage", "os-volume-manage",
     "Allows existing backend storage to be 'managed' by Cinder.",
     "2014-02-10T00:00:00+00:00", _route("os-volume-manage")),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr",
     "Expose migration_status as an attribute of a volume.", "2013-08-08T00:00:00+00:00",
     _always),
    ("VolumeTenantAttribute", "os-vol-tenant-attr",
     "Expose the internal project_id as an attribute of a volume.",
     "2011-11-03T00:00:00+00:00", _always),
    ("VolumeTransfer", "os-volume-transfer", "Volume transfer management support.",
     "2013-05-29T00:00:00+00:00", _route("os-volume-transfer")),
    ("VolumeTypeAccess", "os-volume-type-access", "Volume type access support.",
     "2014-06-26T00:00:00Z", _route("types/<type_id>/os-volume-type-access")),
    ("VolumeTypeEncryption", "encryption", "Encryption support for volume types.",
     "2013-07-01T00:00:00+00:00", _route("types/<type_id>/encryption")),
    ("VolumeUnmanage", "os-volume-unmanage", "Enable volume unmanage operation.",
     "2012-05-31T00:00:00+00:00", _always),
]


def served_extensions():
    return [{"name": name, "alias": alias, "description": description, "updated": updated}
            for name, alias, description, updated, served in EXTENSIONS if served()]


@bp.get("/extensions")
def extensions_index(project_id):
    # Cinder asks no policy rule here: any authenticated caller may list them.
    return reply({"extensions": [views.extension(e) for e in served_extensions()]})


@bp.get("/extensions/<alias>")
def extensions_show(project_id, alias):
    for ext in served_extensions():
        if ext["alias"] == alias:
            return reply({"extension": views.extension(ext)})
    raise exception.NotFound("Extension %s could not be found." % alias)
