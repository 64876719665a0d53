// BlobPipe: a bounded in-memory byte pipe between the thread that receives a blob over HTTP and
// the thread that imports it into the store (a pull-style layerstore::ByteSource).
//
// Why: Store::ImportLayer pulls its input, libcurl pushes its body; the pipe joins them without a
// temporary copy of the blob, and its bound (a few MiB) makes a slow import throttle the download
// (the writer blocks; TCP flow control does the rest) instead of buffering the whole blob.
//
// Protocol: the writer calls Write() for each piece, then Close() with the transfer's outcome.
// The reader's Read() returns data until the writer closed it: 0 after an OK close. Either side
// may give up: Cancel() (reader) makes every later and pending Write() return false; a failed
// Close() (writer) makes the next Read() return that status at once, dropping buffered bytes —
// they are the prefix of a blob that will never be complete, so the import must fail.
//
// Thread-safety: one writer thread and one reader thread; all methods are safe to call
// concurrently. Not copyable or movable (the threads hold references).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "layerstore/io.h"
#include "layerstore/status.h"

namespace registry {

class BlobPipe final : public layerstore::ByteSource {
 public:
  BlobPipe(std::string name, size_t capacity = size_t{4} << 20);
  BlobPipe(const BlobPipe&) = delete;
  BlobPipe& operator=(const BlobPipe&) = delete;

  // Writer side. Blocks while the pipe is full; false when the reader cancelled.
  bool Write(const char* data, size_t size);
  // Ends the stream: OK for a complete blob, else the failure the reader should report.
  void Close(const layerstore::Status& status);

  // Reader side (layerstore::ByteSource).
  layerstore::Result<size_t> Read(void* buf, size_t size) override;
  std::string Name() const override { return name_; }
  // The reader stops early (its import failed): wakes and fails the writer.
  void Cancel();

 private:
  const std::string name_;
  std::mutex mu_;
  std::condition_variable readable_, writable_;
  std::vector<char> ring_;  // capacity bytes
  size_t head_ = 0;         // next byte to read
  size_t size_ = 0;         // bytes buffered
  bool closed_ = false;
  bool cancelled_ = false;
  layerstore::Status close_status_;
};

}  // namespace registry
