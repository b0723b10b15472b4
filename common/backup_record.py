"""Export records of backups (GET /backups/{id}/export_record, POST /backups/import_record).

A record is what another Lamina (or this one, after the row was deleted) needs to take a
backup back whose data is still in a repository: the backup's own fields and its metadata, as
JSON, base64-encoded so that it travels as one opaque string (Cinder's backup_url). The data
itself is never in the record: the backup service checks on import that the manifest the
record names is in its repository (docs/backups-design.md)."""

import base64
import binascii
import datetime
import json

from common import exception
from common.db import backups_api

# The fields a record carries. Not the project or user (an import belongs to the importer),
# nor the status (an import starts `creating`), nor what only a running operation holds.
FIELDS = ("id", "volume_id", "snapshot_id", "availability_zone", "name", "description",
          "container", "service", "service_metadata", "size", "object_count", "parent_id",
          "is_incremental", "num_dependent_backups", "data_timestamp", "source_snapshot",
          "encryption_key_id", "created_at", "host")
TIMES = ("data_timestamp", "created_at")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
# A record's JSON type per field (None allowed for every one but id and size).
TYPES = {"size": int, "object_count": int, "num_dependent_backups": int,
         "is_incremental": bool}


# Cinder names a backup's service by its driver module (cinder.backup.drivers.posix, ...), and
# its clients expect that spelling of the export's backup_service (Tempest checks the prefix);
# Lamina's rows keep the repository kind (posix, rados). Both spellings are taken on import.
CINDER_SERVICE_PREFIX = "cinder.backup.drivers."


def cinder_service(kind):
    """The backup_service a client sees for a repository kind (None: unknown yet)."""
    return CINDER_SERVICE_PREFIX + kind if kind else ""


def lamina_service(name):
    """The repository kind a client's backup_service names ("cinder.backup.drivers.posix",
    Cinder's class path "cinder.backup.drivers.posix.PosixBackupDriver", or "posix")."""
    if name.startswith(CINDER_SERVICE_PREFIX):
        return name[len(CINDER_SERVICE_PREFIX):].split(".")[0]
    return name


def encode(backup):
    """The backup_url of a backup row."""
    record = {}
    for field in FIELDS:
        value = getattr(backup, field)
        if field in TIMES and value is not None:
            value = value.strftime(TIME_FORMAT)
        record[field] = value
    record["metadata"] = {m.key: m.value for m in backup.backup_metadata}
    return base64.b64encode(json.dumps(record, sort_keys=True).encode("utf-8")).decode("ascii")


def _unparsable():
    return backups_api.InvalidBackup(reason="Can't parse backup record.")


def decode(backup_url):
    """A backup_url -> the row values it names (plus "metadata"); garbage: 400 in Cinder's
    words, a record without id or size 400 as Cinder says it."""
    if not isinstance(backup_url, str):
        raise _unparsable()
    try:
        record = json.loads(base64.b64decode(backup_url.encode("ascii"), validate=True))
    except (ValueError, binascii.Error, UnicodeError):
        raise _unparsable()
    if not isinstance(record, dict):
        raise _unparsable()
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise exception.InvalidInput(reason="Provided backup record is missing an id")
    if not isinstance(record.get("size"), int) or isinstance(record["size"], bool):
        raise exception.InvalidInput(reason="Provided backup record is missing size attribute")
    values = {}
    for field in FIELDS:
        value = record.get(field)
        if value is None:
            values[field] = None
            continue
        wanted = TYPES.get(field, str)
        if field in TIMES:
            try:
                value = datetime.datetime.strptime(value, TIME_FORMAT)
            except (TypeError, ValueError):
                raise _unparsable()
        elif not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise _unparsable()
        elif wanted is str and len(value) > 255:
            raise _unparsable()
        values[field] = value
    if len(values["id"]) > 36 or values["size"] < 0:
        raise _unparsable()
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255 and len(v) <= 255
            for k, v in metadata.items()):
        raise _unparsable()
    values["metadata"] = metadata
    return values
