// Image records and tags: create, resolve, list, tag, remove, prune.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "fsutil.h"
#include "layerstore/sha256.h"
#include "paths.h"
#include "store_impl.h"

namespace layerstore {
namespace {

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

Result<std::vector<Digest>> DiffIdsOf(std::string_view config) {
  auto j = nlohmann::json::parse(config, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("image config is not a JSON object");
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) return Status::InvalidArgument("image config has no rootfs");
  auto ids = rootfs->find("diff_ids");
  std::vector<Digest> out;
  if (ids == rootfs->end() || ids->is_null()) return out;
  if (!ids->is_array()) return Status::InvalidArgument("image config rootfs.diff_ids is not an array");
  for (const auto& id : *ids) {
    if (!id.is_string()) return Status::InvalidArgument("image config has a non-string diff_id");
    LS_ASSIGN_OR_RETURN(Digest d, Digest::Parse(id.get<std::string>()));
    out.push_back(d);
  }
  return out;
}

// Where a live mount shows image `id` (itself, or as a container's image), if anywhere.
std::optional<std::string> MountedAt(const std::vector<MountLease>& live, const Digest& id) {
  for (const MountLease& lease : live) {
    if (lease.image == id) return lease.mountpoint;
  }
  return std::nullopt;
}

bool ContainerMounted(const std::vector<MountLease>& live, std::string_view id) {
  return std::any_of(live.begin(), live.end(), [&](const MountLease& lease) { return lease.container_id == id; });
}

}  // namespace

Result<std::vector<Reference>> StoreImpl::TagsOf(lmdb::Txn& txn, const Tables& t, const Digest& id) {
  std::vector<Reference> tags;
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.tags, "", [&](std::string_view key, std::string_view value) {
    if (value == id.raw()) {
      auto ref = ParseReference(key);
      if (ref.ok()) tags.push_back(*ref);
    }
    return true;
  }));
  std::sort(tags.begin(), tags.end(), [](const Reference& a, const Reference& b) { return a.String() < b.String(); });
  return tags;
}

Result<ImageRecord> StoreImpl::CreateImage(const NewImage& image) {
  LS_ASSIGN_OR_RETURN(std::vector<Digest> diff_ids, DiffIdsOf(image.config));
  LS_ASSIGN_OR_RETURN(Digest id, PutBlob(image.config, nullptr, "application/vnd.oci.image.config.v1+json"));
  for (const Reference& ref : image.tags) {
    if (ref.digest) return Status::InvalidArgument("cannot tag with a digest reference: " + ref.FamiliarString());
  }

  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(auto existing, txn.Get(t.images, id.raw()));
  ImageRecord record;
  if (existing) {
    LS_ASSIGN_OR_RETURN(record, DecodeImage(id.raw(), *existing));
  } else {
    record.id = id;
    record.layers = diff_ids;
    record.added_at = Now();
    for (const Digest& diff_id : diff_ids) {
      LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.layers, diff_id.raw()));
      if (!row) return Status::FailedPrecondition("image " + id.str() + " names layer " + diff_id.str() +
                                                  ", which is not in the store");
      LS_ASSIGN_OR_RETURN(LayerRecord layer, DecodeLayer(*row));
      ++layer.refcount;
      record.size += layer.content_size;
      LS_RETURN_IF_ERROR(txn.Put(t.layers, diff_id.raw(), EncodeLayer(layer)));
    }
    BlobRecord blob{1, image.config.size(), "application/vnd.oci.image.config.v1+json"};
    LS_RETURN_IF_ERROR(txn.Put(t.blobs, id.raw(), EncodeBlob(blob)));
  }
  if (image.manifest && record.manifest != image.manifest) {
    LS_ASSIGN_OR_RETURN(std::string manifest, ReadBlob(*image.manifest));
    LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.blobs, image.manifest->raw()));
    BlobRecord blob{0, manifest.size(), image.manifest_media_type};
    if (row) {
      LS_ASSIGN_OR_RETURN(blob, DecodeBlob(*row));
    }
    ++blob.refcount;
    LS_RETURN_IF_ERROR(txn.Put(t.blobs, image.manifest->raw(), EncodeBlob(blob)));
    if (record.manifest) {
      // The image was pulled before with another manifest: that one loses this reference.
      LS_ASSIGN_OR_RETURN(auto old_row, txn.Get(t.blobs, record.manifest->raw()));
      if (old_row) {
        LS_ASSIGN_OR_RETURN(BlobRecord old, DecodeBlob(*old_row));
        if (old.refcount > 0) --old.refcount;
        LS_RETURN_IF_ERROR(txn.Put(t.blobs, record.manifest->raw(), EncodeBlob(old)));
      }
    }
    record.manifest = image.manifest;
    record.manifest_media_type = image.manifest_media_type;
  }
  for (const std::string& rd : image.repo_digests) {
    if (std::find(record.repo_digests.begin(), record.repo_digests.end(), rd) == record.repo_digests.end()) {
      record.repo_digests.push_back(rd);
    }
  }
  if (!image.tags.empty()) record.tagged_at = Now();
  for (const Reference& ref : image.tags) LS_RETURN_IF_ERROR(txn.Put(t.tags, ref.String(), id.raw()));
  LS_RETURN_IF_ERROR(txn.Put(t.images, id.raw(), EncodeImage(record)));
  LS_RETURN_IF_ERROR(txn.Commit());
  return record;
}

