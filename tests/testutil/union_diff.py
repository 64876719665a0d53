#!/usr/bin/env python3
"""Differential test of two union mounts of the same layers: the same random sequence of file
system operations on both, comparing every operation's outcome (success or errno) and, every few
steps, the two trees (type, mode, owner, size, content, link count of files, symlink target, user.*
and trusted.* xattrs, trusted.overlay.* ones included: both escape them).

usage: union_diff.py [--link-groups] SEED STEPS ROOT_A ROOT_B
       union_diff.py [--link-groups] --compare ROOT_A ROOT_B    (the trees only, no operations)

--link-groups compares which names are one file instead of files' link counts: kernel overlayfs
counts a lower file's names, hidden ones too, where strata's store view counts those it shows.

Exit 0 when nothing differed, 1 otherwise (each difference printed), 2 on bad usage.

Every path stays inside its root: names have no "..", and symlinks are made only with targets
that name an entry of their own directory, so no operation can follow one out of the mount.
Removing a tree never follows a symlink. Standard library only.
"""
import ctypes
import errno
import hashlib
import os
import random
import stat
import sys

NAMES = ["a", "b", "c", "d", "sub", "x.txt", "y.txt", "deep"]
LINK_TARGETS = ["a", "x.txt", "sub"]  # relative, same directory: never outside the root
XATTRS = ["user.k1", "user.k2", "trusted.k3", "trusted.overlay.k4"]
LINK_GROUPS = False  # --link-groups


def main():
    global LINK_GROUPS
    args = sys.argv[1:]
    if args[:1] == ["--link-groups"]:
        LINK_GROUPS = True
        args = args[1:]
    if len(args) == 3 and args[0] == "--compare":
        return 1 if print_differences("", snapshot(args[1]), snapshot(args[2]), args[1], args[2]) else 0
    if len(args) != 4:
        print("\n".join(__doc__.strip().splitlines()[5:7]), file=sys.stderr)
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


def random_op(rng):
    op = rng.choice(["write", "write", "append", "pwrite", "mkdir", "rmdir", "unlink", "rename", "rename",
                     "exchange", "noreplace", "link", "symlink", "mkfifo", "whiteout", "chmod", "chown",
                     "truncate", "setxattr", "removexattr", "rmtree"])
    if op in ("write", "append"):
        return op, (random_path(rng), bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
    if op == "pwrite":
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
        return op, (random_path(rng), rng.choice([0o600, 0o644, 0o755, 0o700]))
    if op == "truncate":
        return op, (random_path(rng), rng.randint(0, 30))
    if op == "setxattr":
        return op, (random_path(rng), rng.choice(XATTRS), bytes([rng.randrange(256)]) * rng.randint(1, 5))
    return op, (random_path(rng), rng.choice(XATTRS))


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)


def rename2(old, new, flags):
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), flags) != 0:  # AT_FDCWD
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def remove_tree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for entry in os.scandir(path):
        remove_tree(entry.path)
    os.rmdir(path)


def apply(root, op, args):
    at = lambda p: os.path.join(root, p)
    try:
        if op in ("write", "append"):
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
            record = [stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    record += [st.st_size, hashlib.sha256(f.read()).hexdigest()[:16]]
                if LINK_GROUPS:
                    names_of.setdefault((st.st_dev, st.st_ino), []).append(os.path.normpath(os.path.join(rel, name)))
                    record.append((st.st_dev, st.st_ino))  # replaced by the group below
                else:
                    record.append(st.st_nlink)
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
                record[6] = sorted(names_of[record[6]])
    return tree


if __name__ == "__main__":
    sys.exit(main())
