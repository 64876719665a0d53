// CompressingSink: a layerstore::ByteSink that compresses what it is given (gzip or zstd) and
// hands the compressed bytes to a callback — push's path from Store::ExportLayer to an upload,
// with no temporary file.
//
// Output is deterministic for a given input and library version (gzip: ISA-L deflate level 3 over
// 1 MiB blocks compressed in parallel, each primed with the 32 KiB before it, mtime 0, no name;
// zstd: level 3, no checksum, no content size), so recompressing the same layer twice yields the
// same blob digest — whatever the number of CPUs — and a re-push can match what a registry holds.
// Owns its deflate/zstd state and the gzip worker threads (joined in the destructor). One writer
// thread; not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "layerstore/io.h"
#include "layerstore/status.h"

namespace registry {

enum class Compression { kGzip, kZstd };

// "gzip" / "zstd"; InvalidArgument for anything else.
layerstore::Result<Compression> ParseCompression(std::string_view name);
std::string_view CompressionName(Compression c);

class CompressingSink final : public layerstore::ByteSink {
 public:
  using Output = std::function<layerstore::Status(const char* data, size_t size)>;

  static layerstore::Result<std::unique_ptr<CompressingSink>> Create(Compression compression, Output output);
  ~CompressingSink() override;
  CompressingSink(const CompressingSink&) = delete;
  CompressingSink& operator=(const CompressingSink&) = delete;

  layerstore::Status Write(const void* data, size_t size) override;
  // Flushes the end of the stream. REQUIRES: called once, after the last Write.
  layerstore::Status Finish();

 private:
  struct Impl;
  explicit CompressingSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace registry