Result<ImageView> StoreImpl::ResolveImage(std::string_view name_or_id) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  auto load = [&](std::string_view raw_id) -> Result<ImageView> {
    LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.images, raw_id));
    if (!row) return Status::Corruption("a tag names image " + Digest::FromRaw(raw_id).str() + ", which is missing");
    ImageView view;
    LS_ASSIGN_OR_RETURN(view.record, DecodeImage(raw_id, *row));
    LS_ASSIGN_OR_RETURN(view.tags, TagsOf(txn, t, view.record.id));
    return view;
  };
  const std::string not_found = "No such image: " + std::string(name_or_id);
  // The one image whose ID starts with `prefix`, nullopt for none, an error when several do.
  auto by_id_prefix = [&](std::string_view prefix) -> Result<std::optional<std::string>> {
    std::optional<std::string> match;
    bool ambiguous = false;
    LS_RETURN_IF_ERROR(txn.Scan(t.images, "", [&](std::string_view key, std::string_view) {
      if (Digest::FromRaw(key).hex().rfind(prefix, 0) == 0) {
        if (match) ambiguous = true;
        match = std::string(key);
      }
      return true;
    }));
    if (ambiguous) return Status::InvalidArgument("image ID prefix \"" + std::string(name_or_id) + "\" is ambiguous");
    return match;
  };

  // An ID, full or short, with or without "sha256:" (Docker tries IDs before names for 64 hex).
  std::string_view hex = name_or_id;
  bool explicit_id = hex.substr(0, 7) == "sha256:";
  if (explicit_id) hex.remove_prefix(7);
  if (IsHexString(hex) && (explicit_id || hex.size() == 64)) {
    LS_ASSIGN_OR_RETURN(auto match, by_id_prefix(hex));
    if (match) return load(*match);
    if (explicit_id || hex.size() == 64) return Status::NotFound(not_found);
  }

  auto ref = ParseReference(name_or_id);
  if (ref.ok()) {
    if (ref->digest) {
      std::string want = ref->Name() + "@" + ref->digest->str();
      std::optional<std::string> match;
      LS_RETURN_IF_ERROR(txn.Scan(t.images, "", [&](std::string_view key, std::string_view value) {
        auto rec = DecodeImage(key, value);
        if (rec.ok() && std::find(rec->repo_digests.begin(), rec->repo_digests.end(), want) != rec->repo_digests.end()) {
          match = std::string(key);
          return false;
        }
        return true;
      }));
      if (match) return load(*match);
      return Status::NotFound(not_found);
    }
    LS_ASSIGN_OR_RETURN(auto id, txn.Get(t.tags, ref->String()));
    if (id) return load(*id);
  }
  // A short ID prefix the user typed without "sha256:" (Docker accepts these when no name matches).
  if (IsHexString(name_or_id)) {
    LS_ASSIGN_OR_RETURN(auto match, by_id_prefix(name_or_id));
    if (match) return load(*match);
  }
  if (!ref.ok()) return ref.status();
  return Status::NotFound(not_found);
}

Result<std::vector<ImageView>> StoreImpl::ListImages() {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  std::map<std::string, ImageView> by_id;
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.images, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeImage(key, value);
    if (!rec.ok()) {
      inner = rec.status();
      return false;
    }
    by_id[std::string(key)].record = *rec;
    return true;
  }));
  LS_RETURN_IF_ERROR(inner);
  LS_RETURN_IF_ERROR(txn.Scan(t.tags, "", [&](std::string_view key, std::string_view value) {
    auto it = by_id.find(std::string(value));
    auto ref = ParseReference(key);
    if (it != by_id.end() && ref.ok()) it->second.tags.push_back(*ref);
    return true;
  }));
  std::vector<ImageView> out;
  for (auto& [id, view] : by_id) out.push_back(std::move(view));
  return out;
}

