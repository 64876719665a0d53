#!/usr/bin/env python3
"""Prints a canonical listing of a directory tree, one line per entry, for comparing a mounted
image with the same image unpacked by another tool: path, type, mode, owner, size, content
digest, link target, device numbers, xattrs (user.* and security.capability), and which paths
share an inode (hardlinks)."""
import hashlib
import os
import stat
import sys

XATTR_PREFIXES = ("user.", "security.capability")


def dump(root):
    inodes = {}
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            fields = [rel, "mode=%o" % st.st_mode, "uid=%d" % st.st_uid, "gid=%d" % st.st_gid]
            if stat.S_ISREG(kind):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                fields += ["size=%d" % st.st_size, "sha256=" + h.hexdigest(), "nlink=%d" % st.st_nlink]
                if st.st_nlink > 1:
                    first = inodes.setdefault(st.st_ino, rel)
                    fields.append("link=" + first)
            elif stat.S_ISLNK(kind):
                fields.append("target=" + os.readlink(path))
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                fields.append("rdev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
            # --no-dir-mtime: directories changed by a test get the time of the change.
            skip_mtime = "--no-mtime" in sys.argv or ("--no-dir-mtime" in sys.argv and stat.S_ISDIR(kind))
            if not stat.S_ISLNK(kind) and not skip_mtime:
                fields.append("mtime=%d.%09d" % (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
                              if "--ns" in sys.argv else "mtime=%d" % int(st.st_mtime))
            try:
                names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if n.startswith(XATTR_PREFIXES))
                for n in names:
                    fields.append("xattr:%s=%s" % (n, os.getxattr(path, n, follow_symlinks=False).hex()))
            except OSError:
                pass
            lines.append(" ".join(fields))
    return lines


if __name__ == "__main__":
    for line in dump(sys.argv[1]):
        print(line)
