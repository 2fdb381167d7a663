"""The SQLite store: the daemon's only record of networks, containers,
endpoints, address leases, volumes and images.

One connection, WAL mode, schema versioned with PRAGMA user_version. Records
are the typed values of `model`, kept as JSON documents keyed by id; address
leases are rows with a primary key so that the database itself forbids
handing one address out twice. Every read goes through `query` (a test's
counting store counts them); `reading()` gives a batch of reads one snapshot.
"""

from __future__ import annotations

import bisect
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .ipam import number
from .model import Container, Endpoint, Network, Volume

SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
    CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL, network_id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (container_id, network_id));
    CREATE TABLE leases (
        network_id TEXT NOT NULL, address TEXT NOT NULL, owner TEXT NOT NULL,
        PRIMARY KEY (network_id, address));
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # the intent of each operation that touches the kernel, written before it does and
    # deleted when it is over: what a restart after a crash must finish or undo
    2: """
    CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, data TEXT NOT NULL);
    """,
    # named volumes: keyed by name (a volume's id is its name, as in Docker)
    3: """
    CREATE TABLE volumes (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
    """,
}

class Store:
    """A thin layer over sqlite3; every write goes through `transaction()`."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._depth = 0
        self._reading = 0
        self.networks: Table[Network] = Table(self, "networks", Network)
        self.containers: Table[Container] = Table(self, "containers", Container)
        self.volumes: Table[Volume] = Table(self, "volumes", Volume)
        # each network's leases, address -> owner, and their numbers in order (for a binary
        # search of the lowest free one): written through like the tables' views
        self._leases: dict[str, dict[str, str]] = {}
        self._numbers: dict[str, list[int]] = {}

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"store {self.path} has schema {version}, newer than {SCHEMA_VERSION}")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self.db.execute("BEGIN IMMEDIATE")
            for stmt in filter(str.strip, _MIGRATIONS[target].split(";")):
                self.db.execute(stmt)
            self.db.execute(f"PRAGMA user_version={target}")
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def count_read(self) -> None:
        """Called on every read; a test's counting store overrides it."""

    def query(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        self.count_read()
        return self.db.execute(sql, tuple(args))

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One snapshot for a batch of reads (a start's plan); no write may happen
        inside. Nested uses, and uses inside a transaction, join the outer one."""
        if self._depth or self._reading:
            self._reading += 1
            try:
                yield
            finally:
                self._reading -= 1
            return
        self.db.execute("BEGIN DEFERRED")
        self._reading = 1
        try:
            yield
        finally:
            self._reading = 0
            self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of change; nested uses join the outer one."""
        assert not (self._reading and not self._depth), "a write inside store.reading()"
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            self._forget()
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    def _forget(self) -> None:
        """Drop every parsed cache: rebuilt from the database on next use."""
        self.networks.forget()
        self.containers.forget()
        self.volumes.forget()
        self._leases.clear()
        self._numbers.clear()

    def wipe(self) -> None:
        """Forget everything (`minidock system reset`)."""
        with self.transaction() as db:
            for table in ("endpoints", "leases", "containers", "networks", "volumes", "journal", "meta"):
                db.execute(f"DELETE FROM {table}")
            self._forget()

    # -- journal -------------------------------------------------------------
    def journal_begin(self, op: str, data: dict[str, Any]) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO journal (op, data) VALUES (?, ?)", (op, json.dumps(data)))
            return int(cur.lastrowid or 0)

    def journal_end(self, entry_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM journal WHERE id=?", (entry_id,))

    def journal(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Operations begun and never ended, oldest first."""
        rows = self.query("SELECT id, op, data FROM journal ORDER BY id").fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    # -- endpoints -----------------------------------------------------------
    def put_endpoint(self, ep: Endpoint) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO endpoints (container_id, network_id, data) VALUES (?, ?, ?)",
                (ep.container_id, ep.network_id, json.dumps(ep.to_json())),
            )

    def delete_endpoint(self, container_id: str, network_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM endpoints WHERE container_id=? AND network_id=?",
                (container_id, network_id),
            )

    def endpoints(
        self, *, container_id: str | None = None, network_id: str | None = None
    ) -> list[Endpoint]:
        sql, args = "SELECT data FROM endpoints WHERE 1=1", []
        if container_id is not None:
            sql += " AND container_id=?"
            args.append(container_id)
        if network_id is not None:
            sql += " AND network_id=?"
            args.append(network_id)
        return [Endpoint.from_json(json.loads(r[0])) for r in self.query(sql + " ORDER BY rowid", args)]

    # -- address leases ------------------------------------------------------
    def leases(self, network_id: str) -> dict[str, str]:
        """Address -> owner on one network; read only (shared, written through)."""
        held = self._leases.get(network_id)
        if held is None:
            rows = self.query("SELECT address, owner FROM leases WHERE network_id=?", (network_id,)).fetchall()
            held = self._leases[network_id] = {a: o for a, o in rows}
        return held

    def lease_numbers(self, network_id: str) -> list[int]:
        """The leased addresses of one network as integers, ascending; read only."""
        numbers = self._numbers.get(network_id)
        if numbers is None:
            numbers = self._numbers[network_id] = sorted(number(a) for a in self.leases(network_id))
        return numbers

    def lease(self, network_id: str, address: str, owner: str) -> bool:
        """Take `address`; False if someone holds it already."""
        with self.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO leases (network_id, address, owner) VALUES (?, ?, ?)",
                    (network_id, address, owner),
                )
            except sqlite3.IntegrityError:
                return False
            if network_id in self._leases:
                self._leases[network_id][address] = owner
            if network_id in self._numbers:
                bisect.insort(self._numbers[network_id], number(address))
        return True

    def release(self, network_id: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM leases WHERE network_id=? AND owner=?", (network_id, owner))
            held = self._leases.get(network_id)
            numbers = self._numbers.get(network_id)
            if held is None:
                self._numbers.pop(network_id, None)  # derived from the leases: rebuilt with them
                return
            for address in [a for a, o in held.items() if o == owner]:
                del held[address]
                if numbers is not None:
                    numbers.pop(bisect.bisect_left(numbers, number(address)))

    def drop_endpoints(self, container_id: str, network_id: str | None = None) -> list[Endpoint]:
        """Release the addresses and delete the endpoints of a container (on one network, or all);
        returns the endpoints, whose links the caller may still have to delete."""
        eps = self.endpoints(container_id=container_id, network_id=network_id)
        with self.transaction():
            for ep in eps:
                self.release(ep.network_id, container_id)
                self.delete_endpoint(container_id, ep.network_id)
        return eps

    def release_network(self, network_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM leases WHERE network_id=?", (network_id,))
            self._leases.pop(network_id, None)
            self._numbers.pop(network_id, None)

    # -- meta ----------------------------------------------------------------
    def meta_get(self, key: str) -> str | None:
        row = self.query("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))



T = TypeVar("T", Network, Container, Volume)


class Table(Generic[T]):
    """One table of records (networks, containers, volumes), typed.

    `get`, `find` and `all` parse fresh copies a caller may change and `put` back;
    `view` and `indexed` hand out shared parsed records, for reading only (the scans
    of every start must not parse every record again): written through, and dropped
    when the store rolls back.
    """

    def __init__(self, store: Store, name: str, kind: type[T]) -> None:
        self.store, self.name, self.kind = store, name, kind
        self._view: dict[str, T] | None = None
        self._keys: dict[str, Callable[[T], Iterable[str]]] = {}
        self._indexes: dict[str, dict[str, dict[str, T]]] = {}

    def _parse(self, text: str) -> T:
        return self.kind.from_json(json.loads(text))  # type: ignore[return-value]

    def forget(self) -> None:
        self._view = None
        self._indexes.clear()

    def put(self, doc: T) -> None:
        with self.store.transaction() as db:
            db.execute(
                # not INSERT OR REPLACE: that would silently delete another record holding the name
                f"INSERT INTO {self.name} (id, name, data) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data",
                (doc.id, doc.name, text := json.dumps(doc.to_json())),
            )
            if self._view is not None:
                parsed = self._parse(text)
                self._unindex(self._view.get(doc.id))
                self._view[doc.id] = parsed
                self._index(parsed)

    def delete(self, doc_id: str) -> None:
        with self.store.transaction() as db:
            db.execute(f"DELETE FROM {self.name} WHERE id=?", (doc_id,))
            if self._view is not None:
                self._unindex(self._view.pop(doc_id, None))

    def get(self, doc_id: str) -> T | None:
        row = self.store.query(f"SELECT data FROM {self.name} WHERE id=?", (doc_id,)).fetchone()
        return self._parse(row[0]) if row else None

    def all(self) -> list[T]:
        return [self._parse(r[0]) for r in self.store.query(f"SELECT data FROM {self.name} ORDER BY rowid")]

    def view(self) -> list[T]:
        """Every record, oldest first, shared: change a copy (`get`) and `put` it instead."""
        self.store.count_read()
        if self._view is None:
            rows = self.store.query(f"SELECT id, data FROM {self.name} ORDER BY rowid").fetchall()
            self._view = {r[0]: self._parse(r[1]) for r in rows}
        return list(self._view.values())

    def add_index(self, name: str, keys: Callable[[T], Iterable[str]]) -> None:
        """Index the records by the keys `keys(record)` gives (see `indexed`)."""
        self._keys[name] = keys
        self._indexes.pop(name, None)

    def indexed(self, name: str, key: str) -> list[T]:
        """The records whose keys include `key`, shared like `view`'s, without a scan."""
        if name not in self._indexes:
            index: dict[str, dict[str, T]] = {}
            for doc in self.view():
                for k in self._keys[name](doc):
                    index.setdefault(k, {})[doc.id] = doc
            self._indexes[name] = index
        self.store.count_read()
        return list(self._indexes[name].get(key, {}).values())

    def _index(self, doc: T) -> None:
        for name, index in self._indexes.items():
            for k in self._keys[name](doc):
                index.setdefault(k, {})[doc.id] = doc

    def _unindex(self, doc: T | None) -> None:
        if doc is None:
            return
        for name, index in self._indexes.items():
            for k in self._keys[name](doc):
                held = index.get(k, {})
                held.pop(doc.id, None)
                if not held:
                    index.pop(k, None)

    def find(self, ref: str) -> T | None:
        """Docker's lookup order: full id, exact name, then a unique id prefix."""
        row = self.store.query(f"SELECT data FROM {self.name} WHERE id=? OR name=? ORDER BY id=? DESC LIMIT 1",
                               (ref, ref, ref)).fetchone()
        if row:
            return self._parse(row[0])
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            return None
        rows = self.store.query(f"SELECT data FROM {self.name} WHERE id LIKE ? LIMIT 2", (ref + "%",)).fetchall()
        return self._parse(rows[0][0]) if len(rows) == 1 else None