Status StoreImpl::Tag(const Digest& image_id, const Reference& ref) {
  if (ref.digest) return Status::InvalidArgument("refusing to create a tag with a digest reference: " + ref.FamiliarString());
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.images, image_id.raw()));
  if (!row) return Status::NotFound("No such image: " + image_id.str());
  LS_ASSIGN_OR_RETURN(ImageRecord rec, DecodeImage(image_id.raw(), *row));
  rec.tagged_at = Now();
  LS_RETURN_IF_ERROR(txn.Put(t.images, image_id.raw(), EncodeImage(rec)));
  LS_RETURN_IF_ERROR(txn.Put(t.tags, ref.String(), image_id.raw()));
  return txn.Commit();
}

Status StoreImpl::DropLayerRef(lmdb::Txn& txn, const Tables& t, const Digest& diff_id, DoomedFiles* doomed) {
  LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.layers, diff_id.raw()));
  if (!row) return {};  // already gone: fsck reports images naming missing layers
  LS_ASSIGN_OR_RETURN(LayerRecord layer, DecodeLayer(*row));
  if (layer.refcount > 1) {
    --layer.refcount;
    return txn.Put(t.layers, diff_id.raw(), EncodeLayer(layer));
  }
  // Last reference: drop the entries and with them the object references.
  std::map<Digest, uint64_t> drops;
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.entries, diff_id.raw(), [&](std::string_view, std::string_view value) {
    auto e = DecodeEntry(value);
    if (!e.ok()) {
      inner = e.status();
      return false;
    }
    if (e->NamesObject()) ++drops[e->object];
    return true;
  }));
  LS_RETURN_IF_ERROR(inner);
  for (const auto& [digest, count] : drops) {
    LS_ASSIGN_OR_RETURN(auto orow, txn.Get(t.objects, digest.raw()));
    if (!orow) continue;
    LS_ASSIGN_OR_RETURN(ObjectRecord obj, DecodeObject(*orow));
    if (obj.refcount > count) {
      obj.refcount -= count;
      LS_RETURN_IF_ERROR(txn.Put(t.objects, digest.raw(), EncodeObject(obj)));
    } else {
      LS_RETURN_IF_ERROR(txn.Del(t.objects, digest.raw()).status());
      doomed->files.push_back(paths::Object(digest));
    }
  }
  LS_RETURN_IF_ERROR(txn.DeletePrefix(t.entries, diff_id.raw()).status());
  LS_RETURN_IF_ERROR(txn.Del(t.layers, diff_id.raw()).status());
  doomed->files.push_back(paths::TarSplit(diff_id));
  doomed->dirs.push_back(paths::LayerDir(diff_id));
  // The compressed blob kept for the layer (pull --keep-blobs) goes with it.
  LS_ASSIGN_OR_RETURN(auto kept, txn.Get(t.blobs, layer.blob_digest.raw()));
  if (kept) {
    LS_ASSIGN_OR_RETURN(BlobRecord blob, DecodeBlob(*kept));
    if (blob.refcount > 1) {
      --blob.refcount;
      LS_RETURN_IF_ERROR(txn.Put(t.blobs, layer.blob_digest.raw(), EncodeBlob(blob)));
    } else {
      LS_RETURN_IF_ERROR(txn.Del(t.blobs, layer.blob_digest.raw()).status());
      doomed->files.push_back(paths::Blob(layer.blob_digest));
    }
  }
  return {};
}

Status StoreImpl::DeleteImageInTxn(lmdb::Txn& txn, const Tables& t, const ImageRecord& image, DoomedFiles* doomed) {
  for (const Digest& diff_id : image.layers) LS_RETURN_IF_ERROR(DropLayerRef(txn, t, diff_id, doomed));
  std::vector<Digest> blobs = {image.id};
  if (image.manifest) blobs.push_back(*image.manifest);
  for (const Digest& b : blobs) {
    LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.blobs, b.raw()));
    if (!row) continue;
    LS_ASSIGN_OR_RETURN(BlobRecord blob, DecodeBlob(*row));
    if (blob.refcount > 1) {
      --blob.refcount;
      LS_RETURN_IF_ERROR(txn.Put(t.blobs, b.raw(), EncodeBlob(blob)));
    } else {
      LS_RETURN_IF_ERROR(txn.Del(t.blobs, b.raw()).status());
      doomed->files.push_back(paths::Blob(b));
    }
  }
  return txn.Del(t.images, image.id.raw()).status();
}

uint64_t StoreImpl::Unlink(const DoomedFiles& doomed) {
  uint64_t freed = 0;
  for (const std::string& f : doomed.files) {
    freed += fsutil::AllocatedBytes(root_fd_.get(), f);
    ::unlinkat(root_fd_.get(), f.c_str(), 0);
  }
  for (const std::string& d : doomed.dirs) ::unlinkat(root_fd_.get(), d.c_str(), AT_REMOVEDIR);
  return freed;
}

