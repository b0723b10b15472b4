"""Create (idempotently) the projects, users and role assignments Lamina's tests use.

Run by `keystone-aio.sh start` with the Keystone venv's python, stdlib only, against a running
Keystone that `keystone-manage bootstrap` has set up (admin user, admin project, roles
admin > member > reader). Prints shell `export` lines with the ids to stdout.

usage: python keystone_seed.py AUTH_URL ADMIN_PASSWORD USER_PASSWORD
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

DOMAIN = "default"
ROLES = ("admin", "member", "reader", "service")
PROJECTS = {
    "alpha": "Lamina test tenant A",
    "beta": "Lamina test tenant B",
    "service": "Service users (keystonemiddleware credentials)",
}
# user -> [(project, role)]
USERS = {
    "alice": [("alpha", "member")],
    "bob": [("beta", "member")],
    "carol": [("alpha", "reader")],
    "dave": [("alpha", "admin")],
    # admin: what keystonemiddleware's service user needs; service: what other services ask of
    # an X-Service-Token (keystonemiddleware's service_token_roles default).
    "lamina": [("service", "admin"), ("service", "service")],
}


class Keystone:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.token = None

    def call(self, method, path, body=None, auth=True, ok=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("X-Auth-Token", self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status, headers = resp.status, resp.headers
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, e.headers
        if status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:300]!r}")
        return status, headers, (json.loads(raw) if raw else None)

    def password_auth(self, user, password, scope, ok=(201,)):
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": user, "domain": {"id": DOMAIN}, "password": password}
                    },
                },
            }
        }
        if scope:
            body["auth"]["scope"] = scope
        return self.call("POST", "/auth/tokens", body, auth=False, ok=ok)

    def find(self, collection, key, **filters):
        q = urllib.parse.urlencode(filters)
        _, _, body = self.call("GET", f"/{collection}?{q}")
        items = body[key]
        return items[0] if items else None

    def ensure(self, collection, key, create_body, **filters):
        found = self.find(collection, collection, **filters)
        if found:
            return found, False
        _, _, body = self.call("POST", f"/{collection}", {key: create_body})
        return body[key], True


def main():
    url, admin_password, user_password = sys.argv[1:4]
    ks = Keystone(url)
    # A system-scoped token: Keystone's default policies (enforce_scope) want system scope
    # for managing projects, users and grants.
    _, headers, _ = ks.password_auth("admin", admin_password, {"system": {"all": True}})
    ks.token = headers["X-Subject-Token"]

    ks.call("GET", f"/domains/{DOMAIN}")
    role_ids = {}
    for name in ROLES:
        role, created = ks.ensure("roles", "role", {"name": name}, name=name)
        role_ids[name] = role["id"]
        if created:
            print(f"created role {name}", file=sys.stderr)

    project_ids = {}
    for name, description in PROJECTS.items():
        project, created = ks.ensure(
            "projects", "project",
            {"name": name, "domain_id": DOMAIN, "description": description, "enabled": True},
            name=name, domain_id=DOMAIN)
        project_ids[name] = project["id"]
        if created:
            print(f"created project {name}", file=sys.stderr)
    admin_project = ks.find("projects", "projects", name="admin", domain_id=DOMAIN)
    project_ids["admin"] = admin_project["id"]

    user_ids = {}
    for name, grants in USERS.items():
        user, created = ks.ensure(
            "users", "user",
            {"name": name, "domain_id": DOMAIN, "password": user_password, "enabled": True},
            name=name, domain_id=DOMAIN)
        user_ids[name] = user["id"]
        if created:
            print(f"created user {name}", file=sys.stderr)
        else:
            # Existing user: make sure it is enabled and the password is the expected one
            # (only touched when wrong: a password change revokes the user's tokens).
            status, _, _ = ks.password_auth(name, user_password, None, ok=(201, 401))
            if status == 401 or not user.get("enabled", True):
                ks.call("PATCH", f"/users/{user['id']}",
                        {"user": {"password": user_password, "enabled": True}})
                print(f"reset password of user {name}", file=sys.stderr)
        for project, role in grants:
            ks.call("PUT", f"/projects/{project_ids[project]}/users/{user['id']}"
                           f"/roles/{role_ids[role]}")
    admin_user = ks.find("users", "users", name="admin", domain_id=DOMAIN)
    user_ids["admin"] = admin_user["id"]

    for name, pid in sorted(project_ids.items()):
        print(f"export LAMINA_KS_PROJECT_{name.upper()}_ID={pid}")
    for name, uid in sorted(user_ids.items()):
        print(f"export LAMINA_KS_USER_{name.upper()}_ID={uid}")
    for name, rid in sorted(role_ids.items()):
        print(f"export LAMINA_KS_ROLE_{name.upper()}_ID={rid}")


if __name__ == "__main__":
    main()
