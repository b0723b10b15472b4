"""Pieces the volume flows share: running a flow, reading why it failed (common/flows.py)."""

from common.flows import failure_reason, run_flow

__all__ = ["failure_reason", "run_flow"]
