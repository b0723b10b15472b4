"""JSON schemas of request bodies. Unknown keys are refused: a typo must not pass silently."""

import jsonschema

from common import exception

MAX_VOLUME_SIZE_GB = 65536  # seed 000: a volume is 1 GiB to 64 TiB

name = {"type": ["string", "null"], "maxLength": 255}
description = {"type": ["string", "null"], "maxLength": 255}
metadata = {
    "type": "object",
    "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
volume_size = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]+$",
    "minimum": 1,
    "maximum": MAX_VOLUME_SIZE_GB,
}
nullable_uuid = {"type": ["string", "null"], "maxLength": 255}
uuid_or_null = {"anyOf": [{"type": "string", "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?"
                           "[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"},
                          {"type": "null"}]}

volume_create = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "size": {"anyOf": [volume_size, {"type": "null"}]},
                "name": name,
                "display_name": name,
                "description": description,
                "display_description": description,
                "volume_type": {"type": ["string", "null"], "maxLength": 255},
                "availability_zone": {"type": ["string", "null"], "maxLength": 255},
                "metadata": {"anyOf": [metadata, {"type": "null"}]},
                "snapshot_id": uuid_or_null,
                "source_volid": uuid_or_null,
                "imageRef": nullable_uuid,
                "backup_id": nullable_uuid,
                "consistencygroup_id": nullable_uuid,
                "group_id": nullable_uuid,
                "multiattach": {"type": ["boolean", "null"]},
            },
            # no "required": size may be left out when the volume comes from a snapshot or
            # a volume; api/routes/volumes.py says so when it is missing otherwise
            "additionalProperties": False,
        },
        "OS-SCH-HNT:scheduler_hints": {"type": ["object", "null"]},
    },
    "required": ["volume"],
    "additionalProperties": False,
}

volume_update = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "name": name,
                "display_name": name,
                "description": description,
                "display_description": description,
                "metadata": metadata,
            },
            "additionalProperties": False,
        },
    },
    "required": ["volume"],
    "additionalProperties": False,
}

metadata_body = {
    "type": "object",
    "properties": {"metadata": metadata},
    "required": ["metadata"],
    "additionalProperties": False,
}

metadata_item_body = {
    "type": "object",
    "properties": {"meta": {"allOf": [metadata, {"minProperties": 1, "maxProperties": 1}]}},
    "required": ["meta"],
    "additionalProperties": False,
}

extra_specs = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {
        "type": ["string", "boolean", "number"], "maxLength": 255}},
    "additionalProperties": False,
}

type_is_public = {"type": ["boolean", "string"],
                  "enum": [True, False, "true", "false", "True", "False"]}

type_create = {
    "type": "object",
    "properties": {
        "volume_type": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255,
                         "pattern": r"^(?!\s)(.*\S)?$"},
                "description": description,
                "os-volume-type-access:is_public": type_is_public,
                "is_public": type_is_public,
                "extra_specs": extra_specs,
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["volume_type"],
    "additionalProperties": False,
}

type_update = {
    "type": "object",
    "properties": {
        "volume_type": {
            "type": "object",
            "properties": {
                "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                         "pattern": r"^(?!\s)(.*\S)?$"},
                "description": description,
                "is_public": type_is_public,
            },
            "additionalProperties": False,
        },
    },
    "required": ["volume_type"],
    "additionalProperties": False,
}

extra_specs_body = {
    "type": "object",
    "properties": {"extra_specs": extra_specs},
    "required": ["extra_specs"],
    "additionalProperties": False,
}

extra_spec_item_body = {"allOf": [extra_specs, {"minProperties": 1, "maxProperties": 1}]}

