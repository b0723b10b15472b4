"""Block targets that export a back end's storage to compute hosts (issue 10).

tgt.TgtTarget: iSCSI through the userspace target daemon tgtd (LIO needs configfs and kernel
modules, which this machine's kernel does not have)."""
