#!/usr/bin/env python3
"""Build container image archives from layer sources, independently of strata.

Test fixture generator: lets tests feed strata real image archives in the
formats Docker, containerd, skopeo and friends produce.  Standard library only
(plus the `zstd` command line tool for zstd layers).

Usage:
  mkimage.py --format docker-archive|docker-oci-archive|oci-archive|oci-dir -o OUT
             [--tag REPO:TAG]... [--layer PATH]... [--empty-layer "CREATED BY"]...
             [--compression none|gzip|zstd|keep] [--docker-compressed-layers]
             [--env K=V]... [--label K=V]... [--cmd JSON_ARRAY] [--entrypoint JSON_ARRAY]
             [--workdir DIR] [--user U] [--created RFC3339] [--arch amd64] [--variant V]
             [--os linux] [--root-owned] [--tar-format pax|gnu] [--no-xattrs]
             [--summary FILE]

Layers (--layer) are given bottom first.  A layer PATH is either
  * a directory: tarred deterministically (depth first, names sorted bytewise,
    no root entry, uid/gid and mtime (whole seconds) from the files, empty
    uname/gname; --root-owned forces 0:0).  Directories, regular files,
    symlinks, hardlinks (detected by inode), char/block devices and fifos are
    included; sockets are skipped.  With --tar-format pax (default) readable
    xattrs are stored as PAX SCHILY.xattr.* records (raw bytes, as Go's
    archive/tar writes them); --tar-format gnu drops xattrs.
  * an existing file: used as-is (no validation, so deliberately broken layers
    can be wrapped too).  Compression is detected from the magic bytes
    (gzip / zstd / otherwise uncompressed); the diff_id is the sha256 of the
    uncompressed stream.

History entries are emitted in command-line order: one per --layer
("mkimage layer N: <basename>", N counting layers from 1) and one with
"empty_layer": true per --empty-layer.

Formats:
  docker-archive      `docker save` before Docker 25: <config>.json,
                      <v1id>/{VERSION,json,layer.tar}, manifest.json,
                      repositories.  layer.tar is uncompressed unless
                      --docker-compressed-layers (gzip, accepted by Docker 25+).
  docker-oci-archive  `docker save` of Docker 25+: an OCI layout plus
                      manifest.json and repositories; layers uncompressed by
                      default.
  oci-archive         tar of an OCI image layout (like `ctr export`/skopeo).
  oci-dir             the OCI image layout as a directory (must not exist or
                      be empty).
For the OCI formats --compression selects the layer encoding (default gzip;
`keep` stores file layers with their own compression and directories
uncompressed).  index.json gets one manifest descriptor per --tag, annotated
with org.opencontainers.image.ref.name=<tag part> and
io.containerd.image.name=<fully qualified name>, as containerd writes it.

Output is deterministic: the same inputs give byte-identical archives.
The image ID (sha256:<config digest>) is printed on stdout.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


class UsageError(Exception):
    pass


def die(msg):
    sys.stderr.write("mkimage: error: %s\n" % msg)
    sys.exit(2)


def warn(msg):
    sys.stderr.write("mkimage: warning: %s\n" % msg)


def canonical_json(obj):
    """Compact JSON, keys in insertion order (like Go struct marshalling)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sniff_compression(path):
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def zstd_bin():
    exe = shutil.which("zstd")
    if not exe:
        raise UsageError("the `zstd` command line tool is required for zstd layers")
    return exe


def decompress_to(src, comp, dst):
    if comp == "gzip":
        with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo, CHUNK)
    elif comp == "zstd":
        with open(dst, "wb") as fo:
            subprocess.run([zstd_bin(), "-d", "-q", "-c", src], stdout=fo, check=True)
    else:
        raise AssertionError(comp)


def compress_to(src, comp, dst):
    if comp == "gzip":
        with open(src, "rb") as fi, open(dst, "wb") as raw:
            # mtime=0 and no file name: deterministic gzip header.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=6) as fo:
                shutil.copyfileobj(fi, fo, CHUNK)
    elif comp == "zstd":
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            subprocess.run([zstd_bin(), "-q", "-c", "-3", "--no-progress"],
                           stdin=fi, stdout=fo, check=True)
    else:
        raise AssertionError(comp)


