#!/usr/bin/python3
"""A small in-memory FUSE file system for the tests (python3-fusepy, hence Debian's
/usr/bin/python3): `memfs.py MOUNTPOINT`
serves in the foreground until unmounted. A test stops this process with SIGSTOP to make
every access under MOUNTPOINT hang, as a dead NFS server would; SIGCONT lets it go on."""

import errno
import os
import stat
import sys
import threading
import time

import fusepy as fuse


class MemFs(fuse.Operations):
    def __init__(self):
        now = time.time()
        self.mutex = threading.RLock()
        self.nodes = {"/": dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_uid=0, st_gid=0,
                                st_size=0, st_atime=now, st_mtime=now, st_ctime=now)}
        self.data = {}

    def _node(self, path):
        node = self.nodes.get(path)
        if node is None:
            raise fuse.FuseOSError(errno.ENOENT)
        return node

    def _new(self, path, mode, uid_gid=None):
        parent = os.path.dirname(path)
        if parent not in self.nodes:
            raise fuse.FuseOSError(errno.ENOENT)
        if path in self.nodes:
            raise fuse.FuseOSError(errno.EEXIST)
        now = time.time()
        uid, gid, _ = fuse.fuse_get_context()
        self.nodes[path] = dict(st_mode=mode, st_nlink=1, st_uid=uid, st_gid=gid, st_size=0,
                                st_atime=now, st_mtime=now, st_ctime=now)

    def getattr(self, path, fh=None):
        with self.mutex:
            return dict(self._node(path))

    def readdir(self, path, fh):
        with self.mutex:
            prefix = path.rstrip("/") + "/"
            names = [p[len(prefix):] for p in self.nodes if p != path and p.startswith(prefix)
                     and "/" not in p[len(prefix):]]
            return [".", ".."] + names

    def mkdir(self, path, mode):
        with self.mutex:
            self._new(path, stat.S_IFDIR | mode)

    def create(self, path, mode, fi=None):
        with self.mutex:
            self._new(path, stat.S_IFREG | mode)
            self.data[path] = b""
            return 0

    def open(self, path, flags):
        with self.mutex:
            self._node(path)
            return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            return self.data.get(path, b"")[offset:offset + size]

    def write(self, path, buf, offset, fh):
        with self.mutex:
            d = self.data.get(path, b"")
            d = d[:offset].ljust(offset, b"\0") + buf + d[offset + len(buf):]
            self.data[path] = d
            self._node(path)["st_size"] = len(d)
            return len(buf)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self.data[path] = self.data.get(path, b"")[:length].ljust(length, b"\0")
            self._node(path)["st_size"] = length

    def fsync(self, path, datasync, fh):
        return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def chmod(self, path, mode):
        with self.mutex:
            n = self._node(path)
            n["st_mode"] = (n["st_mode"] & ~0o7777) | (mode & 0o7777)

    def chown(self, path, uid, gid):
        with self.mutex:
            n = self._node(path)
            if uid != -1 and uid != 0xffffffff:
                n["st_uid"] = uid
            if gid != -1 and gid != 0xffffffff:
                n["st_gid"] = gid

    def utimens(self, path, times=None):
        with self.mutex:
            self._node(path)

    def unlink(self, path):
        with self.mutex:
            self._node(path)
            del self.nodes[path]
            self.data.pop(path, None)

    def rmdir(self, path):
        with self.mutex:
            self._node(path)
            del self.nodes[path]

    def rename(self, old, new):
        with self.mutex:
            node = self._node(old)
            self.nodes[new] = node
            del self.nodes[old]
            if old in self.data:
                self.data[new] = self.data.pop(old)

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=4096, f_bfree=4096, f_bavail=4096,
                    f_files=1024, f_ffree=1024, f_namemax=255)


if __name__ == "__main__":
    fuse.FUSE(MemFs(), sys.argv[1], foreground=True, nothreads=False, allow_other=True,
              default_permissions=True)
