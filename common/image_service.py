"""The image service (Glance's v2 API) as the API and the volume services use it: read an
image's record and data, create an image, upload its data, delete it.

Whose credentials. Every call takes the request context: what a user asks about an image is
asked with the user's own token (``ctx.auth_token``, set by keystonemiddleware's X-Auth-Token
and carried over RPC in the context's dict), so Glance applies its own visibility and
sharing rules: an image another project keeps private is, to that user, an image that does
not exist. ``ctx=None``, or an admin context that carries no token (an internal one:
common.context.get_admin_context), uses Lamina's service credentials of the ``[glance]``
section (keystoneauth auth options: auth_type, auth_url, username, ...). A user context
without a token (noauth deployments) is refused with ImageNotAuthorized: nothing is asked
with more rights than the user has.

Where Glance is. ``[glance] endpoint_override`` when set (the user's token is then sent
there as it is: keystoneauth's token_endpoint plugin, no Keystone round trip). Otherwise the
image endpoint (``service_type``, ``valid_interfaces``, ``region_name``) comes from the
service catalog: oslo.context does not carry keystonemiddleware's X-Service-Catalog over
RPC, so the user's token is exchanged, scoped to the context's project, at Keystone
(``[glance] user_auth_url``, by default the auth_url of the service credentials) for a
token whose response has the catalog (keystoneauth's v3 Token plugin). That costs one
Keystone request per new token, so such adapters are kept for a few tokens (the token is
the key: it expires with it). The catalog's image endpoint is unversioned, as Glance
registers it; the paths here name /v2.

Every call has the session's ``timeout`` (for a streamed download or upload: the longest
wait for the next bytes), ``num_retries`` retries of a refused connection (and, for reads,
of a 503), and errors that name the call and the image. Data moves in chunks: a download
never holds more than ``download_chunk_size`` bytes of the image, and is checked against
the image's ``os_hash_value`` (else its md5 ``checksum``) and ``size`` as it goes."""

import collections
import copy
import hashlib
import logging
import os
import threading
import urllib.parse

import requests
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import v3 as ks_v3
from oslo_config import cfg

from common import exception

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
GROUP = "glance"

glance_opts = [
    cfg.IntOpt("num_retries", default=3, min=0,
               help="How many times a call to the image service is retried when the "
                    "connection is refused or times out, and, for reads, when it answers "
                    "503. Uploads are not retried (their data is a stream)."),
    cfg.IntOpt("download_chunk_size", default=1024 * 1024, min=4096,
               help="Bytes read from the image service at a time when downloading an "
                    "image; the most of an image held in memory."),
    cfg.StrOpt("user_auth_url",
               help="Keystone's identity URL at which a user's token is exchanged for one "
                    "with the service catalog, to find the image endpoint when "
                    "endpoint_override is unset. Default: the auth_url of the [glance] "
                    "service credentials."),
]
CONF.register_opts(glance_opts, group=GROUP)
ks_loading.register_auth_conf_options(CONF, GROUP)
ks_loading.register_session_conf_options(CONF, GROUP)
ks_loading.register_adapter_conf_options(CONF, GROUP)
# a call without a timeout could hang a volume's create flow on a dead image service
KEYSTONEAUTH_DEFAULTS = {"service_type": "image", "valid_interfaces": ["public"], "timeout": 60}
for _name, _value in KEYSTONEAUTH_DEFAULTS.items():
    CONF.set_default(_name, _value, group=GROUP)

# the attributes of Glance's image schema; every other key of an image is a property
CORE = ("id", "name", "status", "visibility", "protected", "os_hidden", "owner", "size",
        "virtual_size", "min_disk", "min_ram", "disk_format", "container_format", "checksum",
        "os_hash_algo", "os_hash_value", "created_at", "updated_at", "tags", "self", "file",
        "schema", "direct_url", "locations", "stores")
# what Glance writes itself: refused in create's metadata
READ_ONLY = ("id", "status", "size", "virtual_size", "checksum", "os_hash_algo",
             "os_hash_value", "created_at", "updated_at", "self", "file", "schema",
             "direct_url", "locations", "stores")
UPLOAD_HASH = "sha512"  # Glance's default hashing_algorithm: checked after an upload


def list_opts():
    """The [glance] options for the sample config, keystoneauth's with the defaults set here."""
    opts = []
    for opt in (ks_loading.get_auth_common_conf_options()
                + ks_loading.get_session_conf_options()
                + ks_loading.get_adapter_conf_options(include_deprecated=False)):
        if opt.dest in KEYSTONEAUTH_DEFAULTS:
            opt = copy.copy(opt)
            opt.default = KEYSTONEAUTH_DEFAULTS[opt.dest]
        opts.append(opt)
    return glance_opts + opts


