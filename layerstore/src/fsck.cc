// Consistency check and repair, and disk usage. Both walk every table; fsck also walks the
// directories, since a crash leaves files the metadata never named.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <cstring>
#include <set>

#include "fsutil.h"
#include "layerstore/io.h"
#include "layerstore/sha256.h"
#include "layerstore/unique_fd.h"
#include "layerstore/rootfs.h"
#include "paths.h"
#include "store_impl.h"

namespace layerstore {
namespace {

Result<bool> ContentMatches(int root_fd, const std::string& path, const Digest& want) {
  UniqueFd fd(::openat(root_fd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    LS_ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.data(), buf.size(), path));
    if (n == 0) break;
    h.Update(buf.data(), n);
  }
  return h.Finish() == want;
}

}  // namespace

Result<FsckReport> StoreImpl::Fsck(const FsckOptions& options) {
  LS_ASSIGN_OR_RETURN(UniqueFd lock, LockExclusive());
  FsckReport report;
  // A finding, and what the repair does about it: done, or, with repair off, still to do.
  auto fix = [&](const std::string& problem, const std::string& action) {
    report.repaired.push_back(problem + ": " + (options.repair ? action : "would be " + action));
  };
  auto damage = [&](std::string what) { report.problems.push_back(std::move(what)); };
  const int root = root_fd_.get();

  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  DoomedFiles doomed;

  // Images: what they reference.
  std::map<Digest, uint64_t> layer_refs, blob_refs;
  std::map<Digest, ImageRecord> images;
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.images, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeImage(key, value);
    if (!rec.ok()) {
      damage("image record " + Digest::FromRaw(key.substr(0, 32)).str() + " is undecodable");
      return true;
    }
    images[rec->id] = *rec;
    for (const Digest& l : rec->layers) ++layer_refs[l];
    ++blob_refs[rec->id];
    if (rec->manifest) ++blob_refs[*rec->manifest];
    return true;
  }));
  report.images = images.size();

  // Tags naming missing images.
  std::vector<std::string> dead_tags;
  LS_RETURN_IF_ERROR(txn.Scan(t.tags, "", [&](std::string_view key, std::string_view value) {
    if (value.size() != Digest::kSize || !images.count(Digest::FromRaw(value))) dead_tags.emplace_back(key);
    return true;
  }));
  for (const std::string& tag : dead_tags) {
    fix("tag " + tag + " names a missing image", "removed");
    LS_RETURN_IF_ERROR(txn.Del(t.tags, tag).status());
  }

  // Layers: counts, unreferenced ones, missing ones, tar-splits.
  std::map<Digest, LayerRecord> layers;
  LS_RETURN_IF_ERROR(txn.Scan(t.layers, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeLayer(value);
    if (!rec.ok()) {
      damage("layer record " + Digest::FromRaw(key).str() + " is undecodable");
      return true;
    }
    layers[Digest::FromRaw(key)] = *rec;
    return true;
  }));
  for (auto& [diff_id, rec] : layers) {
    uint64_t want = layer_refs.count(diff_id) ? layer_refs[diff_id] : 0;
    if (want == 0) {
      fix("layer " + diff_id.str() + " is referenced by no image", "removed");
      rec.refcount = 1;  // so DropLayerRef removes it
      LS_RETURN_IF_ERROR(txn.Put(t.layers, diff_id.raw(), EncodeLayer(rec)));
      LS_RETURN_IF_ERROR(DropLayerRef(txn, t, diff_id, &doomed));
      continue;
    }
    // A blob row under the layer's blob digest is its kept compressed blob (pull --keep-blobs):
    // the layer references it.
    LS_ASSIGN_OR_RETURN(auto kept_blob, txn.Get(t.blobs, rec.blob_digest.raw()));
    if (kept_blob) ++blob_refs[rec.blob_digest];
    if (rec.refcount != want) {
      fix("layer " + diff_id.str() + " reference count " + std::to_string(rec.refcount),
          "corrected to " + std::to_string(want));
      rec.refcount = want;
      LS_RETURN_IF_ERROR(txn.Put(t.layers, diff_id.raw(), EncodeLayer(rec)));
    }
    struct stat st;
    if (::fstatat(root, paths::TarSplit(diff_id).c_str(), &st, 0) != 0) {
      damage("layer " + diff_id.str() + ": tar-split is missing (the layer can be mounted but not saved)");
    }
  }
  for (const auto& [id, image] : images) {
    for (const Digest& l : image.layers) {
      if (!layers.count(l)) damage("image " + id.str() + " names missing layer " + l.str());
    }
  }
  report.layers = layers.size();

  // Objects: recount from the entries that remain.
  std::map<Digest, uint64_t> object_refs;
  std::map<Digest, uint64_t> object_sizes;
  std::map<Digest, Digest> object_user;  // an object -> one layer using it, for messages
  LS_RETURN_IF_ERROR(txn.Scan(t.entries, "", [&](std::string_view key, std::string_view value) {
    Digest layer = Digest::FromRaw(key.substr(0, Digest::kSize));
    auto e = DecodeEntry(value);
    if (!e.ok()) {
      damage("layer " + layer.str() + ": undecodable entry");
      return true;
    }
    if (e->NamesObject()) {
      ++object_refs[e->object];
      object_sizes[e->object] = e->size;
      object_user.emplace(e->object, layer);
    }
    return true;
  }));
  std::map<Digest, ObjectRecord> objects;
  LS_RETURN_IF_ERROR(txn.Scan(t.objects, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeObject(value);
    if (rec.ok()) objects[Digest::FromRaw(key)] = *rec;
    return true;
  }));
  for (auto& [digest, rec] : objects) {
    uint64_t want = object_refs.count(digest) ? object_refs[digest] : 0;
    if (want == 0) {
      fix("object " + digest.str() + " is referenced by no layer", "removed");
      LS_RETURN_IF_ERROR(txn.Del(t.objects, digest.raw()).status());
      doomed.files.push_back(paths::Object(digest));
    } else if (rec.refcount != want) {
      fix("object " + digest.str() + " reference count " + std::to_string(rec.refcount),
          "corrected to " + std::to_string(want));
      rec.refcount = want;
      LS_RETURN_IF_ERROR(txn.Put(t.objects, digest.raw(), EncodeObject(rec)));
    }
  }
  for (const auto& [digest, count] : object_refs) {
    std::string path = paths::Object(digest);
    struct stat st;
    bool present = ::fstatat(root, path.c_str(), &st, 0) == 0;
    bool sized = present && static_cast<uint64_t>(st.st_size) == object_sizes[digest];
    bool intact = sized;
    if (sized && options.verify_content) {
      auto ok = ContentMatches(root, path, digest);
      intact = ok.ok() && *ok;
    }
    if (!intact) {
      damage("object " + digest.str() + (present ? " is damaged" : " is missing") + " (used by layer " +
             object_user[digest].str() + ")");
      continue;
    }
    if (!objects.count(digest)) {
      fix("object " + digest.str() + " has no record", "recreated");
      LS_RETURN_IF_ERROR(txn.Put(t.objects, digest.raw(), EncodeObject({count, object_sizes[digest]})));
    }
  }
  report.objects = object_refs.size();

  // Blobs: counts and presence.
  std::set<Digest> blob_rows;
  std::vector<std::pair<Digest, BlobRecord>> blob_fixes;
  LS_RETURN_IF_ERROR(txn.Scan(t.blobs, "", [&](std::string_view key, std::string_view value) {
    Digest d = Digest::FromRaw(key);
    blob_rows.insert(d);
    auto rec = DecodeBlob(value);
    if (!rec.ok()) return true;
    uint64_t want = blob_refs.count(d) ? blob_refs[d] : 0;
    if (rec->refcount != want) blob_fixes.emplace_back(d, *rec);
    return true;
  }));
  for (auto& [d, rec] : blob_fixes) {
    uint64_t want = blob_refs.count(d) ? blob_refs[d] : 0;
    if (want == 0) {
      fix("blob " + d.str() + " is referenced by no image", "removed");
      LS_RETURN_IF_ERROR(txn.Del(t.blobs, d.raw()).status());
      doomed.files.push_back(paths::Blob(d));
      blob_rows.erase(d);
    } else {
      fix("blob " + d.str() + " reference count " + std::to_string(rec.refcount), "corrected to " + std::to_string(want));
      rec.refcount = want;
      LS_RETURN_IF_ERROR(txn.Put(t.blobs, d.raw(), EncodeBlob(rec)));
    }
  }
  for (const auto& [d, count] : blob_refs) {
    struct stat st;
    if (::fstatat(root, paths::Blob(d).c_str(), &st, 0) != 0) {
      damage("blob " + d.str() + " is missing");
    } else if (!blob_rows.count(d)) {
      fix("blob " + d.str() + " has no record", "recreated");
      LS_RETURN_IF_ERROR(txn.Put(t.blobs, d.raw(), EncodeBlob({count, static_cast<uint64_t>(st.st_size), ""})));
      blob_rows.insert(d);
    }
  }
  report.blobs = blob_rows.size();

  // Files no record names: what a crash between a write and its commit leaves.
  for (unsigned shard = 0; shard < 256; ++shard) {
    std::string dir = paths::ObjectShard(shard);
    for (const std::string& name : fsutil::ListDir(root, dir)) {
      Digest d;
      if (!paths::ParseObjectPath(dir.substr(dir.size() - 2), name, &d) || !object_refs.count(d)) {
        fix("unreferenced file " + dir + "/" + name, "removed");
        doomed.files.push_back(dir + "/" + name);
      }
    }
  }
  for (const std::string& name : fsutil::ListDir(root, paths::kBlobsDir)) {
    auto d = Digest::FromHex(name);
    if (!d.ok() || !blob_rows.count(*d)) {
      fix("unreferenced blob file " + name, "removed");
      doomed.files.push_back(std::string(paths::kBlobsDir) + "/" + name);
    }
  }
  for (const std::string& name : fsutil::ListDir(root, paths::kLayersDir)) {
    auto d = Digest::FromHex(name);
    if (d.ok() && layers.count(*d)) continue;  // kept, or removed above with its layer
    fix("unreferenced layer directory " + name, "removed");
    std::string dir = std::string(paths::kLayersDir) + "/" + name;
    for (const std::string& f : fsutil::ListDir(root, dir)) doomed.files.push_back(dir + "/" + f);
    doomed.dirs.push_back(dir);
  }
  // Chain indexes are a cache: keep those of current images and layers, rebuild others on demand.
  std::set<std::string> chains;
  for (const auto& [id, image] : images) chains.insert(ChainId(image.layers).hex() + ".idx");
  for (const auto& [diff_id, rec] : layers) chains.insert(Sha256::Of("raw " + diff_id.str()).hex() + ".idx");
  for (const std::string& name : fsutil::ListDir(root, paths::kChainsDir)) {
    if (chains.count(name)) continue;
    fix("unused rootfs index chains/" + name, "removed");
    doomed.files.push_back(std::string(paths::kChainsDir) + "/" + name);
  }
  // Leases of mount daemons that died without unmounting (or a crash ended), and lease files
  // that do not decode.
  for (const auto& [name, lease] : LeaseFiles()) {
    if (lease && ProcessAlive(lease->pid, lease->start_time)) continue;
    const std::string path = std::string(paths::kMountsDir) + "/" + name;
    fix(lease ? "lease of a dead mount daemon at " + lease->mountpoint : "unreadable lease " + path, "removed");
    doomed.files.push_back(path);
  }
  // Containers: a row needs its directory (else the container's changes are lost: damage, and
  // the row goes), a directory needs its row (else a crash interrupted a create or an rm).
  std::set<std::string> container_ids;
  std::vector<std::string> lost_containers;
  std::vector<std::string> missing_work_dirs, missing_locks;  // recreated after the commit
  LS_RETURN_IF_ERROR(txn.Scan(t.containers, "", [&](std::string_view key, std::string_view value) {
    container_ids.emplace(key);
    auto rec = DecodeContainer(key, value);
    if (!rec.ok()) {
      damage("container record " + std::string(key) + " is undecodable");
      return true;
    }
    if (!images.count(rec->image_id)) {
      damage("container " + rec->name + " (" + rec->id.substr(0, 12) + ") uses missing image " + rec->image_id.str());
    }
    struct stat st;
    std::string upper = paths::ContainerDir(rec->id) + "/" + paths::kUpperDir;
    if (::fstatat(root, upper.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      damage("container " + rec->name + " (" + rec->id.substr(0, 12) + "): its writable layer " + upper +
             " is missing (its changes are lost)");
      lost_containers.emplace_back(key);
      return true;
    }
    // A container made without syncs (ContainerDurability::kRemovedAfterRun) may have lost its
    // transient parts in a crash; nothing of its content goes with them.
    const std::string which = "container " + rec->name + " (" + rec->id.substr(0, 12) + "): ";
    const std::string work = paths::ContainerDir(rec->id) + "/" + paths::kWorkDir;
    if (::fstatat(root, work.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      fix(which + "work directory " + work + " missing", "recreated");
      missing_work_dirs.push_back(work);
    }
    const std::string lock_file = paths::ContainerDir(rec->id) + "/" + paths::kLockName;
    if (::fstatat(root, lock_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      fix(which + "lock file " + lock_file + " missing", "recreated");
      missing_locks.push_back(lock_file);
    }
    return true;
  }));
  for (const std::string& id : lost_containers) {
    fix("record of container " + id.substr(0, 12) + ", whose directory is missing", "removed");
    LS_RETURN_IF_ERROR(txn.Del(t.containers, id).status());
  }
  std::vector<std::string> doomed_trees;  // removed after the commit, never across a mount
  for (const std::string& name : fsutil::ListDir(root, paths::kContainersDir)) {
    if (container_ids.count(name)) continue;
    fix("container directory containers/" + name + " without a record", "removed");
    doomed_trees.push_back(paths::ContainerDir(name));
  }
  for (const std::string& name : fsutil::ListDir(root, paths::kTmpDir)) {
    fix("leftover temporary file tmp/" + name, "removed");
    doomed_trees.push_back(std::string(paths::kTmpDir) + "/" + name);
  }

  if (!options.repair) return report;  // the write txn aborts: nothing changed
  LS_RETURN_IF_ERROR(txn.Commit());
  Unlink(doomed);
  for (const std::string& tree : doomed_trees) {
    // A temporary mount point still mounted (a killed `strata commit`) stays, and is reported.
    Status s = fsutil::RemoveTreeAt(root, tree);
    if (!s.ok()) damage(s.message());
  }
  for (const std::string& work : missing_work_dirs) {
    if (::mkdirat(root, work.c_str(), 0700) != 0 && errno != EEXIST) {
      damage("creating " + work + ": " + std::strerror(errno));
    }
  }
  for (const std::string& lock_file : missing_locks) {
    UniqueFd fd(::openat(root, lock_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) damage("creating " + lock_file + ": " + std::strerror(errno));
  }
  return report;
}

Result<DiskUsage> StoreImpl::GetDiskUsage() {
  DiskUsage du;
  LS_ASSIGN_OR_RETURN(std::vector<ImageView> images, ListImages());
  for (const ImageView& v : images) {
    ++du.images;
    du.logical_bytes += v.record.size;
    if (v.tags.empty()) {
      ++du.dangling_images;
      du.reclaimable_bytes += v.record.size;
    }
  }
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  const int root = root_fd_.get();
  LS_RETURN_IF_ERROR(txn.Scan(t.layers, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeLayer(value);
    if (!rec.ok()) return true;
    ++du.layers;
    du.layer_bytes += rec->content_size;
    du.disk_bytes += fsutil::AllocatedBytes(root, paths::TarSplit(Digest::FromRaw(key)));
    return true;
  }));
  LS_RETURN_IF_ERROR(txn.Scan(t.objects, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeObject(value);
    if (!rec.ok()) return true;
    ++du.objects;
    du.object_bytes += rec->size;
    du.disk_bytes += fsutil::AllocatedBytes(root, paths::Object(Digest::FromRaw(key)));
    return true;
  }));
  LS_RETURN_IF_ERROR(txn.Scan(t.blobs, "", [&](std::string_view key, std::string_view) {
    du.disk_bytes += fsutil::AllocatedBytes(root, paths::Blob(Digest::FromRaw(key)));
    return true;
  }));
  du.disk_bytes += fsutil::AllocatedBytes(root, std::string(paths::kMetaDir) + "/data.mdb");
  return du;
}

}  // namespace layerstore
