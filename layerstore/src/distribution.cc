// Distribution bookkeeping: which registry locations hold which layer as which blob
// (remote_blobs), and the compressed blobs kept by pull --keep-blobs. Used by the registry client
// in tools/registry; the store itself never talks to a registry.
#include <fcntl.h>

#include <cerrno>

#include "codec.h"
#include "paths.h"
#include "store_impl.h"

namespace layerstore {
namespace {

constexpr uint8_t kRemoteBlobV1 = 1;

// remote_blobs key: diff_id (32 raw bytes) + location, so one prefix scan finds every location.
std::string RemoteKey(const Digest& diff_id, std::string_view location) {
  return std::string(diff_id.raw()) + std::string(location);
}

std::string EncodeRemoteBlob(const RemoteBlob& r) {
  Encoder e;
  e.U8(kRemoteBlobV1);
  e.Raw(r.digest.raw());
  e.Bytes(r.media_type);
  e.Varint(r.size);
  return e.Take();
}

Result<RemoteBlob> DecodeRemoteBlob(std::string_view key, std::string_view v) {
  Decoder d(v);
  RemoteBlob r;
  if (key.size() <= Digest::kSize || d.U8() != kRemoteBlobV1) return Status::Corruption("undecodable remote_blobs record");
  std::string_view raw = d.Raw(Digest::kSize);
  r.media_type = std::string(d.Bytes());
  r.size = d.Varint();
  if (d.failed() || raw.size() != Digest::kSize) return Status::Corruption("undecodable remote_blobs record");
  r.digest = Digest::FromRaw(raw);
  r.location = std::string(key.substr(Digest::kSize));
  return r;
}

}  // namespace

Status StoreImpl::RecordRemoteBlob(const Digest& diff_id, const RemoteBlob& blob) {
  if (blob.location.empty()) return Status::InvalidArgument("remote blob record without a location");
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  std::string key = RemoteKey(diff_id, blob.location);
  std::string value = EncodeRemoteBlob(blob);
  LS_ASSIGN_OR_RETURN(auto existing, txn.Get(t.remote_blobs, key));
  if (existing && *existing == value) return {};  // nothing new: spare the write
  LS_RETURN_IF_ERROR(txn.Put(t.remote_blobs, key, value));
  return txn.Commit();
}

Result<std::vector<RemoteBlob>> StoreImpl::FindRemoteBlobs(const Digest& diff_id) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  std::vector<RemoteBlob> out;
  Status inner;
  LS_RETURN_IF_ERROR(txn.Scan(t.remote_blobs, diff_id.raw(), [&](std::string_view key, std::string_view value) {
    auto r = DecodeRemoteBlob(key, value);
    if (!r.ok()) {
      inner = r.status();
      return false;
    }
    out.push_back(std::move(*r));
    return true;
  }));
  LS_RETURN_IF_ERROR(inner);
  return out;
}

Status StoreImpl::ForgetRemoteBlob(const Digest& diff_id, std::string_view location) {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(bool existed, txn.Del(t.remote_blobs, RemoteKey(diff_id, location)));
  if (!existed) return {};
  return txn.Commit();
}

Result<UniqueFd> StoreImpl::OpenLayerBlob(const Digest& diff_id) {
  Digest blob;
  {
    Tables t;
    LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
    LS_ASSIGN_OR_RETURN(auto layer_row, txn.Get(t.layers, diff_id.raw()));
    if (!layer_row) return Status::NotFound("layer " + diff_id.str() + " is not in the store");
    LS_ASSIGN_OR_RETURN(LayerRecord layer, DecodeLayer(*layer_row));
    LS_ASSIGN_OR_RETURN(auto blob_row, txn.Get(t.blobs, layer.blob_digest.raw()));
    if (!blob_row) return Status::NotFound("layer " + diff_id.str() + " has no kept blob");
    blob = layer.blob_digest;
  }
  UniqueFd fd(::openat(root_fd_.get(), paths::Blob(blob).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening kept blob " + blob.str() + " of layer " + diff_id.str(), errno);
  return fd;
}

}  // namespace layerstore
