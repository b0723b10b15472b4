"""/os-availability-zone: the zones of the volume services, as Cinder lists them."""

import flask

from api import views
from api.routes.helpers import reply
from common import service
from common.db import api as db

bp = flask.Blueprint("availability_zones", __name__)


@bp.get("/os-availability-zone")
def availability_zones_index(project_id):
    """Every zone a volume service is in; a zone is available unless all its volume services
    are disabled (whether they are up is not asked, as in Cinder). Cinder asks no policy
    rule here: any authenticated caller may list them."""
    zones = {}
    for row in db.service_get_all(binary=service.VOLUME_BINARY):
        zone = row.availability_zone or service.CONF.storage_availability_zone
        zones[zone] = zones.get(zone, False) or not row.disabled
    return reply({"availabilityZoneInfo": [views.availability_zone(name, available)
                                           for name, available in sorted(zones.items())]})