_user_adapters = collections.OrderedDict()
_user_adapters_lock = threading.Lock()
USER_ADAPTERS_KEPT = 32


def _service_plugin():
    return ks_loading.load_auth_from_conf_options(CONF, GROUP)


def _adapter_with(auth):
    session = ks_loading.load_session_from_conf_options(CONF, GROUP, auth=auth)
    return ks_loading.load_adapter_from_conf_options(CONF, GROUP, session=session, auth=auth)


def service_adapter():
    """A keystoneauth adapter to the image service with Lamina's [glance] credentials."""
    auth = _service_plugin()
    if auth is None:
        raise exception.ImageServiceUnavailable(
            call="authenticate", image_id="-",
            reason="no service credentials are configured ([glance] auth_type)")
    return _adapter_with(auth)


def user_adapter(ctx):
    """A keystoneauth adapter to the image service acting with ctx's token."""
    token = getattr(ctx, "auth_token", None)
    if not token:
        raise exception.ImageNotAuthorized(
            image_id="-", reason="the request carries no token to present to the image "
                                 "service")
    override = CONF[GROUP].endpoint_override
    auth_url = None if override else _catalog_auth_url()
    key = (token, ctx.project_id, override, auth_url)
    with _user_adapters_lock:
        adapter = _user_adapters.get(key)
        if adapter is not None:
            _user_adapters.move_to_end(key)
            return adapter
    if override:
        auth = token_endpoint.Token(override, token)
    else:
        auth = ks_v3.Token(auth_url, token, project_id=ctx.project_id)
    adapter = _adapter_with(auth)
    with _user_adapters_lock:
        _user_adapters[key] = adapter
        while len(_user_adapters) > USER_ADAPTERS_KEPT:
            _user_adapters.popitem(last=False)
    return adapter


def _catalog_auth_url():
    url = CONF[GROUP].user_auth_url
    if not url:
        url = getattr(_service_plugin(), "auth_url", None)
    if not url:
        raise exception.ImageServiceUnavailable(
            call="find the image endpoint", image_id="-",
            reason="set [glance] endpoint_override, user_auth_url or the auth_url of its "
                   "service credentials")
    return url


def adapter_for(ctx):
    if ctx is None or (not getattr(ctx, "auth_token", None) and ctx.is_admin):
        return service_adapter()
    return user_adapter(ctx)


def _path(image_id, suffix=""):
    return "/v2/images/%s%s" % (urllib.parse.quote(str(image_id), safe=""), suffix)


def _glance_says(resp):
    text = " ".join((resp.text or "").split())
    return "%s %s" % (resp.status_code, text[:300])


def _request(ctx, method, path, call, image_id, retry_status=True, failure=None, **kwargs):
    """One call to Glance; its error statuses as Lamina's image exceptions. failure: the
    exception class for what is neither not found, not authorized nor a server error."""
    retries = CONF[GROUP].num_retries
    kwargs.setdefault("connect_retries", retries)
    if retry_status:
        kwargs.setdefault("status_code_retries", retries)
        kwargs.setdefault("retriable_status_codes", [503])
    try:
        resp = adapter_for(ctx).request(path, method, raise_exc=False, **kwargs)
    except ks_exc.HttpError as exc:
        # with raise_exc=False only Keystone's answers raise: the token exchanged for the
        # catalog, or the service credentials, refused (a token Keystone does not know: 404)
        if exc.http_status is not None and exc.http_status < 500:
            raise exception.ImageNotAuthorized(image_id=image_id,
                                               reason="%s: Keystone: %s" % (call, exc))
        raise exception.ImageServiceUnavailable(call=call, image_id=image_id,
                                                reason="Keystone: %s" % exc)
    except (ks_exc.ClientException, requests.exceptions.RequestException) as exc:
        raise exception.ImageServiceUnavailable(call=call, image_id=image_id,
                                                reason="%s: %s" % (type(exc).__name__, exc))
    status = resp.status_code
    if status < 400:
        return resp
    try:
        said = _glance_says(resp)
    finally:
        resp.close()
    if status == 404:
        raise exception.ImageNotFound(image_id=image_id)
    if status in (401, 403):
        raise exception.ImageNotAuthorized(image_id=image_id,
                                           reason="%s: Glance answered %s" % (call, said))
    if status >= 500 or failure is None:
        raise exception.ImageServiceUnavailable(call=call, image_id=image_id,
                                                reason="Glance answered %s" % said)
    raise failure(image_id=image_id, reason="%s: Glance answered %s" % (call, said))