# --------------------------------------------------------------------------
# Deterministic directory -> tar


class GoTarInfo(tarfile.TarInfo):
    """TarInfo whose PAX records carry raw bytes without hdrcharset=BINARY,
    the way Go's archive/tar (Docker, containerd, buildkit) writes them."""

    @classmethod
    def _create_pax_generic_header(cls, pax_headers, type, encoding):
        records = b""
        for keyword, value in pax_headers.items():
            kw = keyword.encode("utf-8", "surrogateescape")
            val = value.encode("utf-8", "surrogateescape")
            l = len(kw) + len(val) + 3
            n = p = 0
            while True:
                n = l + len(str(p))
                if n == p:
                    break
                p = n
            records += str(p).encode("ascii") + b" " + kw + b"=" + val + b"\n"
        info = {"name": "././@PaxHeader", "type": type, "size": len(records),
                "magic": tarfile.POSIX_MAGIC}
        return (cls._create_header(info, tarfile.USTAR_FORMAT, "ascii", "replace")
                + cls._create_payload(records))


def read_xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def tar_directory(root, out_path, root_owned, tar_format, with_xattrs):
    fmt = tarfile.PAX_FORMAT if tar_format == "pax" else tarfile.GNU_FORMAT
    seen_inodes = {}

    def add(tf, rel):
        path = os.path.join(root, rel)
        st = os.lstat(path)
        mode = st.st_mode
        ti = GoTarInfo(rel)
        ti.mode = stat.S_IMODE(mode)
        ti.uid, ti.gid = (0, 0) if root_owned else (st.st_uid, st.st_gid)
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        if fmt == tarfile.PAX_FORMAT and with_xattrs:
            xattrs = read_xattrs(path)
            if xattrs:
                ti.pax_headers = {
                    "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                    for k, v in xattrs.items()
                }
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1 and key in seen_inodes:
            ti.type = tarfile.LNKTYPE
            ti.linkname = seen_inodes[key]
            tf.addfile(ti)
            return False
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            seen_inodes[key] = rel
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            return True
        if stat.S_ISREG(mode):
            ti.type = tarfile.REGTYPE
            ti.size = st.st_size
            with open(path, "rb") as f:
                tf.addfile(ti, f)
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor = os.major(st.st_rdev)
            ti.devminor = os.minor(st.st_rdev)
            tf.addfile(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
        else:
            warn("skipping unsupported file type: %s" % path)
        return False

    def walk(tf, rel_dir):
        full = os.path.join(root, rel_dir) if rel_dir else root
        for name in sorted(os.listdir(full), key=os.fsencode):
            rel = name if not rel_dir else rel_dir + "/" + name
            if add(tf, rel):
                walk(tf, rel)

    with open(out_path, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=fmt, tarinfo=GoTarInfo,
                          encoding="utf-8", errors="surrogateescape") as tf:
            walk(tf, "")


# --------------------------------------------------------------------------
# Layers


class Layer:
    def __init__(self, index, src, workdir, opts):
        self.index = index
        self.src = src
        self.workdir = workdir
        self._blobs = {}  # compression -> path
        base = os.path.basename(os.path.normpath(src))
        self.created_by = "mkimage layer %d: %s" % (index, base)
        if os.path.isdir(src):
            self.src_comp = "none"
            path = os.path.join(workdir, "layer%d.tar" % index)
            tar_directory(src, path, opts.root_owned, opts.tar_format, not opts.no_xattrs)
            self.uncompressed = path
        elif os.path.isfile(src):
            self.src_comp = sniff_compression(src)
            self._blobs[self.src_comp] = src
            if self.src_comp == "none":
                self.uncompressed = src
            else:
                path = os.path.join(workdir, "layer%d.tar" % index)
                decompress_to(src, self.src_comp, path)
                self.uncompressed = path
        else:
            raise UsageError("layer source does not exist or is not a file/directory: %s" % src)
        self._blobs["none"] = self.uncompressed
        self.diff_id = "sha256:" + sha256_file(self.uncompressed)

    def blob(self, comp):
        """Path of the layer encoded with `comp` (none/gzip/zstd/keep)."""
        if comp == "keep":
            comp = self.src_comp
        if comp not in self._blobs:
            path = os.path.join(self.workdir, "layer%d.tar.%s" % (self.index, comp))
            compress_to(self.uncompressed, comp, path)
            self._blobs[comp] = path
        return self._blobs[comp], comp


# --------------------------------------------------------------------------
# References


def parse_ref(ref):
    """Return (fully qualified repository, familiar repository, tag)."""
    if "@" in ref:
        raise UsageError("digest references are not supported as tags: %s" % ref)
    name, tag = ref, "latest"
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
    if not name or not tag:
        raise UsageError("invalid tag: %r" % ref)
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = "docker.io", name
    else:
        domain, path = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    full = domain + "/" + path
    if domain == "docker.io":
        familiar = path[len("library/"):] if path.startswith("library/") and path.count("/") == 1 else path
    else:
        familiar = full
    return full, familiar, tag


# --------------------------------------------------------------------------
# Output


def write_outer_tar(out_path, entries):
    """entries: dict name -> bytes | ('file', path).  Parent directories are
    added automatically; everything sorted, owned by 0:0, mtime 0."""
    names = set(entries)
    for name in list(entries):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            names.add("/".join(parts[:i]) + "/")
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for name in sorted(names):
                ti = tarfile.TarInfo(name.rstrip("/"))
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 0
                if name.endswith("/"):
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    tf.addfile(ti)
                    continue
                ti.mode = 0o644
                data = entries[name]
                if isinstance(data, bytes):
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
                else:
                    ti.size = os.path.getsize(data[1])
                    with open(data[1], "rb") as src:
                        tf.addfile(ti, src)
    os.replace(tmp, out_path)


def write_dir(out_dir, entries):
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir) or os.listdir(out_dir):
            raise UsageError("output directory exists and is not empty: %s" % out_dir)
    for name in sorted(entries):
        path = os.path.join(out_dir, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = entries[name]
        if isinstance(data, bytes):
            with open(path, "wb") as f:
                f.write(data)
        else:
            shutil.copyfile(data[1], path)
        os.chmod(path, 0o644)


def chain_ids(diff_ids):
    out = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256((out[-1] + " " + d).encode()).hexdigest())
    return out


