"""The single-node Ceph cluster of deploy/ceph/ceph-aio.sh, as the tests see it.

`make test` starts the cluster (LAMINA_REQUIRE_CEPH=1): a test that needs it then fails if it
is not there. Run by hand without it, such tests are skipped with the reason."""

import json
import os
import subprocess

import pytest

STATE_DIR = os.environ.get("LAMINA_CEPH_DIR", "/var/lib/lamina-ceph")
CONF = os.environ.get("CEPH_CONF", os.path.join(STATE_DIR, "ceph.conf"))
USER = os.environ.get("LAMINA_CEPH_USER", "lamina")
KEYRING = os.environ.get("LAMINA_CEPH_KEYRING",
                         os.path.join(STATE_DIR, "ceph.client.%s.keyring" % USER))
POOL = "volumes"
SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "ceph", "ceph-aio.sh")


def available():
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError as exc:
        return "rados/rbd bindings not importable: %s" % exc
    if not os.path.exists(CONF) or not os.path.exists(KEYRING):
        return "no Ceph cluster config at %s" % CONF
    try:
        run("ceph", "health")
    except Exception as exc:
        return "Ceph cluster not answering: %s" % exc
    return None


def require():
    reason = available()
    if reason is None:
        return
    if os.environ.get("LAMINA_REQUIRE_CEPH") == "1":
        pytest.fail("Ceph is required here (make test starts it): " + reason)
    pytest.skip(reason)


def run(*argv, check=True, timeout=60):
    cmd = list(argv) + ["-c", CONF, "--id", USER, "--keyring", KEYRING]
    if argv[0] == "ceph":
        cmd = list(argv) + ["-c", CONF, "--id", "admin"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), result.stderr))
    return result


def rbd_info(image, pool=POOL):
    result = run("rbd", "info", "%s/%s" % (pool, image), "--format", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def rbd_ls(pool=POOL):
    return json.loads(run("rbd", "ls", pool, "--format", "json").stdout or "[]")


def ceph_df_pool(pool=POOL):
    df = json.loads(run("ceph", "df", "detail", "--format", "json").stdout)
    return next(p["stats"] for p in df["pools"] if p["name"] == pool)


def backend_options(**extra):
    return {"volume_driver": "rbd", "volume_backend_name": "ceph", "rbd_pool": POOL,
            "rbd_user": USER, "rbd_keyring": KEYRING, "rbd_ceph_conf": CONF,
            "rados_connect_timeout": 5, "rados_op_timeout": 10, **extra}


def stop_cluster():
    subprocess.run(["bash", SCRIPT, "stop"], check=True, capture_output=True, timeout=120)


def start_cluster():
    subprocess.run(["bash", SCRIPT, "start"], check=True, capture_output=True, timeout=300)
