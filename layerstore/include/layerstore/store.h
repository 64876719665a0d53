// Store: the deduplicated, content-addressed layer store and its image records.
//
// On disk (see docs/ARCHITECTURE.md): one LMDB environment under meta/ is the authority for what
// exists; blobs/ holds configs and manifests, objects/ one file per distinct regular-file content,
// layers/<diff_id>/ the tar-split of each layer. A file becomes visible to readers only when the
// LMDB transaction naming it commits, after the file was synced; so a crash at any instant leaves
// at worst unreferenced files, which Fsck removes.
//
// Concurrency: one Store per process (LMDB's rule), usable from one thread at a time. Several
// processes may open the same root: writers that add data hold a shared lock on gc.lock
// (WriteLease) from their first file write to their last commit; operations that delete (rmi,
// prune, fsck repair) take it exclusively, so they never free what an import is about to name.
// Exception for parallel pulls and pushes: FindLayer, ImportLayer, ExportLayer, OpenLayerBlob,
// RecordRemoteBlob and FindRemoteBlobs may run concurrently from several threads (each uses its
// own LMDB transactions, and LMDB serialises writers), while one WriteLease is held for them all.
//
// Containers (src/containers.cc): a record per container names its image; its writable layer
// lives in containers/<id>/ (upper/, work/, lock), written by the FUSE driver in overlayfs's
// upper-directory format (docs/ARCHITECTURE.md). An image a container uses is never deleted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layerstore/digest.h"
#include "layerstore/io.h"
#include "layerstore/layer.h"
#include "layerstore/options.h"
#include "layerstore/progress.h"
#include "layerstore/reference.h"
#include "layerstore/rootfs.h"
#include "layerstore/unique_fd.h"
#include "layerstore/status.h"

namespace layerstore {

struct ImageRecord {
  Digest id;                               // the config digest, as Docker's image IDs
  std::vector<Digest> layers;              // diff_ids, bottom first (config rootfs.diff_ids)
  std::vector<std::string> repo_digests;   // "docker.io/library/x@sha256:<manifest>"
  std::optional<Digest> manifest;          // the manifest it was pulled with, when kept
  std::string manifest_media_type;
  int64_t added_at = 0;                    // unix seconds the record was created
  int64_t tagged_at = 0;                   // unix seconds of the last tag change
  uint64_t size = 0;                       // sum of its layers' content_size
};

struct ImageView {
  ImageRecord record;
  std::vector<Reference> tags;  // sorted
};

// What an import expects of a layer stream; unset fields are not checked.
struct LayerExpectation {
  std::optional<Digest> blob_digest;  // digest of the bytes as read (compressed or not)
  std::optional<uint64_t> blob_size;
  std::optional<Digest> diff_id;      // digest of the uncompressed tar
  // Also keep the bytes as read under blobs/ (pull --keep-blobs), so a later push can send the
  // exact blob and keep the manifest digest; recorded with the layer, removed with it.
  bool keep_blob = false;
  std::string blob_media_type;        // recorded for the kept blob
  // Called once on the importing thread when every file of the layer is written and the layer is
  // verified, before the files are synced and the layer committed; not called when the import
  // fails before. Lets a loader start the next layer while this one syncs and commits.
  std::function<void()> on_written;
};

struct NewImage {
  std::string config;                 // the config JSON, exactly as its digest was computed
  std::vector<Reference> tags;        // moved to this image from any image holding them
  std::vector<std::string> repo_digests;
  std::optional<Digest> manifest;     // a manifest blob already stored with PutBlob (pull)
  std::string manifest_media_type;
};

// A registry location known to hold a layer as a blob (pull and push record it; push uses it to
// skip uploads, mount across repositories and keep manifest digests). Value type.
struct RemoteBlob {
  std::string location;  // "registry/repository": "docker.io/library/busybox", "localhost:5000/app"
  Digest digest;         // the blob as that location stores it (compressed)
  std::string media_type;
  uint64_t size = 0;
};

// Docker-style report lines of rmi/prune, in order.
struct RemovalEvent {
  enum Kind { kUntagged, kDeleted } kind;
  std::string what;  // familiar reference for Untagged, "sha256:<id>" for Deleted
};

struct PruneReport {
  std::vector<RemovalEvent> events;
  uint64_t reclaimed_bytes = 0;  // bytes of objects, blobs and tar-splits freed on disk
};

struct DiskUsage {
  uint64_t images = 0;
  uint64_t dangling_images = 0;
  uint64_t layers = 0;
  uint64_t objects = 0;
  uint64_t logical_bytes = 0;      // sum of every image's size, as if each were stored alone
  uint64_t layer_bytes = 0;        // sum of each distinct layer's content_size
  uint64_t object_bytes = 0;       // bytes of distinct file objects (what dedup keeps)
  uint64_t disk_bytes = 0;         // allocated bytes of objects + blobs + tar-splits + metadata
  uint64_t reclaimable_bytes = 0;  // image size that only dangling images hold
};

struct FsckOptions {
  bool repair = true;           // remove what a crash leaves, fix counts
  bool verify_content = false;  // re-hash every object
};

struct FsckReport {
  std::vector<std::string> problems;  // each names the record or file
  std::vector<std::string> repaired;  // "finding: what was done", or with repair off "...: would be ..."
  uint64_t images = 0, layers = 0, objects = 0, blobs = 0;
  bool consistent() const { return problems.empty(); }
};

class WriteLease;

// A live mount of an image: while its process lives, rmi refuses the image and prune keeps it.
struct MountLease {
  std::string mountpoint;  // absolute path; the key
  Digest image;
  int pid = 0;             // the stratafs daemon serving it
  uint64_t start_time = 0; // its start time in clock ticks (/proc/PID/stat), so a reused pid is not mistaken
  std::string container_id;  // the container mounted (its image is `image`); empty for an image mount
};

// Whether `pid` is alive and started at `start_time` (a lease of a crashed daemon is dead).
bool ProcessAlive(int pid, uint64_t start_time);
uint64_t ProcessStartTime(int pid);

// A container: an image plus a writable layer in containers/<id>/. Value type.
// How CreateContainer makes a container's directory.
enum class ContainerDurability {
  kSynced,  // synced before the record commits: after a crash, the container is whole
  // Not synced (strata run --rm: the container is removed when its run ends, its layer mounted
  // volatile). After a crash its record may name a directory that is missing or incomplete:
  // Fsck removes such a record, or recreates the transient parts (work/, the lock file).
  kRemovedAfterRun,
};

struct ContainerRecord {
  std::string id;        // 64 lowercase hex, random (like Docker's container IDs)
  std::string name;      // unique; generated Docker-style (adjective_surname) when not given
  Digest image_id;
  std::string image;     // the image as the user named it at create
  int64_t created_at = 0;  // unix seconds
  std::string config;    // JSON text, free for later use by `strata run` (command, env...); "{}" for now
};

class Store {
 public:
  // Opens (creating on first use) the store at options.root. Fails with FailedPrecondition on a
  // root written by a newer or foreign format.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  virtual ~Store() = default;

