#!/usr/bin/env python3
"""Differential test of two union mounts of the same layers: the same random sequence of file
system operations on both, comparing every operation's outcome (success or errno, and what a read
returned) and, every few steps, the two trees (type, mode, owner, size, content, link count of
files, symlink target, modification time where a step set it, user.* and trusted.* xattrs,
trusted.overlay.* ones included: both escape them). Some steps go through file descriptors held
open across later steps (reads, writes, truncates and chmods through them after their file was
copied up, renamed or removed by other names), and some run as an unprivileged user (uid and gid
1000), so that permission checks are compared too (the roots' parents must let that user in).

usage: union_diff.py [--link-groups] [--lower-inos DIR[:DIR...]] SEED STEPS ROOT_A ROOT_B
       union_diff.py [--link-groups] [--lower-inos DIR[:DIR...]] [--whole-seconds] --compare ROOT_A ROOT_B
                                                                (the trees only, no operations)

--link-groups compares which names are one file instead of files' link counts: kernel overlayfs
counts a lower file's names, hidden ones too, where strata's store view counts those it shows.

--lower-inos compares the inode numbers of non-directories that are those of a file in the given
directories (the layers, when both unions show lower files' own numbers): a file must keep its
lower file's number across a copy-up (unless that file has other names) and a remount.

--whole-seconds compares modification times to the second (a layer strata commits has them so,
as Docker's).

Exit 0 when nothing differed, 1 otherwise (each difference printed), 2 on bad usage.

Every path stays inside its root: names have no "..", and symlinks are made only with targets
that name an entry of their own directory, so no operation can follow one out of the mount.
Removing a tree never follows a symlink. Standard library only.
"""
import ctypes
import errno
import hashlib
import mmap
import os
import random
import stat
import sys

NAMES = ["a", "b", "c", "d", "sub", "x.txt", "y.txt", "deep"]
LINK_TARGETS = ["a", "x.txt", "sub"]  # relative, same directory: never outside the root
XATTRS = ["user.k1", "user.k2", "trusted.k3", "trusted.overlay.k4"]
SLOTS = 3  # file descriptors held open per root across steps
OPEN_FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR, "a": os.O_WRONLY | os.O_APPEND}
# Modification times a step sets are before this (in 2001, with ns); any other time is "recent":
# the two mounts' clocks are not compared, only that a time set stays set and a change replaces it.
SET_TIMES_BEFORE_NS = 1_200_000_000 * 10**9
LINK_GROUPS = False  # --link-groups
LOWER_INOS = set()  # --lower-inos
WHOLE_SECONDS = False  # --whole-seconds


def main():
    global LINK_GROUPS, WHOLE_SECONDS
    args = sys.argv[1:]
    if args[:1] == ["--link-groups"]:
        LINK_GROUPS = True
        args = args[1:]
    if args[:1] == ["--lower-inos"] and len(args) > 1:
        for layer in args[1].split(":"):
            for dirpath, dirnames, filenames in os.walk(layer):
                LOWER_INOS.update(os.lstat(os.path.join(dirpath, n)).st_ino for n in filenames + dirnames)
        args = args[2:]
    if args[:1] == ["--whole-seconds"]:
        WHOLE_SECONDS = True
        args = args[1:]
    if len(args) == 3 and args[0] == "--compare":
        return 1 if print_differences("", snapshot(args[1]), snapshot(args[2]), args[1], args[2]) else 0
    if len(args) != 4:
        print("\n".join(__doc__.strip().splitlines()[9:12]), file=sys.stderr)
        return 2
    seed, steps, root_a, root_b = int(args[0]), int(args[1]), args[2], args[3]
    for root in (root_a, root_b):
        if not os.path.ismount(root):
            print(f"{root} is not a mount point", file=sys.stderr)
            return 2
    rng = random.Random(seed)
    differences = 0
    for i in range(steps):
        op, args = random_op(rng)
        result_a, result_b = apply(root_a, op, args), apply(root_b, op, args)
        if result_a != result_b:
            print(f"seed {seed} step {i}: {op}{args!r}: {root_a}: {result_a}, {root_b}: {result_b}")
            differences += 1
        if i % 25 == 24 or i == steps - 1:
            if print_differences(f"seed {seed} after step {i}: ", snapshot(root_a), snapshot(root_b), root_a, root_b):
                return 1  # the trees went apart: later outcomes would differ for that reason alone
    print(f"seed {seed}: {steps} operations, {differences} different outcomes")
    return 1 if differences else 0


def print_differences(prefix, tree_a, tree_b, root_a, root_b):
    """Prints every path whose record differs; returns how many."""
    differing = [p for p in sorted(set(tree_a) | set(tree_b)) if tree_a.get(p) != tree_b.get(p)]
    for path in differing:
        print(f"{prefix}{path}: {root_a}: {tree_a.get(path)}, {root_b}: {tree_b.get(path)}")
    return len(differing)


