"""The `minidock` command line: Docker's commands and wording, over the API."""
