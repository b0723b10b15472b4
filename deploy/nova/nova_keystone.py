"""Keystone registrations for the test Nova (deploy/nova/nova-aio.sh), stdlib only.

usage: nova_keystone.py AUTH_URL ADMIN_PASSWORD services PUBLIC_NOVA_URL PUBLIC_PLACEMENT_URL
       nova_keystone.py AUTH_URL ADMIN_PASSWORD volume URL      (block-storage endpoint)
       nova_keystone.py AUTH_URL ADMIN_PASSWORD no-volume       (remove it)

`services` makes (idempotently) the users nova and placement (password lamina-pass, admin and
service on project service) and the compute and placement services with their public and
internal endpoints in RegionOne. `volume` gives the catalog's block-storage service (made
when missing) public and internal endpoints URL in region lamina-nova, replacing the ones it
had there; `no-volume` removes them. Nova finds the volume API only through the catalog."""

import json
import sys
import urllib.error
import urllib.request

REGION = "RegionOne"
# Lamina's endpoint for Nova lives in a region of its own: the block-storage service is
# shared with tests/tempest (which uses regions of its own too), so neither sees the other's
VOLUME_REGION = "lamina-nova"
PASSWORD = "lamina-pass"


class Keystone:
    def __init__(self, auth_url, admin_password):
        self.url = auth_url.rstrip("/")
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": admin_password}}},
            # creating users and services needs a system-scoped token (keystone's policies)
            "scope": {"system": {"all": True}}}}
        req = urllib.request.Request(self.url + "/auth/tokens", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.token = resp.headers["X-Subject-Token"]

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, json.dumps(body).encode() if body
                                     else None, {"Content-Type": "application/json",
                                                 "X-Auth-Token": self.token}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            if method == "PUT" and exc.code == 409:
                return {}
            raise SystemExit("%s %s: %s %s" % (method, path, exc.code, exc.read()[:300]))
        return json.loads(data) if data else {}

    def one(self, collection, **query):
        qs = "&".join("%s=%s" % kv for kv in query.items())
        found = self.call("GET", "/%s?%s" % (collection, qs))[collection]
        return found[0] if found else None

    def user(self, name, project_id, role_ids):
        user = self.one("users", name=name, domain_id="default")
        if user is None:
            user = self.call("POST", "/users", {"user": {
                "name": name, "domain_id": "default", "password": PASSWORD,
                "default_project_id": project_id}})["user"]
        for role_id in role_ids:
            self.call("PUT", "/projects/%s/users/%s/roles/%s" % (project_id, user["id"],
                                                                 role_id))

    def service(self, service_type, name, url, region=REGION):
        service = self.one("services", type=service_type)
        if service is None:
            service = self.call("POST", "/services", {"service": {
                "type": service_type, "name": name, "enabled": True}})["service"]
        if region not in {r["id"] for r in self.call("GET", "/regions")["regions"]}:
            self.call("POST", "/regions", {"region": {"id": region}})
        endpoints = self.endpoints(service["id"], region)
        for endpoint in endpoints:
            if endpoint["url"] != url:
                self.call("DELETE", "/endpoints/" + endpoint["id"])
        have = {e["interface"] for e in endpoints if e["url"] == url}
        for interface in ("public", "internal"):
            if interface not in have:
                self.call("POST", "/endpoints", {"endpoint": {
                    "service_id": service["id"], "interface": interface, "url": url,
                    "region_id": region, "enabled": True}})
        return service

    def endpoints(self, service_id, region):
        return [e for e in self.call("GET", "/endpoints?service_id=" + service_id)["endpoints"]
                if e["region_id"] == region]

    def drop_endpoints(self, service_type, region):
        service = self.one("services", type=service_type)
        if service is not None:
            for endpoint in self.endpoints(service["id"], region):
                self.call("DELETE", "/endpoints/" + endpoint["id"])


def main(argv):
    auth_url, admin_password, command, *args = argv
    ks = Keystone(auth_url, admin_password)
    if command == "services":
        nova_url, placement_url = args
        project = ks.one("projects", name="service", domain_id="default")
        if project is None:
            raise SystemExit("no project service: run deploy/keystone/keystone-aio.sh seed")
        roles = [ks.one("roles", name=name)["id"] for name in ("admin", "service")]
        for name in ("nova", "placement"):
            ks.user(name, project["id"], roles)
        ks.service("compute", "nova", nova_url)
        ks.service("placement", "placement", placement_url)
    elif command == "volume":
        ks.service("block-storage", "lamina", args[0], VOLUME_REGION)
    elif command == "no-volume":
        ks.drop_endpoints("block-storage", VOLUME_REGION)
    else:
        raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    main(sys.argv[1:])
