"""The network endpoint Nova insists on asking (deploy/nova/nova-aio.sh), stdlib only.

Servers booted with `"networks": "none"` have no ports, yet Nova's API still lists a server's
ports (and a few other collections) on GET /servers/{id}. Every GET of a collection answers
an empty list, a project's quotas are unlimited (a boot that names no network asks for them);
anything else answers 404. No real network service is needed on this machine.

usage: network_stub.py PORT   (listens on 127.0.0.1 only)"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts and parts[0] == "v2.0":
            parts = parts[1:]
        if len(parts) == 1:
            self._answer(200, {parts[0].replace("-", "_"): []})
        elif len(parts) == 2 and parts[0] == "quotas":
            # a boot that names no network (Tempest's servers) checks the project's port
            # quota before it finds there is no network to put a port on: unlimited
            self._answer(200, {"quota": {name: -1 for name in (
                "port", "network", "subnet", "security_group", "floatingip")}})
        elif not parts:
            self._answer(200, {"resources": []})
        else:
            self._answer(404, {"NeutronError": {"type": "NotFound", "message": self.path}})

    def _not_found(self):
        self._answer(404, {"NeutronError": {"type": "NotFound", "message": self.path}})

    do_POST = do_PUT = do_DELETE = _not_found

    def log_message(self, fmt, *args):
        sys.stderr.write("network-stub: %s\n" % (fmt % args))


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
