#include "passthrough.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "layerstore/unique_fd.h"
#include "uring.h"

namespace layerfs {
namespace {

// The kernel ABI of passthrough (protocol 7.40), absent from Debian 12's <linux/fuse.h>.
constexpr uint64_t kFusePassthrough = 1ULL << 37;  // FUSE_PASSTHROUGH, an init flag of flags2
constexpr uint32_t kFopenPassthrough = 1u << 7;    // FOPEN_PASSTHROUGH
struct BackingMap {                                // struct fuse_backing_map
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kBackingOpen = _IOW(FUSE_DEV_IOC_MAGIC, 1, BackingMap);
constexpr unsigned long kBackingClose = _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t);
// fuse_init_out.unused[0] became max_stack_depth. Backing files must lie on a filesystem that
// is not itself stacked (depth 0): the mount then has depth 1 and can still be a lower layer of
// an overlayfs. On a stacked filesystem (an overlayfs root) registration fails with ELOOP and
// the mount reads through the daemon instead.
constexpr uint32_t kMaxStackDepth = 1;
constexpr size_t kDefaultMaxPages = 32;     // FUSE_DEFAULT_MAX_PAGES_PER_REQ
constexpr size_t kMinReadBuffer = 8192;     // FUSE_MIN_READ_BUFFER

std::string Errno(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

}  // namespace

InitResult NegotiateInit(fuse_session* se, bool want_passthrough, bool want_uring, bool want_killpriv_v2) {
  InitResult result;
  fuse_buf buf{};
  int n = fuse_session_receive_buf(se, &buf);
  std::unique_ptr<void, decltype(&std::free)> mem(buf.mem, &std::free);
  if (n <= 0) {
    result.error = n == 0 ? "the mount went away before FUSE_INIT" : Errno("reading FUSE_INIT", -n);
    return result;
  }
  const auto* in = static_cast<const fuse_in_header*>(buf.mem);
  const auto* init = reinterpret_cast<const fuse_init_in*>(in + 1);
  const bool is_init = buf.size >= sizeof *in + sizeof *init && in->opcode == FUSE_INIT;
  const bool extended = is_init && (init->flags & FUSE_INIT_EXT);
  const bool passthrough_offered = want_passthrough && extended && (init->flags2 & (kFusePassthrough >> 32));
  const bool uring_offered = want_uring && extended && (init->flags2 & (kFuseOverIoUring >> 32));
  const bool killpriv_offered = want_killpriv_v2 && is_init && (init->flags & FUSE_HANDLE_KILLPRIV_V2);
  if (!passthrough_offered && !uring_offered && !killpriv_offered) {
    fuse_session_process_buf(se, &buf);
    return result;
  }

  // libfuse writes its reply to the session's fd: for this one request that fd is a pipe, and
  // the reply goes on to the device with passthrough and the rings added.
  const int dev = fuse_session_fd(se);
  layerstore::UniqueFd device(::fcntl(dev, F_DUPFD_CLOEXEC, 0));
  int pipe_fds[2];
  if (!device || ::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    result.error = Errno("FUSE_INIT: a pipe for the reply", errno);
    return result;
  }
  layerstore::UniqueFd reply_in(pipe_fds[0]), reply_out(pipe_fds[1]);
  if (::dup3(reply_out.get(), dev, O_CLOEXEC) < 0) {
    result.error = Errno("FUSE_INIT: dup3", errno);
    return result;
  }
  fuse_session_process_buf(se, &buf);
  if (::dup3(device.get(), dev, O_CLOEXEC) < 0) {
    result.error = Errno("FUSE_INIT: dup3", errno);
    return result;
  }

  struct {
    fuse_out_header header;
    fuse_init_out init;
    char more[64];  // a reply larger than this libfuse's would be passed on unchanged
  } reply{};
  ssize_t got = ::read(reply_in.get(), &reply, sizeof reply);
  if (got < static_cast<ssize_t>(sizeof reply.header)) {
    result.error = got < 0 ? Errno("FUSE_INIT: libfuse's reply", errno) : "FUSE_INIT: libfuse sent no reply";
    return result;
  }
  const bool full_reply = reply.header.error == 0 && got == sizeof reply.header + sizeof reply.init;
  // The kernel refuses passthrough beside the writeback cache.
  if (full_reply && passthrough_offered && !(reply.init.flags & FUSE_WRITEBACK_CACHE)) {
    reply.init.flags |= FUSE_INIT_EXT;
    reply.init.flags2 |= static_cast<uint32_t>(kFusePassthrough >> 32);
    reply.init.unused[0] = kMaxStackDepth;
    result.passthrough = true;
  }
  if (full_reply && uring_offered) {
    reply.init.flags |= FUSE_INIT_EXT;
    reply.init.flags2 |= static_cast<uint32_t>(kFuseOverIoUring >> 32);
    result.uring = true;
    // The kernel's largest request or reply (its ring's max_payload_sz): a WRITE of max_write,
    // a READ or READDIR of max_pages pages, and no less than FUSE_MIN_READ_BUFFER.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t pages = (reply.init.flags & FUSE_MAX_PAGES) ? reply.init.max_pages : kDefaultMaxPages;
    result.max_payload = std::max({kMinReadBuffer, static_cast<size_t>(reply.init.max_write), pages * page});
  }
  if (full_reply && killpriv_offered) {
    reply.init.flags |= FUSE_HANDLE_KILLPRIV_V2;
    result.killpriv_v2 = true;
  }
  if (::write(dev, &reply, static_cast<size_t>(got)) != got) {
    result.error = Errno("FUSE_INIT: writing the reply", errno);
    result.passthrough = result.uring = result.killpriv_v2 = false;
  }
  return result;
}

PassthroughFiles::~PassthroughFiles() {
  for (auto& [ino, opens] : by_ino_) {
    if (opens.passthrough == 0) continue;
    uint32_t id = static_cast<uint32_t>(opens.backing_id);
    ::ioctl(fuse_fd_, kBackingClose, &id);
  }
}

IoMode PassthroughFiles::Open(uint64_t ino, int content_fd, int32_t* backing_id) {
  std::lock_guard lock(mu_);
  Opens& opens = by_ino_[ino];
  if (opens.passthrough > 0) {
    ++opens.passthrough;
    *backing_id = opens.backing_id;
    return IoMode::kPassthrough;
  }
  if (opens.cached == 0 && content_fd >= 0 && !refused()) {
    BackingMap map{content_fd, 0, 0};
    const int id = ::ioctl(fuse_fd_, kBackingOpen, &map);
    if (id > 0) {
      opens.backing_id = id;
      opens.passthrough = 1;
      *backing_id = id;
      return IoMode::kPassthrough;
    }
    if (id < 0 && (errno == EPERM || errno == ELOOP || errno == ENOTTY || errno == EINVAL)) {
      refused_.store(true, std::memory_order_relaxed);
    }
  }
  ++opens.cached;
  return IoMode::kCached;
}

void PassthroughFiles::Release(uint64_t ino, IoMode mode) {
  std::lock_guard lock(mu_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) return;
  Opens& opens = it->second;
  if (mode == IoMode::kCached) {
    if (opens.cached > 0) --opens.cached;
  } else if (opens.passthrough > 0 && --opens.passthrough == 0) {
    uint32_t id = static_cast<uint32_t>(opens.backing_id);
    ::ioctl(fuse_fd_, kBackingClose, &id);
    opens.backing_id = 0;
  }
  if (opens.passthrough == 0 && opens.cached == 0) by_ino_.erase(it);
}

namespace {

fuse_open_out PassthroughOpenOut(uint64_t fh, int32_t backing_id) {
  fuse_open_out out{};
  out.fh = fh;
  out.open_flags = kFopenPassthrough | FOPEN_NOFLUSH;
  out.padding = static_cast<uint32_t>(backing_id);  // backing_id since protocol 7.40
  return out;
}

// What libfuse's fill_entry does with a fuse_entry_param.
void FillEntryOut(const fuse_entry_param& e, fuse_entry_out* out) {
  auto seconds = [](double t) { return t <= 0 ? uint64_t{0} : static_cast<uint64_t>(t); };
  auto nanos = [&](double t) { return t <= 0 ? 0u : static_cast<uint32_t>((t - static_cast<double>(seconds(t))) * 1e9); };
  out->nodeid = e.ino;
  out->generation = e.generation;
  out->entry_valid = seconds(e.entry_timeout);
  out->entry_valid_nsec = nanos(e.entry_timeout);
  out->attr_valid = seconds(e.attr_timeout);
  out->attr_valid_nsec = nanos(e.attr_timeout);
  const struct stat& st = e.attr;
  fuse_attr& a = out->attr;
  a.ino = st.st_ino;
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = static_cast<uint32_t>(st.st_rdev);
  a.size = static_cast<uint64_t>(st.st_size);
  a.blksize = static_cast<uint32_t>(st.st_blksize);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
}

}  // namespace

int ReplyPassthroughOpen(fuse_req_t req, uint64_t fh, int32_t backing_id) {
  fuse_open_out out = PassthroughOpenOut(fh, backing_id);
  iovec iov{&out, sizeof out};
  return fuse_reply_iov(req, &iov, 1);
}

int ReplyPassthroughCreate(fuse_req_t req, const fuse_entry_param& entry, uint64_t fh, int32_t backing_id) {
  fuse_entry_out entry_out{};
  FillEntryOut(entry, &entry_out);
  fuse_open_out open_out = PassthroughOpenOut(fh, backing_id);
  iovec iov[2] = {{&entry_out, sizeof entry_out}, {&open_out, sizeof open_out}};
  return fuse_reply_iov(req, iov, 2);
}

int ReplyCachedOpen(fuse_req_t req, uint64_t fh) {
  fuse_file_info fi{};
  fi.fh = fh;
  fi.keep_cache = 1;
  fi.noflush = 1;
  return fuse_reply_open(req, &fi);
}

}  // namespace layerfs