# QoS specs (api/routes/qos_specs.py): keys as extra specs' (Cinder's pattern); values strings,
# numbers or booleans (stored as strings); `name` and `consumer` sit among the keys on create.
QOS_KEY = "^[a-zA-Z0-9-_:. /]{1,255}$"
qos_value = {"type": ["string", "boolean", "number"], "maxLength": 255}
qos_specs_create = {
    "type": "object",
    "properties": {
        "qos_specs": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 255,
                         "pattern": r"\S"},
                "consumer": {"type": "string"},
            },
            "patternProperties": {QOS_KEY: qos_value},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["qos_specs"],
    "additionalProperties": False,
}
qos_specs_set = {
    "type": "object",
    "properties": {
        "qos_specs": {
            "type": "object",
            "properties": {"consumer": {"type": "string"}},
            "patternProperties": {QOS_KEY: qos_value},
            "additionalProperties": False,
        },
    },
    "required": ["qos_specs"],
    "additionalProperties": False,
}
qos_specs_unset = {
    "type": "object",
    "properties": {
        "keys": {"type": "array", "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1, "maxLength": 255}},
    },
    "required": ["keys"],
    "additionalProperties": False,
}

# Volume type encryption (api/routes/encryption_types.py), as Cinder's schema: provider and
# control_location required on create, everything optional on update.
encryption_key_size = {"anyOf": [{"type": "integer", "minimum": 0},
                                 {"type": "string", "pattern": "^[0-9]{1,9}$"},
                                 {"type": "null"}]}


def _encryption(required):
    return {
        "type": "object",
        "properties": {
            "encryption": {
                "type": "object",
                "properties": {
                    "key_size": encryption_key_size,
                    "provider": {"type": "string", "maxLength": 255},
                    "control_location": {"enum": ["front-end", "back-end"]},
                    "cipher": {"type": ["string", "null"], "maxLength": 255},
                },
                "required": required,
                "additionalProperties": False,
            },
        },
        "required": ["encryption"],
        "additionalProperties": False,
    }


encryption_create = _encryption(["provider", "control_location"])
encryption_update = _encryption([])

# Per-project default volume types (3.62, api/routes/default_types.py).
default_type_set = {
    "type": "object",
    "properties": {
        "default_type": {
            "type": "object",
            "properties": {"volume_type": {"type": "string", "minLength": 1,
                                           "maxLength": 255}},
            "required": ["volume_type"],
            "additionalProperties": False,
        },
    },
    "required": ["default_type"],
    "additionalProperties": False,
}

# PUT /os-services/{enable,disable,disable-log-reason}: `service` is Cinder's deprecated
# spelling of `binary`; the route says what is missing (host, binary) and checks the reason
# as Cinder does, with Cinder's messages.
service_enable = {
    "type": "object",
    "properties": {"host": {"type": ["string", "null"], "maxLength": 255},
                   "binary": {"type": ["string", "null"], "maxLength": 255},
                   "service": {"type": ["string", "null"], "maxLength": 255},
                   "disabled_reason": {"type": ["string", "null"]}},
    "additionalProperties": False,
}

# PUT /os-services/{freeze,thaw,failover_host}: `cluster` from 3.26 (the route checks).
service_replication = {
    "type": "object",
    "properties": {"host": {"type": ["string", "null"], "maxLength": 255},
                   "cluster": {"type": ["string", "null"], "maxLength": 255},
                   "backend_id": {"type": ["string", "null"], "maxLength": 255}},
    "additionalProperties": False,
}

# PUT /clusters/{enable,disable} (3.7)
cluster_update = {
    "type": "object",
    "properties": {"name": {"type": ["string", "null"], "maxLength": 255},
                   "binary": {"type": ["string", "null"], "maxLength": 255},
                   "disabled_reason": {"type": ["string", "null"]}},
    "additionalProperties": False,
}


extend_action = {
    "type": "object",
    "properties": {"new_size": volume_size},
    "required": ["new_size"],
    "additionalProperties": False,
}

boolean_like = {"type": ["boolean", "string"]}  # Cinder accepts "true", "False", "1", ...

snapshot_create = {
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                "force": boolean_like,
                "name": name,
                "display_name": name,
                "description": description,
                "display_description": description,
                "metadata": {"anyOf": [metadata, {"type": "null"}]},
            },
            # no volume_id: the volume is not found (404), as Cinder answers
            "additionalProperties": False,
        },
    },
    "required": ["snapshot"],
    "additionalProperties": False,
}

snapshot_update = {
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "name": name,
                "display_name": name,
                "description": description,
                "display_description": description,
            },
            "additionalProperties": False,
        },
    },
    "required": ["snapshot"],
    "additionalProperties": False,
}

SNAPSHOT_STATUSES = ("available", "error", "creating", "deleting", "error_deleting")

snapshot_reset_status_action = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": list(SNAPSHOT_STATUSES)}},
    "required": ["status"],
    "additionalProperties": False,
}