def _image(body):
    image = {key: body.get(key) for key in CORE}
    image.update(body)
    image["properties"] = {k: v for k, v in body.items() if k not in CORE}
    return image


def show(ctx, image_id):
    """The image as a plain dict: Glance's attributes (id, status, size, virtual_size,
    min_disk, min_ram, disk_format, container_format, visibility, protected, checksum,
    os_hash_algo, os_hash_value, ...; absent ones None), its properties at the top level as
    Glance gives them, and again under ``properties`` (what volume_image_metadata copies).
    ImageNotFound when it does not exist or ctx may not see it."""
    resp = _request(ctx, "GET", _path(image_id), "show", image_id,
                    failure=exception.ImageUnacceptable)
    try:
        return _image(resp.json())
    except ValueError:
        raise exception.ImageServiceUnavailable(call="show", image_id=image_id,
                                                reason="Glance answered no JSON")
    finally:
        resp.close()


def locations(image):
    """The URLs where the image service keeps the image's data, as its record (show's dict)
    tells them: ``direct_url`` (Glance's show_image_direct_url; its first location, e.g.
    rbd://<fsid>/<pool>/<image>/snap in an rbd store), then each of ``locations`` (Glance's
    show_multiple_locations). Empty when Glance shows neither."""
    urls = [image.get("direct_url")]
    urls += [loc.get("url") for loc in image.get("locations") or () if isinstance(loc, dict)]
    return list(dict.fromkeys(url for url in urls if isinstance(url, str) and url))


def _expected_hash(image):
    algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
    if algo and value:
        try:
            return algo, hashlib.new(algo), value
        except ValueError:
            LOG.warning("Image %s: hash algorithm %s unknown here; checking its md5",
                        image.get("id"), algo)
    if image.get("checksum"):
        return "md5", hashlib.md5(usedforsecurity=False), image["checksum"]
    return None, None, None


def download(ctx, image_id, write, image=None, chunk_size=None):
    """Stream the image's data into write: a callable given each chunk (bytes), or a path
    (a file, or a volume's block device, written from its start). image: its record from
    show (saves a call; its size and hashes are what the data is checked against). Returns
    the bytes written. ImageDownloadFailed on a connection error, a short or long read, or
    a hash mismatch: whatever was written before is then not the image. What the write
    callable raises comes through unchanged (the target's own failure, not the image's)."""
    image = image or show(ctx, image_id)
    if image.get("status") != "active":
        raise exception.ImageUnacceptable(
            image_id=image_id, reason="its status is %s, not active" % image.get("status"))
    if hasattr(write, "__fspath__") or isinstance(write, str):
        return _download_to_path(ctx, image_id, os.fspath(write), image, chunk_size)
    return _download(ctx, image_id, write, image, chunk_size)


def _download_to_path(ctx, image_id, path, image, chunk_size):
    try:
        with open(path, "wb") as f:
            written = _download(ctx, image_id, f.write, image, chunk_size)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise exception.ImageDownloadFailed(image_id=image_id,
                                            reason="writing %s: %s" % (path, exc))
    return written


def _download(ctx, image_id, write, image, chunk_size):
    chunk_size = chunk_size or CONF[GROUP].download_chunk_size
    size = image.get("size")
    algo, hasher, expected = _expected_hash(image)
    if hasher is None:
        LOG.warning("Image %s has no checksum: its data is checked only by its size",
                    image_id)
    try:
        resp = _request(ctx, "GET", _path(image_id, "/file"), "download", image_id,
                        stream=True, failure=exception.ImageDownloadFailed)
    except exception.ImageServiceUnavailable as exc:
        raise exception.ImageDownloadFailed(image_id=image_id, reason=exc.msg)
    written = 0
    try:
        if resp.status_code == 204:
            raise exception.ImageDownloadFailed(image_id=image_id,
                                                reason="Glance has no data for it")
        for chunk in resp.iter_content(chunk_size=chunk_size):
            if not chunk:
                continue
            written += len(chunk)
            if size is not None and written > size:
                raise exception.ImageDownloadFailed(
                    image_id=image_id, reason="more data than its size of %d bytes" % size)
            if hasher is not None:
                hasher.update(chunk)
            write(chunk)
    except requests.exceptions.RequestException as exc:
        raise exception.ImageDownloadFailed(
            image_id=image_id, reason="connection failed after %d bytes: %s: %s"
            % (written, type(exc).__name__, exc))
    finally:
        resp.close()
    if size is not None and written != size:
        raise exception.ImageDownloadFailed(
            image_id=image_id, reason="short read: %d of %d bytes" % (written, size))
    if hasher is not None and hasher.hexdigest() != expected:
        raise exception.ImageDownloadFailed(
            image_id=image_id, reason="%s of the data %s, the image says %s"
            % (algo, hasher.hexdigest(), expected))
    LOG.info("Downloaded image %s: %d bytes (%s checked)", image_id, written,
             algo or "size")
    return written


