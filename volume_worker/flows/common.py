"""Pieces the volume flows share: running a flow (with its notifications,
common/notifications.py), reading why it failed (common/flows.py)."""

from common.flows import failure_reason
from common.notifications import run_flow

__all__ = ["failure_reason", "run_flow"]
