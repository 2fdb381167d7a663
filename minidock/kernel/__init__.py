"""Kernel adapters: the only code in minidock that changes the kernel.

Every helper here is idempotent: creating what exists, or deleting what is
gone, succeeds. Above this package, nothing imports pyroute2 or runs ip or
iptables.
"""
