"""The DNS stub: Docker's embedded DNS server at 127.0.0.11, per container.

    container md-alpine1                      daemon (host namespace)
    ┌──────────────────────────────┐          ┌───────────────────────────┐
    │ resolv.conf: 127.0.0.11      │          │ Records: network → names  │
    │ lo 127.0.0.11:53 udp+tcp ────┼─ socket ─┤ answer from the view of   │
    └──────────────────────────────┘  owned   │ the container that asked  │
                                      by the  │ else forward upstream     │
                                      daemon  └───────────────────────────┘

The daemon opens the UDP and TCP sockets *inside* each container's network
namespace, bound to 127.0.0.11 on its loopback, and serves them itself (from
two threads, below). No port on the host is used (a resolver already on the
host's port 53 is no obstacle), nothing outside the container can reach it,
and the socket a query arrives on tells us which container asked, so each
container sees only the names of the networks it shares.

A plain A query (the common case) is parsed and answered by hand; everything
else goes through dnspython. Names that are not ours are forwarded to the
upstream resolvers, over the transport the query came in on.

Two threads serve the sockets:

    UDP socket of stub 1 ─┐
    UDP socket of stub 2 ─┼─ epoll ─ thread "dns-udp": a plain A query for
    ...                  ─┘            one of our names is answered right there;
                                       any other query is handed over ───┐
    TCP socket of each stub ─ asyncio server ─ event loop: dnspython, ◄─┘
                                                forwarding, then the reply

Why a thread for UDP: served by the event loop (a reader callback per
socket, one recvfrom and one sendto per query), the stub answered half as
many queries a second as dnsmasq on the same machine. The UDP thread waits
in epoll_wait without the GIL (the event loop runs undisturbed meanwhile);
when queries come it takes up to 64 with one recvmmsg and sends the answers
with one sendmmsg (kernel/mmsg.py): a batch shares its two system calls, and
a query that is remembered (below) costs a handful of Python operations. The
general case stays on the event loop (loop.call_soon_threadsafe), which
replies itself when the answer is ready.

Remembered answers: the answer to a query depends only on its bytes (less
the 2-byte ID it must echo) and on the records. Each stub keeps the answers
it has given for names of one address, less their ID, keyed by the query
less its ID: the next such query costs a dictionary lookup and two copies.
Records.version goes up on every change of the records; a stub that sees a
new version forgets every answer it kept. A name with several addresses is
looked up every time: each answer starts at the next address (round robin).

Threads and sockets: Records has a lock, as the thread looks names up while
the event loop changes them. The thread holds its own lock while it works
on sockets and drops it while it waits in epoll; stop() takes that lock,
takes the socket out of the epoll set, then closes it, so the thread never
reads a closed descriptor, nor one the kernel has given to a new socket.
close() wakes the thread through an eventfd and joins it.

One limit: the thread needs the GIL. While the event loop runs Python code
(a container starting, say), a query that arrives waits until the loop
releases it: at the next system call, at worst after the 5 ms switch interval.

The modules, by what each owns:

    records.py  Record, Records: who answers to which name, per network
    wire.py     the plain A query parsed and answered by hand
    udp.py      Stub, UdpThread: the UDP sockets and the thread serving them
    server.py   DnsServer: binding, TCP, the general case (dnspython), forwarding

This package re-exports the names the rest of minidock uses.
"""

from __future__ import annotations

from .records import Record, Records
from .server import STUB_ADDRESS, DnsServer
from .udp import Stub, UdpThread
from .wire import QCLASS_IN, QTYPE_A, TTL, parse_plain_a, plain_a_answer

__all__ = ["QCLASS_IN", "QTYPE_A", "STUB_ADDRESS", "TTL", "DnsServer", "Record", "Records", "Stub",
           "UdpThread", "parse_plain_a", "plain_a_answer"]
