"""Volumes from images and volumes to images against the real Glance (issue 12), next to plain
Glance transfers of the same data in the same run.

    .venv/bin/python -m bench.images [--samples 3] [--size-mib 64]

Lamina runs deployed (tests/integration/test_image_volumes.start_deployment: api, scheduler,
a file and an rbd volume service with the image-volume cache on, Keystone auth, MariaDB,
RabbitMQ); Glance is deploy/glance's (started when down, stopped again then). For each sample
and back end, with a fresh raw image of --size-mib MiB (distinct data):
  glance upload     openstacksdk create_image of the data (the client's upload, for scale)
  glance download   openstacksdk download_image of it
  from image        POST /volumes with imageRef -> available (download into the volume)
  from the cache    a second volume from the same image -> available (a clone of the copy)
  upload to image   os-volume_upload_image (raw) of the first volume -> image active
Printed: each figure's median in seconds and MB/s. Needs `make services` (Keystone, Glance
installed, Ceph)."""

import argparse
import statistics
import tempfile
import time

from tests.integration import test_glance
from tests.integration.test_image_volumes import BACKENDS, pattern, start_deployment
from tests.integration.test_keystone import keystone_facts

MiB = 1024 * 1024
GiB = 1024 * MiB


def _timed(rows, name, fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    rows.setdefault(name, []).append(time.perf_counter() - started)
    return result


def _wait_image_active(cloud, image_id, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        image = cloud.glance.image.get_image(image_id)
        if image.status == "active":
            return image
        if image.status in ("killed", "deleted") or time.monotonic() > deadline:
            raise RuntimeError("image %s is %s" % (image_id, image.status))
        time.sleep(0.05)


def _upload_volume(cloud, volume_id):
    resp = cloud.alice.request("POST", "/volumes/%s/action" % volume_id, {
        "os-volume_upload_image": {"image_name": "lamina-bench-upload", "disk_format": "raw",
                                   "container_format": "bare"}})
    if resp.status_code != 202:
        raise RuntimeError("upload: %s %s" % (resp.status_code, resp.text[:300]))
    image_id = resp.json()["os-volume_upload_image"]["image_id"]
    cloud.images.append(image_id)
    _wait_image_active(cloud, image_id)
    cloud.wait(volume_id, ("available",))


def _volume_from(cloud, image_id, backend):
    volume = cloud.wait(cloud.create(image_id, backend)["id"])
    if volume["status"] != "available":
        raise RuntimeError("volume %s: %s" % (volume["id"], cloud.messages(volume["id"])))
    return volume


def measure(cloud, backend, samples, size):
    rows = {}
    for i in range(samples):
        data = pattern(size, b"bench-%s-%d-%f" % (backend.encode(), i, time.time()))
        image = _timed(rows, "glance upload", cloud.upload, data)
        _timed(rows, "glance download", cloud.glance.image.download_image, image)
        first = _timed(rows, "volume from image", _volume_from, cloud, image.id, backend)
        second = _timed(rows, "volume from the cache", _volume_from, cloud, image.id, backend)
        _timed(rows, "upload to image (raw)", _upload_volume, cloud, first["id"])
        cloud.delete(first["id"])
        cloud.delete(second["id"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=64)
    args = parser.parse_args(argv)
    ks = keystone_facts()
    if ks is None:
        raise SystemExit("Keystone is not running: make services")
    was_up = test_glance.script("status", timeout=60).returncode == 0
    if not was_up and test_glance.script("start").returncode != 0:
        raise SystemExit("Glance did not start: bash deploy/glance/glance-aio.sh start")
    try:
        with tempfile.TemporaryDirectory(prefix="lamina-bench-images-") as workdir:
            cloud = start_deployment(ks, workdir)
            try:
                size = args.size_mib * MiB
                print("%d MiB raw images, %d samples, median seconds (MB/s)"
                      % (args.size_mib, args.samples))
                for backend in BACKENDS:
                    for name, values in measure(cloud, backend, args.samples, size).items():
                        median = statistics.median(values)
                        # an upload moves the whole (1 GiB) volume, the rest the image
                        moved = GiB if name.startswith("upload") else size
                        print("  %-8s %-24s %6.2f s  (%5.0f MB/s of %d MiB)   runs: %s" % (
                            backend, name, median, moved / median / 1e6, moved // MiB,
                            ", ".join("%.2f" % v for v in values)))
            finally:
                cloud.stop()
    finally:
        if not was_up:
            test_glance.script("stop")


if __name__ == "__main__":
    main()