  virtual const std::string& root() const = 0;
  virtual const ImportLimits& limits() const = 0;

  // Shared lock that keeps GC away while an import is between its first write and its last commit.
  virtual Result<std::unique_ptr<WriteLease>> AcquireWriteLease() = 0;

  // --- blobs (configs, manifests) ---
  // Stores `bytes`, verifying `expected` when given. Unreferenced until an image names it.
  virtual Result<Digest> PutBlob(std::string_view bytes, const Digest* expected, std::string_view media_type) = 0;
  virtual Result<std::string> ReadBlob(const Digest& digest) = 0;

  // --- layers ---
  // Streams one layer (tar, tar+gzip, tar+zstd, ...; detected by magic) into the store. On any
  // error nothing of the layer is kept. REQUIRES: a WriteLease is held until the layer is referenced.
  virtual Result<LayerInfo> ImportLayer(ByteSource& source, const LayerExpectation& expect,
                                        ProgressSink* progress) = 0;
  virtual Result<std::optional<LayerInfo>> FindLayer(const Digest& diff_id) = 0;
  // Writes the layer's uncompressed tar, byte-identical to what was imported (verified).
  virtual Status ExportLayer(const Digest& diff_id, ByteSink& sink, ProgressSink* progress) = 0;
  // Calls fn for each entry in tar order; fn returns false to stop.
  virtual Status ForEachEntry(const Digest& diff_id, const std::function<bool(const Entry&)>& fn) = 0;

  // The merged view of `layers` (bottom first, as an image lists them), from its index file,
  // building the index on first use. With `raw`, `layers` must hold one layer, shown as stored:
  // whiteouts and opaque markers appear as their ".wh." files.
  virtual Result<std::unique_ptr<RootfsIndex>> OpenRootfs(const std::vector<Digest>& layers, bool raw) = 0;
  // A read-only fd on a content object, for serving a file's bytes.
  virtual Result<UniqueFd> OpenObject(const Digest& object) = 0;