revert_action = {
    "type": "object",
    "properties": {"snapshot_id": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["snapshot_id"],
    "additionalProperties": False,
}

# volume transfers (api/routes/transfers.py): os-volume-transfer takes volume_id and name;
# volume-transfers (3.55) also no_snapshots, a Cinder boolean ("true", "no", ...).
uuid = {"type": "string", "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                                     "[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"}
CINDER_BOOLEANS = [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                   "y", "t", False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO",
                   "No", "no", "n", "f"]


def _transfer_create(extra):
    return {
        "type": "object",
        "properties": {
            "transfer": {
                "type": "object",
                "properties": {"volume_id": uuid, "name": name, **extra},
                "required": ["volume_id"],
                "additionalProperties": False,
            },
        },
        "required": ["transfer"],
        "additionalProperties": False,
    }


transfer_create = _transfer_create({})
transfer_create_v355 = _transfer_create({"no_snapshots": {"enum": CINDER_BOOLEANS}})
transfer_accept = {
    "type": "object",
    "properties": {
        "accept": {
            "type": "object",
            "properties": {"auth_key": {"type": "string", "minLength": 1, "maxLength": 255}},
            "required": ["auth_key"],
            "additionalProperties": False,
        },
    },
    "required": ["accept"],
    "additionalProperties": False,
}


# generic volume groups (api/routes/group_types.py, groups.py, group_snapshots.py)
group_type_name = {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": r"^(?!\s)(.*\S)?$"}


def _wrapped(key, properties, required=()):
    return {
        "type": "object",
        "properties": {key: {"type": "object", "properties": properties,
                             "required": list(required), "additionalProperties": False}},
        "required": [key],
        "additionalProperties": False,
    }


# Cinder's group_specs: string values only (extra specs also take booleans and numbers).
group_specs = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
group_type_create = _wrapped("group_type", {
    "name": group_type_name, "description": description,
    "is_public": {"enum": CINDER_BOOLEANS}, "group_specs": group_specs}, ["name"])
group_type_update = _wrapped("group_type", {
    "name": {"anyOf": [group_type_name, {"type": "null"}]}, "description": description,
    "is_public": {"enum": CINDER_BOOLEANS}})
group_specs_body = {
    "type": "object",
    "properties": {"group_specs": group_specs},
    "required": ["group_specs"],
    "additionalProperties": False,
}
group_spec_item_body = {"allOf": [group_specs, {"minProperties": 1, "maxProperties": 1}]}
group_create = _wrapped("group", {
    "name": name, "description": description,
    "group_type": {"type": "string", "minLength": 1, "maxLength": 255},
    "volume_types": {"type": "array", "minItems": 1,
                     "items": {"type": "string", "minLength": 1, "maxLength": 255}},
    "availability_zone": {"type": ["string", "null"], "maxLength": 255}},
    ["group_type", "volume_types"])
# add_volumes and remove_volumes: volume ids separated by commas, as Cinder takes them.
volume_id_list = {"type": ["string", "null"], "maxLength": 65535}
group_update = _wrapped("group", {
    "name": name, "description": description,
    "add_volumes": volume_id_list, "remove_volumes": volume_id_list})
group_delete_action = {
    "type": "object",
    "properties": {"delete-volumes": {"enum": CINDER_BOOLEANS}},
    "additionalProperties": False,
}
GROUP_STATUSES = ("available", "error", "creating", "deleting", "error_deleting",
                  "updating", "in-use")
group_reset_status_action = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": list(GROUP_STATUSES)}},
    "required": ["status"],
    "additionalProperties": False,
}
group_create_from_src_action = {
    "type": "object",
    "properties": {"name": name, "description": description,
                   "group_snapshot_id": uuid_or_null, "source_group_id": uuid_or_null},
    "additionalProperties": False,
}
group_snapshot_create = _wrapped("group_snapshot", {
    "group_id": uuid, "name": name, "description": description}, ["group_id"])
GROUP_SNAPSHOT_STATUSES = ("available", "error", "creating", "deleting", "error_deleting")
group_snapshot_reset_status_action = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": list(GROUP_SNAPSHOT_STATUSES)}},
    "required": ["status"],
    "additionalProperties": False,
}


# backups (api/routes/backups.py), as Cinder's schemas take them: metadata from 3.43,
# availability_zone from 3.51 (unknown keys are refused before).
container = {"type": ["string", "null"], "maxLength": 255}
_backup_create = {
    "volume_id": uuid, "container": container, "description": description,
    "incremental": {"enum": CINDER_BOOLEANS}, "force": {"enum": CINDER_BOOLEANS},
    "name": name, "snapshot_id": uuid_or_null}
backup_create = _wrapped("backup", _backup_create, ["volume_id"])
backup_create_v343 = _wrapped("backup", dict(
    _backup_create, metadata={"anyOf": [metadata, {"type": "null"}]}), ["volume_id"])
backup_create_v351 = _wrapped("backup", dict(
    _backup_create, metadata={"anyOf": [metadata, {"type": "null"}]},
    availability_zone={"type": ["string", "null"], "maxLength": 255}), ["volume_id"])
backup_update = _wrapped("backup", {"name": name, "description": description})
backup_update_v343 = _wrapped("backup", {"name": name, "description": description,
                                         "metadata": metadata})
backup_restore = {
    "type": "object",
    "properties": {"restore": {"type": ["object", "null"],
                               "properties": {"name": name, "volume_id": uuid_or_null},
                               "additionalProperties": False}},
    "required": ["restore"],
    "additionalProperties": False,
}
backup_import = _wrapped("backup-record", {
    "backup_service": {"type": "string", "minLength": 1, "maxLength": 255},
    "backup_url": {"type": "string", "minLength": 1, "maxLength": 65535}},
    ["backup_service", "backup_url"])
BACKUP_RESET_STATUSES = ("available", "error")
backup_reset_status_action = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": list(BACKUP_RESET_STATUSES)}},
    "required": ["status"],
    "additionalProperties": False,
}


_validators = {}


def validate(body, schema):
    # A validator built once per schema: jsonschema.validate() would re-check the schema
    # itself on every request (about 6 ms each).
    validator = _validators.get(id(schema))
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _validators[id(schema)] = cls(schema)
    try:
        validator.validate(body)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise exception.InvalidInput(reason="%s%s" % (where + ": " if where else "",
                                                      exc.message))


def size_of(value):
    """Validated size string or int -> int (the schema allowed digits only)."""
    size = int(value)
    if not 1 <= size <= MAX_VOLUME_SIZE_GB:
        raise exception.InvalidInput(
            reason="size must be an integer from 1 to %d (GiB), got %s"
                   % (MAX_VOLUME_SIZE_GB, value))
    return size
