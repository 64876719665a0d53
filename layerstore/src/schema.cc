#include "schema.h"

#include "codec.h"

namespace layerstore {
namespace {

constexpr uint8_t kRecordV1 = 1;

Status Bad(std::string_view what) { return Status::Corruption(std::string("undecodable ") + std::string(what) + " record"); }

void PutDigest(Encoder& e, const Digest& d) { e.Raw(d.raw()); }
Digest GetDigest(Decoder& d) {
  std::string_view raw = d.Raw(Digest::kSize);
  return raw.size() == Digest::kSize ? Digest::FromRaw(raw) : Digest();
}

}  // namespace

Result<Tables> Tables::Open(lmdb::Txn& txn) {
  Tables t;
  LS_ASSIGN_OR_RETURN(t.meta, txn.Open("meta"));
  LS_ASSIGN_OR_RETURN(t.images, txn.Open("images"));
  LS_ASSIGN_OR_RETURN(t.tags, txn.Open("tags"));
  LS_ASSIGN_OR_RETURN(t.layers, txn.Open("layers"));
  LS_ASSIGN_OR_RETURN(t.entries, txn.Open("entries"));
  LS_ASSIGN_OR_RETURN(t.objects, txn.Open("objects"));
  LS_ASSIGN_OR_RETURN(t.blobs, txn.Open("blobs"));
  LS_ASSIGN_OR_RETURN(t.remote_blobs, txn.Open("remote_blobs"));
  LS_ASSIGN_OR_RETURN(t.containers, txn.Open("containers"));
  return t;
}

std::string EncodeLayer(const LayerRecord& r) {
  Encoder e;
  e.U8(kRecordV1);
  e.Varint(r.refcount);
  e.Varint(r.tar_size);
  e.Varint(r.content_size);
  e.Varint(r.entry_count);
  PutDigest(e, r.blob_digest);
  e.Varint(r.blob_size);
  e.Bytes(r.compression);
  return e.Take();
}

Result<LayerRecord> DecodeLayer(std::string_view v) {
  Decoder d(v);
  LayerRecord r;
  if (d.U8() != kRecordV1) return Bad("layer");
  r.refcount = d.Varint();
  r.tar_size = d.Varint();
  r.content_size = d.Varint();
  r.entry_count = d.Varint();
  r.blob_digest = GetDigest(d);
  r.blob_size = d.Varint();
  r.compression = std::string(d.Bytes());
  if (d.failed()) return Bad("layer");
  return r;
}

std::string EncodeObject(const ObjectRecord& r) {
  Encoder e;
  e.U8(kRecordV1);
  e.Varint(r.refcount);
  e.Varint(r.size);
  return e.Take();
}

Result<ObjectRecord> DecodeObject(std::string_view v) {
  Decoder d(v);
  ObjectRecord r;
  if (d.U8() != kRecordV1) return Bad("object");
  r.refcount = d.Varint();
  r.size = d.Varint();
  if (d.failed()) return Bad("object");
  return r;
}

std::string EncodeBlob(const BlobRecord& r) {
  Encoder e;
  e.U8(kRecordV1);
  e.Varint(r.refcount);
  e.Varint(r.size);
  e.Bytes(r.media_type);
  return e.Take();
}

Result<BlobRecord> DecodeBlob(std::string_view v) {
  Decoder d(v);
  BlobRecord r;
  if (d.U8() != kRecordV1) return Bad("blob");
  r.refcount = d.Varint();
  r.size = d.Varint();
  r.media_type = std::string(d.Bytes());
  if (d.failed()) return Bad("blob");
  return r;
}

std::string EncodeImage(const ImageRecord& r) {
  Encoder e;
  e.U8(kRecordV1);
  e.Varint(r.layers.size());
  for (const Digest& l : r.layers) PutDigest(e, l);
  e.Varint(r.repo_digests.size());
  for (const std::string& s : r.repo_digests) e.Bytes(s);
  e.U8(r.manifest.has_value());
  if (r.manifest) PutDigest(e, *r.manifest);
  e.Bytes(r.manifest_media_type);
  e.Svarint(r.added_at);
  e.Svarint(r.tagged_at);
  e.Varint(r.size);
  return e.Take();
}

Result<ImageRecord> DecodeImage(std::string_view key, std::string_view v) {
  if (key.size() != Digest::kSize) return Bad("image key");
  Decoder d(v);
  ImageRecord r;
  r.id = Digest::FromRaw(key);
  if (d.U8() != kRecordV1) return Bad("image");
  uint64_t n = d.Varint();
  for (uint64_t i = 0; i < n && !d.failed(); ++i) r.layers.push_back(GetDigest(d));
  n = d.Varint();
  for (uint64_t i = 0; i < n && !d.failed(); ++i) r.repo_digests.emplace_back(d.Bytes());
  if (d.U8()) r.manifest = GetDigest(d);
  r.manifest_media_type = std::string(d.Bytes());
  r.added_at = d.Svarint();
  r.tagged_at = d.Svarint();
  r.size = d.Varint();
  if (d.failed()) return Bad("image");
  return r;
}

std::string EncodeEntry(const Entry& x) {
  Encoder e;
  e.U8(kRecordV1);
  e.U8(static_cast<uint8_t>(x.type));
  e.Bytes(x.path);
  e.Varint(x.mode);
  e.Varint(x.uid);
  e.Varint(x.gid);
  e.Svarint(x.mtime_sec);
  e.Varint(x.mtime_nsec);
  e.Varint(x.size);
  e.Varint(x.dev_major);
  e.Varint(x.dev_minor);
  e.Bytes(x.link_target);
  e.U8(x.sparse);
  if (x.HasObject()) PutDigest(e, x.object);
  e.Varint(x.xattrs.size());
  for (const auto& [name, value] : x.xattrs) {
    e.Bytes(name);
    e.Bytes(value);
  }
  return e.Take();
}

Result<Entry> DecodeEntry(std::string_view v) {
  Decoder d(v);
  Entry x;
  if (d.U8() != kRecordV1) return Bad("entry");
  uint8_t type = d.U8();
  if (type < 1 || type > 9) return Bad("entry");
  x.type = static_cast<EntryType>(type);
  x.path = std::string(d.Bytes());
  x.mode = static_cast<uint32_t>(d.Varint());
  x.uid = static_cast<uint32_t>(d.Varint());
  x.gid = static_cast<uint32_t>(d.Varint());
  x.mtime_sec = d.Svarint();
  x.mtime_nsec = static_cast<uint32_t>(d.Varint());
  x.size = d.Varint();
  x.dev_major = static_cast<uint32_t>(d.Varint());
  x.dev_minor = static_cast<uint32_t>(d.Varint());
  x.link_target = std::string(d.Bytes());
  x.sparse = d.U8() != 0;
  if (x.HasObject()) x.object = GetDigest(d);
  uint64_t n = d.Varint();
  for (uint64_t i = 0; i < n && !d.failed(); ++i) {
    std::string name(d.Bytes());
    std::string value(d.Bytes());
    x.xattrs.emplace_back(std::move(name), std::move(value));
  }
  if (d.failed()) return Bad("entry");
  return x;
}

std::string EncodeContainer(const ContainerRecord& c) {
  Encoder e;
  e.U8(kRecordV1);
  e.Bytes(c.name);
  PutDigest(e, c.image_id);
  e.Bytes(c.image);
  e.Svarint(c.created_at);
  e.Bytes(c.config);
  return e.Take();
}

Result<ContainerRecord> DecodeContainer(std::string_view key, std::string_view v) {
  Decoder d(v);
  ContainerRecord c;
  if (d.U8() != kRecordV1) return Bad("container");
  c.id = std::string(key);
  c.name = std::string(d.Bytes());
  c.image_id = GetDigest(d);
  c.image = std::string(d.Bytes());
  c.created_at = d.Svarint();
  c.config = std::string(d.Bytes());
  if (d.failed()) return Bad("container");
  return c;
}

std::string EntryKey(const Digest& diff_id, uint32_t seq) {
  std::string key(diff_id.raw());
  key += BigEndian32(seq);
  return key;
}

const char* EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kRegular: return "file";
    case EntryType::kDirectory: return "directory";
    case EntryType::kSymlink: return "symlink";
    case EntryType::kHardlink: return "hardlink";
    case EntryType::kCharDevice: return "char device";
    case EntryType::kBlockDevice: return "block device";
    case EntryType::kFifo: return "fifo";
    case EntryType::kWhiteout: return "whiteout";
    case EntryType::kOpaque: return "opaque marker";
  }
  return "unknown";
}

}  // namespace layerstore