EMPTY_CONTAINER_CONFIG = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False,
    "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def docker_v1_layers(config, diff_ids):
    """Emulate docker save's legacy v1 layer IDs and json files."""
    result = []
    parent = ""
    chains = chain_ids(diff_ids)
    for i, chain in enumerate(chains):
        if i == len(chains) - 1:
            v1 = {k: v for k, v in config.items() if k not in ("history", "rootfs")}
        else:
            v1 = {"created": "1970-01-01T00:00:00Z",
                  "container_config": dict(EMPTY_CONTAINER_CONFIG)}
        v1["os"] = config["os"]
        for_id = dict(v1)
        for_id["layer_id"] = chain
        if parent:
            for_id["parent"] = "sha256:" + parent
        v1id = hashlib.sha256(canonical_json(for_id)).hexdigest()
        js = {"id": v1id}
        if parent:
            js["parent"] = parent
        js.update(v1)
        result.append((v1id, canonical_json(js)))
        parent = v1id
    return result


def build(opts):
    if not opts.output:
        raise UsageError("-o OUT is required")
    fmt = opts.format
    comp = opts.compression
    if fmt == "docker-archive":
        if comp is not None:
            warn("--compression is ignored for docker-archive "
                 "(use --docker-compressed-layers)")
        comp = "gzip" if opts.docker_compressed_layers else "none"
    else:
        if opts.docker_compressed_layers:
            warn("--docker-compressed-layers only applies to docker-archive")
        if comp is None:
            comp = "none" if fmt == "docker-oci-archive" else "gzip"

    refs = [parse_ref(t) for t in opts.tag]

    container_config = {}
    if opts.user is not None:
        container_config["User"] = opts.user
    if opts.env:
        for e in opts.env:
            if "=" not in e:
                raise UsageError("--env wants K=V, got %r" % e)
        container_config["Env"] = list(opts.env)
    if opts.entrypoint is not None:
        container_config["Entrypoint"] = opts.entrypoint
    if opts.cmd is not None:
        container_config["Cmd"] = opts.cmd
    if opts.workdir is not None:
        container_config["WorkingDir"] = opts.workdir
    if opts.label:
        labels = {}
        for l in opts.label:
            if "=" not in l:
                raise UsageError("--label wants K=V, got %r" % l)
            k, v = l.split("=", 1)
            labels[k] = v
        container_config["Labels"] = labels

    with tempfile.TemporaryDirectory(prefix="mkimage.") as work:
        layers = []
        history = []
        for kind, value in opts.steps:
            if kind == "layer":
                layer = Layer(len(layers) + 1, value, work, opts)
                layers.append(layer)
                history.append({"created": opts.created, "created_by": layer.created_by})
            else:
                history.append({"created": opts.created, "created_by": value,
                                "empty_layer": True})

        config = {"architecture": opts.arch}
        if opts.variant:
            config["variant"] = opts.variant
        config["os"] = opts.os
        config["created"] = opts.created
        config["config"] = container_config
        config["rootfs"] = {"type": "layers", "diff_ids": [l.diff_id for l in layers]}
        config["history"] = history
        config_bytes = canonical_json(config)
        config_hex = hashlib.sha256(config_bytes).hexdigest()
        image_id = "sha256:" + config_hex

        summary = {"image_id": image_id, "format": fmt, "compression": comp,
                   "diff_ids": config["rootfs"]["diff_ids"], "layers": [],
                   "tags": ["%s:%s" % (r[0], r[2]) for r in refs]}
        entries = {}

        if fmt == "docker-archive":
            entries[config_hex + ".json"] = config_bytes
            manifest_layers = []
            v1 = docker_v1_layers(config, [l.diff_id for l in layers])
            for layer, (v1id, js) in zip(layers, v1):
                path, _ = layer.blob(comp)
                entries[v1id + "/VERSION"] = b"1.0"
                entries[v1id + "/json"] = js
                entries[v1id + "/layer.tar"] = ("file", path)
                manifest_layers.append(v1id + "/layer.tar")
                summary["layers"].append({"path": v1id + "/layer.tar", "diff_id": layer.diff_id,
                                          "digest": "sha256:" + sha256_file(path),
                                          "size": os.path.getsize(path)})
            repo_tags = ["%s:%s" % (r[1], r[2]) for r in refs] or None
            manifest = [{"Config": config_hex + ".json", "RepoTags": repo_tags,
                         "Layers": manifest_layers}]
            entries["manifest.json"] = canonical_json(manifest)
            if refs and v1:
                repos = {}
                for _, familiar, tag in refs:
                    repos.setdefault(familiar, {})[tag] = v1[-1][0]
                entries["repositories"] = canonical_json(repos)
            write_outer_tar(opts.output, entries)
        else:
            def add_blob(data_or_path):
                if isinstance(data_or_path, bytes):
                    hx = hashlib.sha256(data_or_path).hexdigest()
                    size = len(data_or_path)
                    entries["blobs/sha256/" + hx] = data_or_path
                else:
                    hx = sha256_file(data_or_path)
                    size = os.path.getsize(data_or_path)
                    entries["blobs/sha256/" + hx] = ("file", data_or_path)
                return "sha256:" + hx, size

            cfg_digest, cfg_size = add_blob(config_bytes)
            mlayers = []
            for layer in layers:
                path, c = layer.blob(comp)
                digest, size = add_blob(path)
                desc = {"mediaType": MT_OCI_LAYER[c], "digest": digest, "size": size}
                mlayers.append(desc)
                summary["layers"].append(dict(desc, diff_id=layer.diff_id))
            manifest = {
                "schemaVersion": 2,
                "mediaType": MT_OCI_MANIFEST,
                "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": cfg_size},
                "layers": mlayers,
            }
            manifest_bytes = canonical_json(manifest)
            man_digest, man_size = add_blob(manifest_bytes)
            summary["manifest_digest"] = man_digest
            base_desc = {"mediaType": MT_OCI_MANIFEST, "digest": man_digest, "size": man_size}
            descs = []
            for full, _, tag in refs:
                d = dict(base_desc)
                d["annotations"] = {"io.containerd.image.name": "%s:%s" % (full, tag),
                                    "org.opencontainers.image.ref.name": tag}
                descs.append(d)
            if not descs:
                descs.append(base_desc)
            index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descs}
            entries["index.json"] = canonical_json(index)
            entries["oci-layout"] = canonical_json({"imageLayoutVersion": "1.0.0"})
            if fmt == "docker-oci-archive":
                repo_tags = ["%s:%s" % (r[1], r[2]) for r in refs] or None
                entries["manifest.json"] = canonical_json([{
                    "Config": "blobs/sha256/" + cfg_digest.split(":", 1)[1],
                    "RepoTags": repo_tags,
                    "Layers": ["blobs/sha256/" + d["digest"].split(":", 1)[1] for d in mlayers],
                }])
                if refs and mlayers:
                    repos = {}
                    for _, familiar, tag in refs:
                        repos.setdefault(familiar, {})[tag] = mlayers[-1]["digest"].split(":", 1)[1]
                    entries["repositories"] = canonical_json(repos)
            if fmt == "oci-dir":
                write_dir(opts.output, entries)
            else:
                write_outer_tar(opts.output, entries)

    if opts.summary:
        with open(opts.summary, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    return image_id


class StepAction(argparse.Action):
    """Collects --layer and --empty-layer into one ordered list."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None)
        if steps is None:
            steps = []
            setattr(namespace, "steps", steps)
        steps.append((self.const, values))


def json_string_array(s):
    try:
        v = json.loads(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError("not JSON: %s" % e)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise argparse.ArgumentTypeError("want a JSON array of strings, got %r" % s)
    return v


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Build container image archives (test fixtures).",
        epilog="See the module docstring for details.")
    p.add_argument("--format", required=True,
                   choices=["docker-archive", "docker-oci-archive", "oci-archive", "oci-dir"])
    p.add_argument("-o", "--output", required=True, help="output file (directory for oci-dir)")
    p.add_argument("--tag", action="append", default=[], help="REPO[:TAG], repeatable")
    p.add_argument("--compression", choices=["none", "gzip", "zstd", "keep"], default=None,
                   help="OCI layer compression (default gzip; none for docker-oci-archive)")
    p.add_argument("--docker-compressed-layers", action="store_true",
                   help="docker-archive: store layer.tar gzip-compressed")
    p.add_argument("--layer", action=StepAction, const="layer", dest="steps", metavar="PATH",
                   help="layer source: directory or .tar/.tar.gz/.tar.zst (bottom first)")
    p.add_argument("--empty-layer", action=StepAction, const="empty", dest="steps",
                   metavar="CREATED_BY", help="history entry with empty_layer: true")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--cmd", type=json_string_array, metavar="JSON_ARRAY")
    p.add_argument("--entrypoint", type=json_string_array, metavar="JSON_ARRAY")
    p.add_argument("--workdir")
    p.add_argument("--user")
    p.add_argument("--created", default="1970-01-01T00:00:00Z", metavar="RFC3339")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--variant")
    p.add_argument("--os", default="linux")
    p.add_argument("--root-owned", action="store_true",
                   help="directory layers: force uid/gid 0:0")
    p.add_argument("--tar-format", choices=["pax", "gnu"], default="pax",
                   help="tar format for directory layers (default pax)")
    p.add_argument("--no-xattrs", action="store_true", help="do not record xattrs")
    p.add_argument("--summary", metavar="FILE",
                   help="write a JSON summary (digests, diff_ids, sizes) to FILE")
    p.set_defaults(steps=None)
    opts = p.parse_args(argv)
    if opts.steps is None:
        opts.steps = []
    try:
        image_id = build(opts)
    except UsageError as e:
        die(str(e))
    except subprocess.CalledProcessError as e:
        die("command failed: %s" % e)
    print(image_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
