// StoreImpl: the one implementation of Store. Split over store.cc (open, blobs, layers),
// images.cc (image records, tags, removal), containers.cc (container records and directories)
// and fsck.cc (check, repair, disk usage).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layerstore/store.h"
#include "layerstore/unique_fd.h"
#include "lmdb_env.h"
#include "schema.h"

namespace layerstore {

// Files to unlink once the transaction that dropped their rows has committed.
struct DoomedFiles {
  std::vector<std::string> files;  // relative to the root
  std::vector<std::string> dirs;   // emptied first (layer dirs)
};

class StoreImpl final : public Store {
 public:
  static Result<std::unique_ptr<Store>> OpenImpl(const StoreOptions& options);
  ~StoreImpl() override = default;

  const std::string& root() const override { return options_.root; }
  const ImportLimits& limits() const override { return options_.limits; }
  Result<std::unique_ptr<WriteLease>> AcquireWriteLease() override;

  Result<Digest> PutBlob(std::string_view bytes, const Digest* expected, std::string_view media_type) override;
  Result<std::string> ReadBlob(const Digest& digest) override;

  Result<LayerInfo> ImportLayer(ByteSource& source, const LayerExpectation& expect,
                                ProgressSink* progress) override;
  Result<std::optional<LayerInfo>> FindLayer(const Digest& diff_id) override;
  Status ExportLayer(const Digest& diff_id, ByteSink& sink, ProgressSink* progress) override;
  Status ForEachEntry(const Digest& diff_id, const std::function<bool(const Entry&)>& fn) override;

  Result<std::unique_ptr<RootfsIndex>> OpenRootfs(const std::vector<Digest>& layers, bool raw) override;
  Result<UniqueFd> OpenObject(const Digest& object) override;

  Result<ImageRecord> CreateImage(const NewImage& image) override;
  Result<ImageView> ResolveImage(std::string_view name_or_id) override;
  Result<std::vector<ImageView>> ListImages() override;
  Status Tag(const Digest& image_id, const Reference& ref) override;
  Result<std::vector<RemovalEvent>> RemoveImage(std::string_view name_or_id, bool force) override;
  Result<PruneReport> PruneImages(bool all) override;

  Result<ContainerRecord> CreateContainer(std::string_view name, std::string_view image, std::string_view config_json,
                                          ContainerDurability durability) override;
  Result<ContainerRecord> ResolveContainer(std::string_view name_or_id) override;
  Result<std::vector<ContainerRecord>> ListContainers() override;
  Status RemoveContainer(std::string_view id) override;
  std::string ContainerDir(std::string_view id) const override;
  Result<std::string> MakeTempDir() override;

  Status AddMountLease(const MountLease& lease) override;
  Status RemoveMountLease(const std::string& mountpoint) override;
  Result<std::vector<MountLease>> ListMountLeases() override;

  Status RecordRemoteBlob(const Digest& diff_id, const RemoteBlob& blob) override;
  Result<std::vector<RemoteBlob>> FindRemoteBlobs(const Digest& diff_id) override;
  Status ForgetRemoteBlob(const Digest& diff_id, std::string_view location) override;
  Result<UniqueFd> OpenLayerBlob(const Digest& diff_id) override;

  Result<DiskUsage> GetDiskUsage() override;
  Result<FsckReport> Fsck(const FsckOptions& options) override;

  // Objects a failed import left on disk; removed when the lease is released and no other
  // writer is active.
  void NoteAbandonedObjects(const std::vector<Digest>& objects);
  void ReleaseLease();

 private:
  StoreImpl(StoreOptions options, UniqueFd root_fd, std::unique_ptr<lmdb::Env> env)
      : options_(std::move(options)), root_fd_(std::move(root_fd)), env_(std::move(env)) {}

  Status Init();
  // Takes gc.lock exclusively (blocking) for operations that delete.
  Result<UniqueFd> LockExclusive();
  Result<lmdb::Txn> Begin(bool write, Tables* tables);
  // Removes one image's record and drops its references in `txn`; fills `doomed` with the files
  // to unlink after commit and adds the bytes they free to *freed.
  Status DeleteImageInTxn(lmdb::Txn& txn, const Tables& t, const ImageRecord& image, DoomedFiles* doomed);
  Status DropLayerRef(lmdb::Txn& txn, const Tables& t, const Digest& diff_id, DoomedFiles* doomed);
  uint64_t Unlink(const DoomedFiles& doomed);
  Result<std::vector<Reference>> TagsOf(lmdb::Txn& txn, const Tables& t, const Digest& id);
  // Every file under mounts/ with its lease, nullopt for one that does not decode.
  std::vector<std::pair<std::string, std::optional<MountLease>>> LeaseFiles();
  // The leases whose daemon lives. Callers that delete hold gc.lock exclusively: a mount records
  // its lease under the shared lock.
  std::vector<MountLease> LiveMountLeases();
  // Containers whose image is `image_id`, ordered by ID.
  Result<std::vector<ContainerRecord>> ContainersUsing(lmdb::Txn& txn, const Tables& t, const Digest& image_id);

  StoreOptions options_;
  UniqueFd root_fd_;
  std::unique_ptr<lmdb::Env> env_;
  std::mutex abandoned_mu_;  // parallel imports (pull) note abandoned objects concurrently
  std::vector<Digest> abandoned_;  // guarded by abandoned_mu_
  int lease_depth_ = 0;
};

}  // namespace layerstore
