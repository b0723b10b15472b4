"""Every Lamina option, for oslo-config-generator (deploy/config/lamina.conf.sample)."""

import itertools


def list_opts():
    from api import access_log, auth, metrics, volume_actions, volume_requests
    from api import service as api_service
    from api.routes import helpers
    from backup_worker import engine as backup_engine
    from backup_worker import manager as backup_manager
    from backup_worker.chunkstore import base as chunkstore_base
    from backup_worker.chunkstore import posix as chunkstore_posix
    from backup_worker.chunkstore import rados as chunkstore_rados
    from common import control, fault, image_convert, image_service, quota, rpc, service
    from common import metrics as process_metrics
    from common.db import api as db_api
    from common.db import backups_api, session
    from scheduler import manager as scheduler_manager
    from scheduler import weighers
    from volume_worker import compute_events, image_cache
    from volume_worker import manager as volume_manager
    from volume_worker import service as volume_service
    from volume_worker.drivers import base, file, lvm, rbd
    from volume_worker.targets import tgt

    return [
        ("DEFAULT", itertools.chain(
            service.service_opts, auth.auth_opts, api_service.api_service_opts,
            helpers.api_opts, volume_requests.volume_api_opts,
            scheduler_manager.scheduler_opts, weighers.weigher_opts,
            volume_manager.volume_manager_opts, volume_service.volume_service_opts,
            quota.quota_opts, db_api.message_opts, image_convert.image_convert_opts,
            volume_actions.upload_image_opts, metrics.metrics_opts, control.control_opts,
            access_log.access_log_opts)),
        ("database", session.database_opts),
        ("upgrade_levels", rpc.upgrade_opts),
        ("debug", fault.debug_opts),
        ("metrics", process_metrics.metrics_opts),
        ("nova", compute_events.list_opts()),
        ("glance", image_service.list_opts()),
        ("backend", itertools.chain(base.backend_opts, file.file_opts, rbd.rbd_opts,
                                    lvm.lvm_opts, tgt.target_opts, image_cache.cache_opts)),
        ("backup", itertools.chain(backup_engine.engine_opts, chunkstore_base.chunkstore_opts,
                                   chunkstore_posix.posix_opts, chunkstore_rados.rados_opts,
                                   backup_manager.backup_manager_opts,
                                   backups_api.backup_opts)),
    ]
