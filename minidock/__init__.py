"""minidock: Docker's container networking rebuilt on real kernel objects, for teaching."""

__version__ = "0.1.0"
API_VERSION = "1.47"
