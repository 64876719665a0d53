// FUSE passthrough (Linux 6.9+): an OPEN answered with a backing file lets the kernel do the
// file's reads (and mmap) on that file itself, with no READ requests and the object's own page
// cache, shared by every mount of the layer. libfuse 3.14 (Debian 12) predates it, so the two
// places it needs are done here: the FUSE_INIT reply gains the FUSE_PASSTHROUGH flag and a
// stacking depth (libfuse builds the reply; NegotiateInit amends it on its way to the kernel),
// and OPEN is answered with a fuse_open_out carrying the backing id.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

// Handles the kernel's FUSE_INIT, the first request of a new mount, through libfuse, and asks
// for passthrough in the reply when `want_passthrough` and the kernel offers it. Call once, after
// fuse_session_mount and before the session loop. Returns whether passthrough was granted (the
// kernel may still refuse each backing file: PassthroughFiles::Open); on error, a message.
struct InitResult {
  bool passthrough = false;
  std::string error;  // non-empty: the handshake failed and the mount is unusable
};
InitResult NegotiateInit(fuse_session* se, bool want_passthrough);

// The backing files of the open files of one mount, by inode. Every open of an inode must use
// the same backing file (the kernel refuses a second one with EBUSY), so one backing id is
// registered per inode and released with its last open file. Thread-safe.
class PassthroughFiles {
 public:
  explicit PassthroughFiles(int fuse_fd) : fuse_fd_(fuse_fd) {}
  ~PassthroughFiles();
  PassthroughFiles(const PassthroughFiles&) = delete;
  PassthroughFiles& operator=(const PassthroughFiles&) = delete;

  // Counts one more open file of `ino` and gives the backing id to answer its OPEN with,
  // registering `content_fd` (the fd is not kept) if the inode has none. 0 or an errno: EPERM
  // without CAP_SYS_ADMIN, ELOOP when content_fd's filesystem is itself stacked.
  int Open(uint64_t ino, int content_fd, int32_t* backing_id);
  // One open file of `ino` is gone (its RELEASE, or an OPEN whose reply did not reach the
  // kernel); the last one closes the backing id.
  void Release(uint64_t ino);

  // The kernel refused a backing file for a reason that holds for every file of the mount.
  void Refuse() { refused_.store(true, std::memory_order_relaxed); }
  bool refused() const { return refused_.load(std::memory_order_relaxed); }

  // Answers an OPEN with FOPEN_PASSTHROUGH and the backing id; on failure (the request was
  // interrupted) the open is released again.
  void ReplyOpen(fuse_req_t req, uint64_t ino, int32_t backing_id);

 private:
  struct Backing {
    int32_t id;
    uint32_t open_files;
  };
  const int fuse_fd_;
  std::atomic<bool> refused_{false};
  std::mutex mu_;
  std::unordered_map<uint64_t, Backing> by_ino_;
};

// An OPEN answered without passthrough: reads go through the page cache and READ requests, the
// cache survives the file's closing, and closing sends no FLUSH.
void ReplyCachedOpen(fuse_req_t req);

// The fh of a passthrough open, so that RELEASE knows which opens hold a backing id.
inline constexpr uint64_t kPassthroughFh = 1;

}  // namespace layerfs
