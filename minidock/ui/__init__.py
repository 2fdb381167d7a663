"""`minidock ui`: the host's container networking, live, in a web browser.

A client of the daemon's Engine API like the CLI (never part of the daemon),
and read-only: server.py serves the page and relays what the daemon answers;
static/ holds the page itself.
"""