  // --- images ---
  // Records an image whose config names only layers already in the store; tags move to it.
  // Returns the record and, in *replaced, images that lost tags to it.
  virtual Result<ImageRecord> CreateImage(const NewImage& image) = 0;
  // Resolves a reference ("busybox", "busybox:1.36", "x@sha256:..."), a full or short image ID
  // ("sha256:ab12...", "ab12cd"), as Docker does. NotFound names what was looked up.
  virtual Result<ImageView> ResolveImage(std::string_view name_or_id) = 0;
  virtual Result<std::vector<ImageView>> ListImages() = 0;
  virtual Status Tag(const Digest& image_id, const Reference& ref) = 0;
  // docker rmi semantics: a tag untags; the image goes with its last tag; an ID with several
  // tags needs force. While a container uses the image: without `force`, the image's last tag
  // and its ID are refused with Docker's conflict errors; with `force` the tags go but the image
  // stays (dangling) until its containers are removed; while such a container is mounted
  // (Docker's "running"), an ID is refused even with `force`.
  virtual Result<std::vector<RemovalEvent>> RemoveImage(std::string_view name_or_id, bool force) = 0;
  // Dangling images, or with `all` every tagged image too; never one that a live mount or any
  // container uses.
  virtual Result<PruneReport> PruneImages(bool all) = 0;

  // --- containers (src/containers.cc) ---
  // Resolves `image` (as ResolveImage), builds containers/<id>/{upper,work,lock} under tmp/,
  // syncs it (see ContainerDurability), renames it into place and then commits the record; a
  // crash leaves at worst a directory without a record, which Fsck removes. `name` empty: a
  // generated one. `config_json`
  // empty means "{}". Errors: InvalidArgument for a bad name ("Invalid container name (x), only
  // [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed") or config, NotFound for the image, AlreadyExists for a
  // name in use (Docker's "Conflict. The container name \"/x\" is already in use ...").
  virtual Result<ContainerRecord> CreateContainer(std::string_view name, std::string_view image,
                                                  std::string_view config_json, ContainerDurability durability) = 0;
  // An exact name (with or without Docker's leading '/'), a full ID, or a unique ID prefix, in
  // Docker's order. NotFound "No such container: X"; InvalidArgument for an ambiguous prefix.
  virtual Result<ContainerRecord> ResolveContainer(std::string_view name_or_id) = 0;
  // Every container, ordered by ID.
  virtual Result<std::vector<ContainerRecord>> ListContainers() = 0;
  // Removes the record of the container with this full ID (committed first), then its directory.
  // Unavailable while a daemon holds containers/<id>/lock (it serves the container: unmount it
  // first); NotFound for an unknown ID. A crash between the two steps leaves a directory that
  // Fsck removes.
  virtual Status RemoveContainer(std::string_view id) = 0;
  // <root>/containers/<id> as an absolute path: holds upper/, work/ and the lock file. Pure: does
  // not check that the container exists. A daemon serving the container holds an exclusive flock
  // on <dir>/lock; it should take it first and then check that the record still exists, since
  // RemoveContainer takes the same lock (non-blocking) before it removes anything.
  virtual std::string ContainerDir(std::string_view id) const = 0;
  // A new empty directory (mode 0700) under the store's tmp/, as an absolute path, for a caller's
  // scratch files or a temporary mount point. The caller removes it; Fsck removes what a crash
  // leaves, but never descends into a mount. REQUIRES: a WriteLease is held while it is in use,
  // so that a concurrent Fsck leaves it alone.
  virtual Result<std::string> MakeTempDir() = 0;

  virtual Status AddMountLease(const MountLease& lease) = 0;
  virtual Status RemoveMountLease(const std::string& mountpoint) = 0;
  // Every recorded lease, live or not (callers check ProcessAlive).
  virtual Result<std::vector<MountLease>> ListMountLeases() = 0;

  // --- distribution (src/distribution.cc): what registries hold, kept layer blobs ---
  // Records that blob.location holds layer diff_id as blob.digest, replacing an earlier record
  // for that location. Call only after the registry confirmed it (pulled, pushed, HEAD 200).
  virtual Status RecordRemoteBlob(const Digest& diff_id, const RemoteBlob& blob) = 0;
  // Every location known to hold diff_id, ordered by location.
  virtual Result<std::vector<RemoteBlob>> FindRemoteBlobs(const Digest& diff_id) = 0;
  // Drops a record a registry contradicted (HEAD 404). OK when there was none.
  virtual Status ForgetRemoteBlob(const Digest& diff_id, std::string_view location) = 0;
  // A read-only fd on the compressed blob kept for a layer (LayerExpectation::keep_blob); its
  // digest and size are the layer's blob_digest and blob_size. NotFound when none was kept.
  virtual Result<UniqueFd> OpenLayerBlob(const Digest& diff_id) = 0;

  virtual Result<DiskUsage> GetDiskUsage() = 0;
  virtual Result<FsckReport> Fsck(const FsckOptions& options) = 0;
};

// Held while importing; released on destruction.
class WriteLease {
 public:
  virtual ~WriteLease() = default;
};

}  // namespace layerstore
