"""The session fixture of the slow suites' shared deployment (tests/integration/cloud.py):
defined here once, so that every module sharing it gets the same one."""

from tests.integration.cloud import shared_cloud  # noqa: F401 (fixture)