Result<std::vector<RemovalEvent>> StoreImpl::RemoveImage(std::string_view name_or_id, bool force) {
  LS_ASSIGN_OR_RETURN(UniqueFd lock, LockExclusive());
  LS_ASSIGN_OR_RETURN(ImageView view, ResolveImage(name_or_id));
  const std::string short_id = view.record.id.hex().substr(0, 12);

  // Was the image named by one of its tags? Then only that tag goes, unless it is the last.
  std::optional<Reference> by_tag;
  if (auto ref = ParseReference(name_or_id); ref.ok() && !ref->digest) {
    for (const Reference& tag : view.tags) {
      if (tag == *ref) by_tag = tag;
    }
  }
  std::vector<RemovalEvent> events;
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  std::vector<Reference> untag = by_tag ? std::vector<Reference>{*by_tag} : view.tags;
  // Containers keep their image (Docker's conflicts; a mounted container is a running one).
  const std::vector<MountLease> live = LiveMountLeases();
  bool keep_image = false;
  if (untag.size() == view.tags.size()) {
    LS_ASSIGN_OR_RETURN(std::vector<ContainerRecord> users, ContainersUsing(txn, t, view.record.id));
    if (!users.empty()) {
      const std::string user = users[0].id.substr(0, 12);
      if (by_tag && !force) {
        return Status::FailedPrecondition("conflict: unable to remove repository reference \"" +
                                          std::string(name_or_id) + "\" (must force) - container " + user +
                                          " is using its referenced image " + short_id);
      }
      if (!by_tag) {
        for (const ContainerRecord& c : users) {
          if (ContainerMounted(live, c.id)) {
            return Status::FailedPrecondition("conflict: unable to delete " + short_id +
                                              " (cannot be forced) - image is being used by running container " +
                                              c.id.substr(0, 12));
          }
        }
        if (!force && view.tags.size() <= 1) {
          return Status::FailedPrecondition("conflict: unable to delete " + short_id +
                                            " (must be forced) - image is being used by stopped container " + user);
        }
        if (force && view.tags.empty()) {
          return Status::FailedPrecondition("conflict: unable to delete " + short_id +
                                            " - image is being used by container " + user +
                                            " (remove the container first)");
        }
      }
      keep_image = true;  // with force: untagged, kept (dangling) while the containers exist
    }
  }
  if (untag.size() == view.tags.size() && !keep_image) {
    if (auto mounted = MountedAt(live, view.record.id)) {
      return Status::FailedPrecondition("conflict: unable to delete " + short_id + " - image is in use by the mount at " +
                                        *mounted + " (strata umount it first)");
    }
  }
  if (!by_tag && view.tags.size() > 1 && !force) {
    return Status::FailedPrecondition("conflict: unable to delete " + short_id +
                                      " (must be forced) - image is referenced in multiple repositories");
  }
  for (const Reference& tag : untag) {
    LS_RETURN_IF_ERROR(txn.Del(t.tags, tag.String()).status());
    events.push_back({RemovalEvent::kUntagged, tag.FamiliarString()});
  }
  DoomedFiles doomed;
  if (untag.size() == view.tags.size() && !keep_image) {
    for (const std::string& rd : view.record.repo_digests) {
      auto ref = ParseReference(rd);
      events.push_back({RemovalEvent::kUntagged, ref.ok() ? ref->FamiliarString() : rd});
    }
    LS_RETURN_IF_ERROR(DeleteImageInTxn(txn, t, view.record, &doomed));
    events.push_back({RemovalEvent::kDeleted, view.record.id.str()});
  }
  LS_RETURN_IF_ERROR(txn.Commit());
  Unlink(doomed);
  return events;
}

Result<PruneReport> StoreImpl::PruneImages(bool all) {
  LS_ASSIGN_OR_RETURN(UniqueFd lock, LockExclusive());
  LS_ASSIGN_OR_RETURN(std::vector<ImageView> images, ListImages());
  PruneReport report;
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  DoomedFiles doomed;
  const std::vector<MountLease> live = LiveMountLeases();
  for (const ImageView& view : images) {
    if (!all && !view.tags.empty()) continue;
    if (MountedAt(live, view.record.id)) continue;
    LS_ASSIGN_OR_RETURN(std::vector<ContainerRecord> users, ContainersUsing(txn, t, view.record.id));
    if (!users.empty()) continue;
    for (const Reference& tag : view.tags) {
      LS_RETURN_IF_ERROR(txn.Del(t.tags, tag.String()).status());
      report.events.push_back({RemovalEvent::kUntagged, tag.FamiliarString()});
    }
    LS_RETURN_IF_ERROR(DeleteImageInTxn(txn, t, view.record, &doomed));
    report.events.push_back({RemovalEvent::kDeleted, view.record.id.str()});
  }
  LS_RETURN_IF_ERROR(txn.Commit());
  report.reclaimed_bytes = Unlink(doomed);
  return report;
}

}  // namespace layerstore
