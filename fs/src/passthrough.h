// FUSE passthrough (Linux 6.9+): an OPEN or CREATE answered with a backing file lets the kernel
// do the file's reads, writes and mmap on that file itself, with no READ or WRITE requests and
// the backing file's own page cache (a store object's is shared by every mount of the layer).
// libfuse 3.14 (Debian 12) predates it, so what it needs is done here: the FUSE_INIT reply gains
// the FUSE_PASSTHROUGH flag and a stacking depth (libfuse builds the reply; NegotiateInit amends
// it on its way to the kernel), and OPEN and CREATE are answered with a fuse_open_out carrying
// the backing id.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

// Handles the kernel's FUSE_INIT, the first request of a new mount, through libfuse, and asks
// in the reply for passthrough when `want_passthrough`, for FUSE over io_uring when `want_uring`
// (uring.h), and for FUSE_HANDLE_KILLPRIV_V2 when `want_killpriv_v2` (killpriv.h: the session's
// transport must record the requests' flags), each where the kernel offers it. Call once, after
// fuse_session_mount and before the session loop. Returns what was granted (the kernel may still
// refuse each backing file: PassthroughFiles::Open); on error, a message.
struct InitResult {
  bool passthrough = false;
  bool uring = false;       // the kernel now waits for every CPU's ring queue: UringTransport::Start
  bool killpriv_v2 = false;  // the daemon clears setuid/setgid on writes and truncations
  size_t max_payload = 0;   // with uring: the payload buffer each ring entry needs
  std::string error;        // non-empty: the handshake failed and the mount is unusable
};
InitResult NegotiateInit(fuse_session* se, bool want_passthrough, bool want_uring, bool want_killpriv_v2);

// How the kernel does an open file's I/O.
enum class IoMode {
  kCached,       // through READ/WRITE requests and the mount's page cache
  kPassthrough,  // on the backing file, by the kernel itself
};

// The io modes and backing files of the open files of one mount, by inode. The kernel holds
// each inode to one mode at a time (a cached open while passthrough opens exist, or the other way
// round, fails: ETXTBSY, or EIO for the open) and to one backing file (EBUSY for a second), so
// this decides the mode of every open: one backing id per inode, registered with its first
// passthrough open and closed with its last; cached opens while any cached open lasts.
// Thread-safe.
class PassthroughFiles {
 public:
  explicit PassthroughFiles(int fuse_fd) : fuse_fd_(fuse_fd) {}
  ~PassthroughFiles();
  PassthroughFiles(const PassthroughFiles&) = delete;
  PassthroughFiles& operator=(const PassthroughFiles&) = delete;

  // Decides and counts one more open of `ino`. kPassthrough (with *backing_id) when the inode
  // already has passthrough opens, or when it has no cached ones and content_fd (the file's data;
  // -1: none that may back it) can be registered (the fd is not kept). Otherwise kCached; if the
  // kernel refused the registration for a reason that holds for every file (EPERM: no
  // CAP_SYS_ADMIN; ELOOP: content on a stacked filesystem), refused() is true from then on.
  IoMode Open(uint64_t ino, int content_fd, int32_t* backing_id);
  // One open of `ino` in `mode` is gone (its RELEASE, or an OPEN whose reply did not reach the
  // kernel); the last passthrough one closes the backing id.
  void Release(uint64_t ino, IoMode mode);

  bool refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  struct Opens {
    int32_t backing_id = 0;
    uint32_t passthrough = 0;
    uint32_t cached = 0;
  };
  const int fuse_fd_;
  std::atomic<bool> refused_{false};
  std::mutex mu_;
  std::unordered_map<uint64_t, Opens> by_ino_;
};

// Answers OPEN or CREATE (with its entry) for a passthrough open: FOPEN_PASSTHROUGH and the
// backing id, which libfuse 3.14's fuse_reply_open/fuse_reply_create cannot carry. Returns what
// fuse_reply_iov does: non-zero when the reply did not reach the kernel.
int ReplyPassthroughOpen(fuse_req_t req, uint64_t fh, int32_t backing_id);
int ReplyPassthroughCreate(fuse_req_t req, const fuse_entry_param& entry, uint64_t fh, int32_t backing_id);

// An OPEN answered without passthrough: reads go through the page cache and READ requests, the
// cache survives the file's closing, and closing sends no FLUSH. Returns as ReplyPassthroughOpen.
int ReplyCachedOpen(fuse_req_t req, uint64_t fh);

// The fh of an image mount's opens, so that RELEASE knows their mode.
inline constexpr uint64_t kCachedFh = 0;
inline constexpr uint64_t kPassthroughFh = 1;

}  // namespace layerfs
