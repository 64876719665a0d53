#!/usr/bin/env python3
"""Write a corpus of small layer tars for importer tests.

Usage: mktarcorpus.py OUTDIR

Writes OUTDIR/<name> for every case below plus OUTDIR/expect.json:

  {"ok-basic.tar": {"expect": "ok", "description": ..., "compression": "none",
                    "entries": 7, "diff_id": "sha256:...", "sha256": "sha256:...",
                    "members": [{"name": "etc/", "type": "dir", "mode": 493, ...}, ...]},
   "reject-absolute.tar": {"expect": "reject", "description": ...,
                           "reason": "absolute-path", "error_contains": "/etc/passwd"},
   ...}

For "ok" files: `entries` is the number of logical entries (PAX 'x'/'g' and GNU
'L'/'K' meta headers are not counted), `diff_id` is the sha256 of the
uncompressed tar, `sha256` the digest of the file as stored, and `members`
lists each entry (name as Python's tarfile resolves it, directories with a
trailing '/', type one of
file/dir/symlink/hardlink/char/block/fifo, plus size/sha256 of the content for
files, linkname for links, devmajor/devminor for devices, xattrs hex-encoded,
sparse: true for sparse files).  The ok tars are cross-checked with Python's
tarfile module while generating.

For "reject" files: `reason` is a short category and `error_contains` a
substring the importer's error message should contain (the offending entry
name or link target), or null where no entry name is available (garbage,
truncated header, oversize PAX header) -- then only the failure is asserted.

Most tars are written by a byte-level writer here (full control over header
formats); the sparse ones are made by GNU tar, because sparse headers are
the point of them.  Output is deterministic except where GNU tar's own
output would vary (it does not with the options used).
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

MTIME = 1700000000  # 2023-11-14T22:13:20Z
BLOCK = 512

# --------------------------------------------------------------------------
# Byte-level tar writer


def _octal(value, width):
    s = "%0*o" % (width - 1, value)
    if len(s) > width - 1:
        raise ValueError("value %d does not fit in %d octal digits" % (value, width - 1))
    return s.encode("ascii") + b"\0"


def _field(value, width, name="field"):
    if isinstance(value, str):
        value = value.encode("utf-8")
    if len(value) > width:
        raise ValueError("%s too long for %d bytes: %r" % (name, width, value))
    return value + b"\0" * (width - len(value))


TYPES = {"file": b"0", "hardlink": b"1", "symlink": b"2", "char": b"3",
         "block": b"4", "dir": b"5", "fifo": b"6", "pax": b"x", "paxglobal": b"g",
         "gnulongname": b"L", "gnulonglink": b"K"}


def header(name, typ="file", size=0, mode=None, uid=0, gid=0, mtime=MTIME,
           linkname="", devmajor=0, devminor=0, fmt="ustar", prefix="",
           uname="root", gname="root"):
    """One 512-byte header block.  fmt: 'ustar' (POSIX magic) or 'gnu'."""
    if mode is None:
        mode = 0o755 if typ == "dir" else 0o644
    if fmt == "gnu":
        magic, version = b"ustar ", b" \0"
    else:
        magic, version = b"ustar\0", b"00"
    typeflag = TYPES.get(typ, typ if isinstance(typ, bytes) else None)
    if typeflag is None:
        raise ValueError(typ)
    dev = typ in ("char", "block")
    buf = b"".join([
        _field(name, 100, "name"),
        _octal(mode, 8),
        _octal(uid, 8),
        _octal(gid, 8),
        _octal(size, 12),
        _octal(mtime, 12),
        b"        ",
        typeflag,
        _field(linkname, 100, "linkname"),
        magic,
        version,
        _field(uname, 32),
        _field(gname, 32),
        _octal(devmajor, 8) if dev else b"\0" * 8,
        _octal(devminor, 8) if dev else b"\0" * 8,
        _field(prefix, 155, "prefix"),
        b"\0" * 12,
    ])
    assert len(buf) == BLOCK
    chksum = sum(buf)
    return buf[:148] + ("%06o" % chksum).encode("ascii") + b"\0 " + buf[156:]


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def entry(name, data=b"", typ=None, **kw):
    """Header + padded data.  typ defaults to file."""
    if typ is None:
        typ = "file"
    size = len(data) if typ == "file" else kw.pop("size", 0)
    return header(name, typ, size=size, **kw) + pad(data)


def pax_records(records):
    """records: list of (key, value) with str or bytes; raw bytes, no hdrcharset."""
    out = b""
    for key, value in records:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if isinstance(value, str):
            value = value.encode("utf-8")
        l = len(key) + len(value) + 3
        n = p = 0
        while True:
            n = l + len(str(p))
            if n == p:
                break
            p = n
        out += str(p).encode("ascii") + b" " + key + b"=" + value + b"\n"
    return out


def pax(name, records, typ="pax"):
    data = pax_records(records)
    return header(name, typ, size=len(data)) + pad(data)


def gnu_long(kind, value):
    """GNU ././@LongLink header for a long name ('L') or link target ('K')."""
    data = value.encode("utf-8") + b"\0"
    return header("././@LongLink", kind, size=len(data), mode=0o644, mtime=0,
                  fmt="gnu", uname="", gname="") + pad(data)


END = b"\0" * (2 * BLOCK)


# --------------------------------------------------------------------------
# Corpus


def basic_tar():
    return b"".join([
        entry("etc/", typ="dir"),
        entry("etc/hostname", b"corpus\n"),
        entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        entry("bin/", typ="dir"),
        entry("bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755, uid=1000, gid=1000,
              uname="app", gname="app"),
        entry("bin/tool-link", typ="symlink", linkname="tool", mode=0o777),
        entry("bin/tool-hard", typ="hardlink", linkname="bin/tool", mode=0o755,
              uid=1000, gid=1000, uname="app", gname="app"),
        entry("empty-dir/", typ="dir", mode=0o700),
        END,
    ])


def long_name(prefix, total, leaf="file.txt"):
    """A path of about `total` chars made of 50-char components."""
    parts = []
    length = len(prefix)
    i = 0
    while length + 51 + len(leaf) < total:
        comp = ("%s%02d" % ("d" * 48, i))
        parts.append(comp)
        length += len(comp) + 1
        i += 1
    return prefix + "/".join(parts) + "/" + leaf


def dirs_of(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def longnames_gnu_tar():
    n150 = long_name("gnu-a/", 150)
    n300 = long_name("gnu-b/", 300)
    target = long_name("../", 180, "target")
    out = []
    seen = set()
    for n in (n150, n300):
        for d in dirs_of(n):
            if d in seen:
                continue
            seen.add(d)
            if len(d) > 100:
                out.append(gnu_long(b"L", d))
            out.append(header(d[:100], "dir", fmt="gnu"))
    for n, data in ((n150, b"150\n"), (n300, b"300\n")):
        out.append(gnu_long(b"L", n))
        out.append(header(n[:100], "file", size=len(data), fmt="gnu") + pad(data))
    out.append(gnu_long(b"K", target))
    out.append(header("gnu-a/long-symlink", "symlink", linkname=target[:100],
                      mode=0o777, fmt="gnu"))
    out.append(END)
    return b"".join(out), [n150, n300, target]


def longnames_pax_tar():
    n150 = long_name("pax-a/", 150)   # fits the ustar prefix/name split
    n300 = long_name("pax-b/", 300)   # needs a PAX path record
    target = long_name("../", 180, "target")
    out = []
    seen = set()
    for n in (n150, n300):
        for d in dirs_of(n):
            if d in seen:
                continue
            seen.add(d)
            if len(d) > 100:
                out.append(pax("PaxHeaders.0/dir", [("path", d)]))
                out.append(header(d[-99:].lstrip("/"), "dir"))
            else:
                out.append(header(d, "dir"))
    # ustar prefix split, no PAX header at all
    pfx, _, nm = n150.rpartition("/")
    while len(pfx) > 155:
        raise AssertionError("prefix too long")
    out.append(entry(nm, b"150\n", prefix=pfx))
    out.append(pax("PaxHeaders.0/file.txt", [("path", n300)]))
    out.append(entry("file.txt", b"300\n"))
    out.append(pax("PaxHeaders.0/long-symlink", [("linkpath", target)]))
    out.append(entry("pax-a/long-symlink", typ="symlink", linkname=target[:100], mode=0o777))
    # non-ASCII name via PAX path (UTF-8), as Go and GNU tar write it
    out.append(pax("PaxHeaders.0/utf8", [("path", "pax-a/gr\u00fc\u00dfe-\u65e5\u672c.txt")]))
    out.append(entry("pax-a/utf8.txt", b"utf8\n"))
    out.append(END)
    return b"".join(out), [n150, n300, target]


CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")  # v2, cap_net_bind_service


def xattrs_tar():
    return b"".join([
        entry("bin/", typ="dir"),
        pax("PaxHeaders.0/ping", [("SCHILY.xattr.security.capability", CAPABILITY),
                                  ("SCHILY.xattr.user.foo", b"bar")]),
        entry("bin/ping", b"\x7fELF not really\n", mode=0o755),
        pax("PaxHeaders.0/data", [("SCHILY.xattr.user.binary", b"\x00\x01\xff\xfe\n=")]),
        entry("data", b"data\n"),
        pax("PaxHeaders.0/dirx", [("SCHILY.xattr.user.dir", b"on a dir")]),
        entry("dirx/", typ="dir"),
        END,
    ])


def devices_tar():
    return b"".join([
        entry("dev/", typ="dir"),
        entry("dev/null", typ="char", devmajor=1, devminor=3, mode=0o666),
        entry("dev/loop0", typ="block", devmajor=7, devminor=0, mode=0o660, gid=6),
        entry("dev/fifo", typ="fifo", mode=0o600),
        END,
    ])


def whiteout_tar():
    return b"".join([
        entry(".wh.foo"),
        entry("dir/", typ="dir"),
        entry("dir/.wh..wh..opq"),
        entry("dir/new-file", b"new\n"),
        entry("other/", typ="dir"),
        entry("other/.wh.gone-dir"),
        END,
    ])


def mtime_ns_tar():
    return b"".join([
        pax("PaxHeaders.0/precise", [("mtime", "1700000000.123456789"),
                                     ("atime", "1700000001.5"),
                                     ("ctime", "1700000002.000000001")]),
        entry("precise", b"nanoseconds\n"),
        pax("PaxHeaders.0/dir", [("mtime", "1700000000.5")]),
        entry("dir/", typ="dir"),
        END,
    ])


def mtime_negative_tar():
    return b"".join([
        pax("PaxHeaders.0/pre-epoch", [("mtime", "-1.25")]),
        entry("pre-epoch", b"before 1970\n", mtime=0),
        # Less than a second before the epoch: the whole part is 0, the sign only on the fraction.
        pax("PaxHeaders.0/just-before", [("atime", "-7.5"), ("mtime", "-0.000000001")]),
        entry("just-before/", typ="dir", mtime=0),
        END,
    ])


def hardlink_to_symlink_tar():
    return b"".join([
        entry("target", b"target\n"),
        entry("sym", typ="symlink", linkname="target", mode=0o777),
        entry("hard-to-sym", typ="hardlink", linkname="sym", mode=0o777),
        END,
    ])


# ---- rejects


def absolute_tar():
    return entry("/etc/passwd", b"root::0:0::/:/bin/sh\n") + END


def dotdot_tar():
    return entry("a/", typ="dir") + entry("a/../../x", b"escaped\n") + END


def symlink_parent_tar():
    return (entry("link", typ="symlink", linkname="/etc", mode=0o777)
            + entry("link/passwd", b"root::0:0::/:/bin/sh\n") + END)


def hardlink_outside_tar():
    return (entry("etc/", typ="dir")
            + entry("etc/shadow-copy", typ="hardlink", linkname="../../etc/shadow") + END)


def hardlink_missing_tar():
    return (entry("present", b"present\n")
            + entry("dangling-hardlink", typ="hardlink", linkname="not/in/archive")
            + entry("not/", typ="dir") + entry("not/in/", typ="dir")
            + entry("not/in/archive", b"too late\n") + END)


def truncated_tar():
    data = bytes(range(256)) * 16  # 4096 bytes
    full = entry("ok-file", b"fine\n") + entry("cut-file", data) + END
    cut = len(entry("ok-file", b"fine\n")) + BLOCK + 1000
    return full[:cut]


def truncated_header_tar():
    full = entry("ok-file", b"fine\n") + entry("second-file", b"x\n") + END
    return full[:len(entry("ok-file", b"fine\n")) + 300]


def garbage_tar():
    # Deterministic pseudo-random bytes (not a tar, not gzip, not zstd).
    out = b""
    h = b"strata-garbage"
    while len(out) < 4096:
        h = hashlib.sha256(h).digest()
        out += h
    return b"\xde\xad" + out[2:4096]


def huge_pax_tar():
    # PAX header whose size field claims ~8 GiB; only one block follows.
    recs = pax_records([("path", "huge")])
    return header("PaxHeaders.0/huge", "pax", size=0o77777777777) + pad(recs) + END


def pax_longpath_tar():
    p = "/".join(["c%03d" % i + "x" * 46 for i in range(100)]) + "/file"  # ~5000 chars
    return pax("PaxHeaders.0/file", [("path", p)]) + entry("file", b"long\n") + END, p


def bad_whiteout_tar():
    return entry("dir/", typ="dir") + entry("dir/.wh.") + END


def whiteout_dotdot_tar():
    return entry("dir/", typ="dir") + entry("dir/.wh..") + END


def whiteout_content_tar():
    return entry(".wh.foo", b"whiteouts have no content\n") + END


# --------------------------------------------------------------------------
# GNU tar sparse files


def make_sparse_source(d):
    path = os.path.join(d, "sparse.bin")
    with open(path, "wb") as f:
        f.truncate(1 << 20)
        f.seek(0)
        f.write(b"A" * 4096)
        f.seek(512 * 1024)
        f.write(b"B" * 8192)
        f.seek((1 << 20) - 4096)
        f.write(b"C" * 4096)
    os.chmod(path, 0o644)
    os.utime(path, (MTIME, MTIME))
    with open(path, "rb") as f:
        return path, hashlib.sha256(f.read()).hexdigest()


def gnu_tar(args, cwd):
    tar = shutil.which("tar")
    if not tar:
        return None, "tar not found"
    r = subprocess.run([tar] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace").strip()
    return r.stdout, None


COMMON_TAR = ["--sparse", "--owner=0", "--group=0", "--numeric-owner",
              "--mtime=@%d" % MTIME, "--sort=name"]


def fix_checksum(buf, off):
    blk = bytearray(buf[off:off + BLOCK])
    blk[148:156] = b"        "
    blk[148:156] = ("%06o" % sum(blk)).encode() + b"\0 "
    buf[off:off + BLOCK] = blk


def sparse_gnu(tmp):
    _, content_sha = make_sparse_source(tmp)
    data, err = gnu_tar(["--format=gnu"] + COMMON_TAR + ["-cf", "-", "sparse.bin"], tmp)
    if data is None:
        return None, err
    if data[156:157] != b"S":
        return None, "GNU tar did not write a sparse ('S') header (no hole support here?)"
    return data, content_sha


def sparse_pax(tmp):
    _, content_sha = make_sparse_source(tmp)
    data, err = gnu_tar(["--format=posix", "--sparse-version=1.0",
                         "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"]
                        + COMMON_TAR + ["-cf", "-", "sparse.bin"], tmp)
    if data is None:
        return None, err
    if b"GNU.sparse.major=1" not in data[:4 * BLOCK]:
        return None, "GNU tar did not write PAX 1.0 sparse records"
    # The ustar name is "./GNUSparseFile.<pid>/sparse.bin": make it deterministic.
    buf = bytearray(data)
    off = 0
    while off + BLOCK <= len(buf):
        blk = bytes(buf[off:off + BLOCK])
        if blk == b"\0" * BLOCK:
            break
        size = int(blk[124:136].rstrip(b"\0 ") or b"0", 8)
        name = blk[:100].rstrip(b"\0")
        if b"GNUSparseFile." in name:
            pre, _, rest = name.partition(b"GNUSparseFile.")
            pid, _, tail = rest.partition(b"/")
            new = pre + b"GNUSparseFile.0/" + tail
            buf[off:off + 100] = new + b"\0" * (100 - len(new))
            fix_checksum(buf, off)
        off += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK
    return bytes(buf), content_sha


# --------------------------------------------------------------------------
# Description of members via Python's tarfile (cross-check)

TYPE_NAMES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
              tarfile.GNUTYPE_SPARSE: "file", tarfile.LNKTYPE: "hardlink",
              tarfile.SYMTYPE: "symlink", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block",
              tarfile.DIRTYPE: "dir", tarfile.FIFOTYPE: "fifo"}


def describe(raw_tar):
    import io
    if raw_tar.strip(b"\0") == b"":
        return []
    members = []
    with tarfile.open(fileobj=io.BytesIO(raw_tar), mode="r:", encoding="utf-8",
                      errors="surrogateescape") as tf:
        for m in tf:
            d = {"name": m.name + ("/" if m.isdir() and not m.name.endswith("/") else ""),
                 "type": TYPE_NAMES.get(m.type, repr(m.type)), "mode": m.mode,
                 "uid": m.uid, "gid": m.gid, "mtime": m.mtime}
            if "mtime" in m.pax_headers:
                d["mtime_pax"] = m.pax_headers["mtime"]
            if m.isfile():
                content = tf.extractfile(m).read()
                d["size"] = len(content)
                d["sha256"] = hashlib.sha256(content).hexdigest()
                if m.issparse():
                    d["sparse"] = True
            if m.issym() or m.islnk():
                d["linkname"] = m.linkname
            if m.ischr() or m.isblk():
                d["devmajor"], d["devminor"] = m.devmajor, m.devminor
            xattrs = {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape").hex()
                      for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            if xattrs:
                d["xattrs_hex"] = xattrs
            members.append(d)
    return members


# --------------------------------------------------------------------------


def gzip_bytes(data):
    import io
    bio = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=bio, mtime=0, compresslevel=6) as f:
        f.write(data)
    return bio.getvalue()


def zstd_bytes(data):
    exe = shutil.which("zstd")
    if not exe:
        return None
    return subprocess.run([exe, "-q", "-c", "-3", "--no-progress"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: mktarcorpus.py OUTDIR\n")
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    expect = {}
    skipped = []

    def ok(name, raw, description, stored=None, compression="none", extra=None):
        stored = raw if stored is None else stored
        members = describe(raw)
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(stored)
        e = {"expect": "ok", "description": description, "compression": compression,
             "entries": len(members),
             "diff_id": "sha256:" + hashlib.sha256(raw).hexdigest(),
             "sha256": "sha256:" + hashlib.sha256(stored).hexdigest(),
             "members": members}
        if extra:
            e.update(extra)
        expect[name] = e

    def reject(name, raw, reason, error_contains, description):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(raw)
        expect[name] = {"expect": "reject", "description": description, "reason": reason,
                        "error_contains": error_contains,
                        "sha256": "sha256:" + hashlib.sha256(raw).hexdigest()}

    basic = basic_tar()
    ok("ok-basic.tar", basic, "ustar: dirs, files, symlink, hardlink, non-root owner")
    ok("ok-whiteout.tar", whiteout_tar(),
       "AUFS/OCI whiteouts: .wh.foo, dir/.wh..wh..opq, other/.wh.gone-dir")
    raw, names = longnames_gnu_tar()
    ok("ok-longnames-gnu.tar", raw,
       "GNU format: ././@LongLink 'L' paths of > 100 and > 255 chars, 'K' long symlink target",
       extra={"long_paths": names})
    raw, names = longnames_pax_tar()
    ok("ok-longnames-pax.tar", raw,
       "POSIX/PAX: ustar prefix/name split (> 100 chars), PAX path (> 255 chars), PAX linkpath, "
       "UTF-8 name", extra={"long_paths": names})
    ok("ok-xattrs.tar", xattrs_tar(),
       "PAX SCHILY.xattr.*: security.capability (binary), user.* incl. NUL/0xff bytes, "
       "xattr on a dir")
    ok("ok-devices.tar", devices_tar(), "char dev 1:3, block dev 7:0, fifo")
    ok("ok-empty.tar", END, "no entries, just the two zero blocks")
    ok("ok-trailing-zeros.tar", basic + b"\0" * (18 * BLOCK),
       "basic content followed by extra zero blocks (record padding like GNU tar's)")
    ok("ok-gzip.tar.gz", basic, "basic content, gzip", stored=gzip_bytes(basic),
       compression="gzip")
    ok("ok-gzip-named.tar", basic, "basic content, gzip data under a .tar name",
       stored=gzip_bytes(basic), compression="gzip")
    zst = zstd_bytes(basic)
    if zst is not None:
        ok("ok-zstd.tar.zst", basic, "basic content, zstd", stored=zst, compression="zstd")
    else:
        skipped.append(("ok-zstd.tar.zst", "zstd not found"))
    ok("ok-mtime-ns.tar", mtime_ns_tar(),
       "PAX mtime/atime/ctime with sub-second (nanosecond) precision")
    ok("ok-mtime-negative.tar", mtime_negative_tar(),
       "PAX mtime before the epoch (-1.25), ustar mtime field 0")
    ok("ok-hardlink-to-symlink.tar", hardlink_to_symlink_tar(),
       "hardlink whose target is a symlink entry")

    with tempfile.TemporaryDirectory(prefix="mktarcorpus.") as tmp:
        raw, info = sparse_gnu(tmp)
        if raw is None:
            skipped.append(("ok-sparse.tar", info))
        else:
            ok("ok-sparse.tar", raw,
               "GNU tar --sparse (old GNU 'S' header), 1 MiB file with 3 data regions",
               extra={"sparse_file_sha256": info})
    with tempfile.TemporaryDirectory(prefix="mktarcorpus.") as tmp:
        raw, info = sparse_pax(tmp)
        if raw is None:
            skipped.append(("ok-sparse-pax.tar", info))
        else:
            ok("ok-sparse-pax.tar", raw,
               "GNU tar --format=posix --sparse-version=1.0 (PAX GNU.sparse.* 1.0, "
               "name GNUSparseFile.0/...), same file as ok-sparse.tar",
               extra={"sparse_file_sha256": info})

    reject("reject-absolute.tar", absolute_tar(), "absolute-path", "/etc/passwd",
           "absolute entry name /etc/passwd")
    reject("reject-dotdot.tar", dotdot_tar(), "path-traversal", "a/../../x",
           "entry a/../../x escapes the root")
    reject("reject-symlink-parent.tar", symlink_parent_tar(), "symlink-escape", "link/passwd",
           "symlink link -> /etc, then entry link/passwd written through it")
    reject("reject-hardlink-outside.tar", hardlink_outside_tar(), "hardlink-escape",
           "../../etc/shadow", "hardlink etc/shadow-copy -> ../../etc/shadow")
    reject("reject-hardlink-missing.tar", hardlink_missing_tar(), "hardlink-missing",
           "not/in/archive",
           "hardlink to not/in/archive, which appears only later in the archive")
    reject("reject-truncated.tar", truncated_tar(), "truncated", "cut-file",
           "archive ends 1000 bytes into cut-file's 4096 bytes of data")
    reject("reject-truncated-header.tar", truncated_header_tar(), "truncated-header", None,
           "archive ends 300 bytes into the second header (GNU tar and Python's tarfile "
           "silently take this as the end; Go's archive/tar reports unexpected EOF)")
    reject("reject-garbage.tar", garbage_tar(), "not-a-tar", None,
           "4 KiB of pseudo-random bytes")
    reject("reject-huge-pax.tar", huge_pax_tar(), "pax-header-too-large", None,
           "PAX 'x' header whose size field claims 8 GiB (data missing)")
    raw, longp = pax_longpath_tar()
    reject("reject-pax-longpath.tar", raw, "path-too-long", None,
           "PAX path record of %d bytes (> PATH_MAX 4096)" % len(longp))
    reject("reject-bad-whiteout.tar", bad_whiteout_tar(), "bad-whiteout", "dir/.wh.",
           "whiteout with an empty name: dir/.wh.")
    reject("reject-whiteout-dotdot.tar", whiteout_dotdot_tar(), "bad-whiteout", "dir/.wh..",
           "whiteout of '..': dir/.wh..")
    reject("reject-whiteout-content.tar", whiteout_content_tar(), "bad-whiteout", ".wh.foo",
           "whiteout .wh.foo with non-empty content")

    with open(os.path.join(outdir, "expect.json"), "w") as f:
        json.dump(dict(sorted(expect.items())), f, indent=2, ensure_ascii=False)
        f.write("\n")
    for name, why in skipped:
        sys.stderr.write("mktarcorpus: skipped %s: %s\n" % (name, why))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