def random_path(rng):
    return "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 3)))


def random_op(rng, as_user_too=True):
    op = rng.choice(["write", "write", "append", "pwrite", "mkdir", "rmdir", "unlink", "rename", "rename",
                     "exchange", "noreplace", "link", "symlink", "mkfifo", "whiteout", "chmod", "chown",
                     "truncate", "setxattr", "removexattr", "rmtree", "utime",
                     "open", "open", "fdread", "fdread", "fdwrite", "fdtruncate", "fchmod", "fdclose",
                     "mmapwrite", "punch"])
    # One step in four as the user, but not those that change which fds are held (a child's would
    # be its own).
    if as_user_too and op not in ("open", "fdclose") and rng.randrange(4) == 0:
        inner = random_op(rng, as_user_too=False)
        while inner[0] in ("open", "fdclose"):
            inner = random_op(rng, as_user_too=False)
        return "as_user", inner
    if op == "open":
        return op, (rng.randrange(SLOTS), random_path(rng), rng.choice(sorted(OPEN_FLAGS)))
    if op == "fdread" or op == "fdclose":
        return op, (rng.randrange(SLOTS),)
    if op == "fdwrite":
        return op, (rng.randrange(SLOTS), bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))), rng.randint(0, 100))
    if op == "fdtruncate":
        return op, (rng.randrange(SLOTS), rng.randint(0, 30))
    if op == "mmapwrite":
        return op, (rng.randrange(SLOTS), bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))), rng.randint(0, 30))
    if op == "punch":
        return op, (rng.randrange(SLOTS), rng.randint(0, 30), rng.randint(1, 5000))
    if op == "fchmod":
        return op, (rng.randrange(SLOTS), rng.choice([0o600, 0o644, 0o755]))
    if op == "utime":
        return op, (random_path(rng), 1_000_000_000 * 10**9 + rng.randrange(10**12))
    if op in ("write", "append"):
        return op, (random_path(rng), bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
    if op == "pwrite":
        # One in four into the layers' 8 MiB file, anywhere in its first 9 MiB: inside it a strata
        # container writes the blocks touched (overrides), past its end the upper file's bytes.
        if rng.randrange(4) == 0:
            return op, ("y.txt", bytes(rng.randrange(256) for _ in range(rng.randint(1, 5000))), rng.randint(0, 9 << 20))
        return op, (random_path(rng), bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))), rng.randint(0, 5000))
    if op in ("mkdir", "rmdir", "unlink", "rmtree", "mkfifo", "whiteout"):
        return op, (random_path(rng),)
    if op in ("rename", "link", "exchange", "noreplace"):
        return op, (random_path(rng), random_path(rng))
    if op == "chown":
        return op, (random_path(rng), rng.choice([0, 1000]), rng.choice([0, 1000]))
    if op == "symlink":
        return op, (rng.choice(LINK_TARGETS), random_path(rng))
    if op == "chmod":
        return op, (random_path(rng), rng.choice([0o600, 0o644, 0o755, 0o700, 0o777, 0o1777, 0o2775, 0o4755]))
    if op == "truncate":
        return op, (random_path(rng), rng.randint(0, 30))
    if op == "setxattr":
        return op, (random_path(rng), rng.choice(XATTRS), bytes([rng.randrange(256)]) * rng.randint(1, 5))
    return op, (random_path(rng), rng.choice(XATTRS))


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)


def rename2(old, new, flags):
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), flags) != 0:  # AT_FDCWD
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def remove_tree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for name in sorted(os.listdir(path)):  # in one order on both: a failure midway leaves the same
        remove_tree(os.path.join(path, name))
    os.rmdir(path)


held = {}  # (root, slot) -> file descriptor
USER = 1000


