"""recvmmsg(2) and sendmmsg(2) through ctypes: many datagrams per system call.

Python's socket module receives and sends one datagram per call. At a few
hundred thousand small datagrams a second the calls themselves (and the
Python objects each one makes: the bytes, the peer's address tuple) are most
of the cost. recvmmsg fills many buffers in one call, sendmmsg sends many.

A Batch allocates, once, `slots` receive buffers and as many send buffers,
and the kernel's descriptors (struct mmsghdr: buffer, length, peer address)
that point at them:

    slot i:  rbuf[i*size : i*size + size]   datagram i as received
             sbuf[i*size : i*size + size]   the reply to it, written by the caller
             address i                      who sent datagram i: the reply goes there

    lengths = batch.recv(fd)           one recvmmsg; lengths[i] = bytes in slot i
    ... write reply i into sbuf at i*size ...
    batch.send(fd, lo, hi, sizes)      one sendmmsg: replies lo..hi-1, sizes[i] bytes each

Only the buffers' contents change from call to call, so a call costs no
allocation beyond the list of lengths. IPv4 only (the stub's sockets are).
"""

from __future__ import annotations

import array
import ctypes
import errno
import os
import socket

_libc = ctypes.CDLL(None, use_errno=True)
_libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_recvmmsg, _sendmmsg = _libc.recvmmsg, _libc.sendmmsg
SOCKADDR_IN = 16  # sizeof(struct sockaddr_in)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


class Batch:
    """Receive and send buffers for `slots` datagrams of up to `size` bytes each."""

    def __init__(self, slots: int = 64, size: int = 4096) -> None:
        self.slots, self.size = slots, size
        self._rbuf = (ctypes.c_char * (slots * size))()
        self._sbuf = (ctypes.c_char * (slots * size))()
        self._names = (ctypes.c_char * (slots * SOCKADDR_IN))()
        self._riov, self._siov = (_IoVec * slots)(), (_IoVec * slots)()
        self._rmsg, self._smsg = (_MMsgHdr * slots)(), (_MMsgHdr * slots)()
        for i in range(slots):
            name = ctypes.addressof(self._names) + i * SOCKADDR_IN
            self._riov[i].base = ctypes.addressof(self._rbuf) + i * size
            self._riov[i].len = size
            self._siov[i].base = ctypes.addressof(self._sbuf) + i * size
            for msgs, iov in ((self._rmsg, self._riov), (self._smsg, self._siov)):
                # reply i goes to the address datagram i came from: both point at name i
                msgs[i].hdr.name, msgs[i].hdr.namelen = name, SOCKADDR_IN
                msgs[i].hdr.iov, msgs[i].hdr.iovlen = ctypes.addressof(iov) + i * ctypes.sizeof(_IoVec), 1
        # views for the hot path: plain indexing instead of ctypes attribute access
        self.rbuf = memoryview(self._rbuf).cast("B")
        self.sbuf = memoryview(self._sbuf).cast("B")
        self._names_view = memoryview(self._names).cast("B")
        stride = ctypes.sizeof(_MMsgHdr) // 4
        as_uint = memoryview(self._rmsg).cast("B").cast("I")
        self._received = as_uint[_MMsgHdr.len.offset // 4::stride]
        self._namelen = as_uint[_MsgHdr.namelen.offset // 4::stride]
        self._sixteen = memoryview(array.array("I", [SOCKADDR_IN] * slots))
        self._send_len = memoryview(self._siov).cast("B").cast("N")[1::2]
        self._rmsg_at, self._smsg_at = ctypes.addressof(self._rmsg), ctypes.addressof(self._smsg)
        self._msg_size = ctypes.sizeof(_MMsgHdr)

    def recv(self, fd: int) -> list[int]:
        """Take what is queued on `fd` (non-blocking), up to `slots` datagrams: their lengths."""
        while True:
            n = _recvmmsg(fd, self._rmsg_at, self.slots, socket.MSG_DONTWAIT, None)
            if n >= 0:
                # the kernel wrote each address's actual length over ours: put 16 back
                self._namelen[:n] = self._sixteen[:n]
                return self._received[:n].tolist()
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if err in (errno.EAGAIN, errno.EWOULDBLOCK):
                return []
            raise OSError(err, f"recvmmsg: {os.strerror(err)}")

    def send(self, fd: int, lo: int, hi: int, sizes: list[int]) -> None:
        """Send the replies in slots lo..hi-1 (sizes[i] bytes each) to their senders.

        A reply the kernel refuses is skipped (UDP: the sender asks again)."""
        for i in range(lo, hi):
            self._send_len[i] = sizes[i]
        while lo < hi:
            n = _sendmmsg(fd, self._smsg_at + lo * self._msg_size, hi - lo, 0)
            if n > 0:
                lo += n
            elif ctypes.get_errno() != errno.EINTR:
                lo += 1  # the first of them failed: go on with the next

    def peer(self, i: int) -> tuple[str, int]:
        """The (address, port) datagram i came from."""
        at = i * SOCKADDR_IN
        name = self._names_view[at:at + SOCKADDR_IN]
        return socket.inet_ntoa(name[4:8]), int.from_bytes(name[2:4], "big")