def create(ctx, **meta):
    """A new (queued) image with meta (name, disk_format, container_format, visibility,
    protected, min_disk, min_ram, tags and any property); its dict as show gives it."""
    bad = sorted(set(meta) & set(READ_ONLY))
    if bad:
        raise exception.ImageUnacceptable(image_id=meta.get("name") or "(new)",
                                          reason="Glance sets %s itself" % ", ".join(bad))
    label = meta.get("name") or "(new)"
    resp = _request(ctx, "POST", "/v2/images", "create", label, retry_status=False,
                    json=meta, failure=exception.ImageUnacceptable)
    try:
        return _image(resp.json())
    except ValueError:
        raise exception.ImageServiceUnavailable(call="create", image_id=label,
                                                reason="Glance answered no JSON")
    finally:
        resp.close()


class _Counted:
    """The chunks of an upload, counted and hashed as requests sends them."""

    def __init__(self, image_id, chunks, size):
        self.image_id, self.chunks, self.size = image_id, chunks, size
        self.sent = 0
        self.hasher = hashlib.new(UPLOAD_HASH)

    def __iter__(self):
        for chunk in self.chunks:
            if not chunk:
                continue
            self.sent += len(chunk)
            if self.size is not None and self.sent > self.size:
                raise exception.ImageUploadFailed(
                    image_id=self.image_id, reason="more data than the %d bytes announced"
                    % self.size)
            self.hasher.update(chunk)
            yield chunk
        if self.size is not None and self.sent != self.size:
            # raised while the body is sent: Glance sees the upload cut, not a short image
            raise exception.ImageUploadFailed(
                image_id=self.image_id, reason="the data ended after %d of %d bytes"
                % (self.sent, self.size))


def file_chunks(path, chunk_size=None):
    """The data of a file or block device (a volume's) as chunks for upload, read as sent."""
    chunk_size = chunk_size or CONF[GROUP].download_chunk_size
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                return
            yield chunk


def upload(ctx, image_id, chunks, size=None):
    """Send the data of a queued image (created by create) from chunks, an iterable of
    bytes, streamed (chunked transfer encoding). size: the bytes the data must come to (a
    volume's size), checked as it goes. Then the image must be active with that size and
    the sha512 of what was sent (when Glance hashes with sha512). Returns the image dict."""
    body = _Counted(image_id, chunks, size)
    try:
        resp = _request(ctx, "PUT", _path(image_id, "/file"), "upload", image_id,
                        retry_status=False, connect_retries=0, data=iter(body),
                        headers={"Content-Type": "application/octet-stream"},
                        failure=exception.ImageUploadFailed)
    except exception.ImageServiceUnavailable as exc:
        raise exception.ImageUploadFailed(image_id=image_id, reason=exc.msg)
    resp.close()
    image = show(ctx, image_id)
    if image.get("status") != "active":
        raise exception.ImageUploadFailed(
            image_id=image_id, reason="it is %s after its upload" % image.get("status"))
    if image.get("size") != body.sent:
        raise exception.ImageUploadFailed(
            image_id=image_id, reason="Glance holds %s bytes, %d were sent"
            % (image.get("size"), body.sent))
    if image.get("os_hash_algo") == UPLOAD_HASH and \
            image.get("os_hash_value") != body.hasher.hexdigest():
        raise exception.ImageUploadFailed(
            image_id=image_id, reason="Glance's %s differs from that of the data sent"
            % UPLOAD_HASH)
    LOG.info("Uploaded image %s: %d bytes", image_id, body.sent)
    return image


def delete(ctx, image_id):
    """Delete the image. ImageNotFound when it is gone (or not visible), ImageNotAuthorized
    when ctx may not delete it (another project's, or protected)."""
    resp = _request(ctx, "DELETE", _path(image_id), "delete", image_id,
                    retry_status=False, failure=exception.ImageUnacceptable)
    resp.close()