def apply_as_user(root, op, args):
    """apply() in a child process running as USER; returns its outcome."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(USER, USER, USER)
            os.setresuid(USER, USER, USER)
            outcome = apply(root, op, args)
        except BaseException as e:  # reported as an outcome, which the other root will not match
            outcome = "raised " + repr(e)
        os.write(w, outcome.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


def apply(root, op, args):
    if op == "as_user":
        return apply_as_user(root, *args)
    at = lambda p: os.path.join(root, p)
    try:
        if op == "open":
            old = held.pop((root, args[0]), None)
            if old is not None:
                os.close(old)
            # O_NONBLOCK: opening a FIFO for writing fails (ENXIO) instead of waiting for a reader.
            held[(root, args[0])] = os.open(at(args[1]), OPEN_FLAGS[args[2]] | os.O_NONBLOCK)
        elif op in ("fdread", "fdwrite", "fdtruncate", "fchmod", "fdclose", "mmapwrite", "punch"):
            fd = held.get((root, args[0]))
            if fd is None:
                return "EBADF"
            if op == "fdread":
                return "ok " + hashlib.sha256(os.pread(fd, 1 << 16, 0)).hexdigest()[:16]
            if op == "fdwrite":
                os.pwrite(fd, args[1], args[2])
            elif op == "fdtruncate":
                os.ftruncate(fd, args[1])
            elif op == "fchmod":
                os.fchmod(fd, args[1])
            elif op == "mmapwrite":  # a shared writable mapping, within the file's size
                size = os.fstat(fd).st_size
                if args[2] >= size:
                    return "beyond the end"
                with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mapped:
                    data = args[1][:size - args[2]]
                    mapped[args[2]:args[2] + len(data)] = data
            elif op == "punch":  # a hole, keeping the size
                if _libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
                                   ctypes.c_long(args[1]), ctypes.c_long(args[2])) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, os.strerror(e))
            else:
                os.close(held.pop((root, args[0])))
        elif op == "utime":
            os.utime(at(args[0]), ns=(args[1], args[1]), follow_symlinks=False)
        elif op in ("write", "append"):
            # O_NONBLOCK: a FIFO made by an earlier step fails (ENXIO) instead of waiting for a reader.
            flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | (os.O_APPEND if op == "append" else os.O_TRUNC)
            fd = os.open(at(args[0]), flags, 0o644)
            try:
                os.write(fd, args[1])
            finally:
                os.close(fd)
        elif op == "pwrite":
            fd = os.open(at(args[0]), os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o644)
            try:
                os.pwrite(fd, args[1], args[2])
            finally:
                os.close(fd)
        elif op == "mkfifo":
            os.mkfifo(at(args[0]), 0o644)
        elif op == "whiteout":  # a 0:0 character device: what overlayfs reads as a whiteout
            os.mknod(at(args[0]), 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        elif op == "chown":
            os.chown(at(args[0]), args[1], args[2], follow_symlinks=False)
        elif op in ("exchange", "noreplace"):
            rename2(at(args[0]), at(args[1]), RENAME_EXCHANGE if op == "exchange" else RENAME_NOREPLACE)
        elif op == "mkdir":
            os.mkdir(at(args[0]), 0o755)
        elif op == "rmdir":
            os.rmdir(at(args[0]))
        elif op == "unlink":
            os.unlink(at(args[0]))
        elif op == "rename":
            os.rename(at(args[0]), at(args[1]))
        elif op == "link":
            os.link(at(args[0]), at(args[1]), follow_symlinks=False)
        elif op == "symlink":
            os.symlink(args[0], at(args[1]))
        elif op == "chmod":
            os.chmod(at(args[0]), args[1])
        elif op == "truncate":
            os.truncate(at(args[0]), args[1])
        elif op == "setxattr":
            os.setxattr(at(args[0]), args[1], args[2], follow_symlinks=False)
        elif op == "removexattr":
            os.removexattr(at(args[0]), args[1], follow_symlinks=False)
        elif op == "rmtree":
            remove_tree(at(args[0]))
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def snapshot(root):
    tree = {}
    names_of = {}  # (st_dev, st_ino) of a regular file -> its paths, for --link-groups
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            mtime = st.st_mtime_ns - st.st_mtime_ns % 10**9 if WHOLE_SECONDS else st.st_mtime_ns
            record = [stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid,
                      mtime if mtime < SET_TIMES_BEFORE_NS else "recent"]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    record += [st.st_size, hashlib.sha256(f.read()).hexdigest()[:16]]
                if LINK_GROUPS:
                    names_of.setdefault((st.st_dev, st.st_ino), []).append(os.path.normpath(os.path.join(rel, name)))
                    record.append((st.st_dev, st.st_ino))  # replaced by the group below
                else:
                    record.append(st.st_nlink)
            if LOWER_INOS and not stat.S_ISDIR(st.st_mode):
                record.append(st.st_ino if st.st_ino in LOWER_INOS else "upper")
            elif stat.S_ISLNK(st.st_mode):
                record.append(os.readlink(path))
            try:
                record.append(sorted((x, os.getxattr(path, x, follow_symlinks=False))
                                     for x in os.listxattr(path, follow_symlinks=False) if x.startswith(("user.", "trusted."))))
            except OSError as e:
                record.append(errno.errorcode.get(e.errno, str(e.errno)))
            tree[os.path.normpath(os.path.join(rel, name))] = record
    if LINK_GROUPS:
        for record in tree.values():
            if stat.S_ISREG(record[0]):
                record[7] = sorted(names_of[record[7]])
    return tree


if __name__ == "__main__":
    sys.exit(main())
