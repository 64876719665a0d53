#include "uring.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>

#include "killpriv.h"
#include "layerstore/io.h"

namespace layerfs {
namespace {

// The kernel ABI of FUSE over io_uring (protocol 7.42), absent from Debian 12's <linux/fuse.h>.
constexpr size_t kInOutHeaderSize = 128;  // FUSE_URING_IN_OUT_HEADER_SZ
constexpr size_t kOpHeaderSize = 128;     // FUSE_URING_OP_IN_OUT_SZ
struct RingEntryInOut {                   // struct fuse_uring_ent_in_out
  uint64_t flags;
  uint64_t commit_id;  // the request's unique, echoed by the commit
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct RingHeader {                      // struct fuse_uring_req_header: iov[0] of an entry
  char in_out[kInOutHeaderSize];         // fuse_in_header on fetch, fuse_out_header on commit
  char op_in[kOpHeaderSize];             // the request's first argument (its per-opcode struct)
  RingEntryInOut ring_ent_in_out;
};
static_assert(sizeof(RingHeader) == 288);
struct RingCommand {                     // struct fuse_uring_cmd_req, in the SQE's command area
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
constexpr uint32_t kCmdRegister = 1;        // FUSE_IO_URING_CMD_REGISTER
constexpr uint32_t kCmdCommitAndFetch = 2;  // FUSE_IO_URING_CMD_COMMIT_AND_FETCH

// Workers per queue, each with one entry: while one is held up (an fsync, a copy-up), the kernel
// hands the CPU's next request to the other. (With two entries per worker, the kernel could hand
// it to the busy worker's idle entry: it takes the most recently committed entry first.)
constexpr size_t kWorkersPerQueue = 2;
constexpr unsigned kRingSize = 4;  // SQEs: the entry's command, the stop poll, and slack
constexpr uint64_t kEntryTag = 0;  // user_data of the entry's commands
constexpr uint64_t kStopTag = 1;   // of the stop poll

const char kEnableUring[] = "/sys/module/fuse/parameters/enable_uring";

// The CPUs the kernel counts queues for (num_possible_cpus), from a list such as "0-3,6".
size_t PossibleCpus() {
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string list;
  size_t count = 0;
  if (in >> list) {
    size_t pos = 0;
    while (pos < list.size()) {
      size_t comma = list.find(',', pos);
      std::string range = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t dash = range.find('-');
      unsigned long first = std::strtoul(range.c_str(), nullptr, 10);
      unsigned long last = dash == std::string::npos ? first : std::strtoul(range.c_str() + dash + 1, nullptr, 10);
      if (last >= first) count += last - first + 1;
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (count == 0) count = static_cast<size_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  return count;
}

}  // namespace

// One ring entry: the buffers the kernel writes a request into and reads the reply from.
struct Entry {
  explicit Entry(size_t payload_size)
      // Not value-initialised: only the pages requests and replies touch become resident.
      : max_payload(payload_size), buffer(new char[kPrefix + payload_size]) {
    iov[0] = {&header, sizeof header};
    iov[1] = {payload(), max_payload};
  }

  // kPrefix bytes, then the payload buffer registered with the kernel. The request's headers are
  // copied into the prefix right before the payload, so libfuse gets the request contiguous, as
  // read from /dev/fuse, without the payload (a WRITE's data) being copied.
  static constexpr size_t kPrefix = sizeof(fuse_in_header) + kOpHeaderSize;
  char* payload() { return buffer.get() + kPrefix; }

  // libfuse's reply to the request being answered (the out header, then the reply's arguments),
  // as written or as left in a pipe by a splice; the error reply of a request libfuse left
  // unanswered or could not be handed.
  ssize_t TakeReply(const iovec* reply, int count);
  ssize_t TakeSplicedReply(int pipe_fd, size_t len);
  void ReplyError(uint64_t request, int err);

  const size_t max_payload;
  RingHeader header{};
  std::unique_ptr<char[]> buffer;
  iovec iov[2]{};
  uint64_t unique = 0;  // of the request being answered
  bool replied = false;
  bool committing = false;  // the command in flight is a COMMIT_AND_FETCH (else a REGISTER)
};

// The entry whose request this thread is handing to libfuse: its reply goes to the entry.
thread_local Entry* t_entry = nullptr;

struct UringTransport::Worker {
  fuse_session* se = nullptr;
  int fuse_fd = -1;
  int stop_fd = -1;
  uint16_t qid = 0;
  size_t max_payload = 0;  // set by Start
  io_uring ring{};
  // Made by Serve. Kept as long as the worker, past the ring's teardown: until then the kernel
  // may still write into its buffers.
  std::unique_ptr<Entry> entry;

  enum class State { kCreating, kCreated, kFailed, kGo, kCancel };
  std::mutex mu;
  std::condition_variable cv;
  State state = State::kCreating;
  std::string error;

  void Run();
  void Serve();
  void Handle(Entry& e);
  void QueueCommand(Entry& e, uint32_t op, uint64_t commit_id);
  void SetState(State s) {
    std::lock_guard lock(mu);
    state = s;
    cv.notify_all();
  }
};

namespace {

ssize_t IoWritev(int fd, struct iovec* iov, int count, void*) {
  Entry* e = t_entry;
  if (e && count > 0 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      static_cast<const fuse_out_header*>(iov[0].iov_base)->unique == e->unique) {
    return e->TakeReply(iov, count);
  }
  return ::writev(fd, iov, count);
}

ssize_t IoSpliceReceive(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

// fuse_reply_data with an fd buffer: libfuse has put the whole reply into a pipe.
ssize_t IoSpliceSend(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
  if (Entry* e = t_entry) return e->TakeSplicedReply(fdin, len);
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

// Requests read from /dev/fuse (FORGET and INTERRUPT, or all of them once the kernel dropped the
// rings) carry their kill flag to the handlers as the rings' do.
const fuse_custom_io kCustomIo = {IoWritev, ReadRequestNotingFlags, IoSpliceReceive, IoSpliceSend};

}  // namespace

ssize_t Entry::TakeReply(const iovec* reply, int count) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += reply[i].iov_len;
  if (total < sizeof(fuse_out_header) || total - sizeof(fuse_out_header) > max_payload) {
    errno = EINVAL;
    return -1;
  }
  // The first bytes are the out header, the rest the payload: gather them across the iovecs.
  size_t done = 0;
  for (int i = 0; i < count; ++i) {
    const char* src = static_cast<const char*>(reply[i].iov_base);
    size_t len = reply[i].iov_len;
    if (done < sizeof(fuse_out_header)) {
      size_t head = std::min(len, sizeof(fuse_out_header) - done);
      std::memcpy(header.in_out + done, src, head);
      src += head;
      len -= head;
      done += head;
    }
    if (len > 0) {
      std::memmove(payload() + (done - sizeof(fuse_out_header)), src, len);
      done += len;
    }
  }
  header.ring_ent_in_out.payload_sz = static_cast<uint32_t>(total - sizeof(fuse_out_header));
  replied = true;
  return static_cast<ssize_t>(total);
}

ssize_t Entry::TakeSplicedReply(int pipe_fd, size_t len) {
  if (len < sizeof(fuse_out_header) || len - sizeof(fuse_out_header) > max_payload) {
    errno = EINVAL;
    return -1;
  }
  auto read_all = [&](char* dst, size_t n) {
    auto got = layerstore::ReadFull(pipe_fd, dst, n, "libfuse's spliced reply");
    return got.ok() && *got == n;
  };
  if (!read_all(header.in_out, sizeof(fuse_out_header)) || !read_all(payload(), len - sizeof(fuse_out_header))) {
    errno = EIO;
    return -1;
  }
  header.ring_ent_in_out.payload_sz = static_cast<uint32_t>(len - sizeof(fuse_out_header));
  replied = true;
  return static_cast<ssize_t>(len);
}

void Entry::ReplyError(uint64_t request, int err) {
  fuse_out_header out{};
  out.len = sizeof out;
  out.error = -err;
  out.unique = request;
  std::memcpy(header.in_out, &out, sizeof out);
  header.ring_ent_in_out.payload_sz = 0;
}

void UringTransport::Worker::QueueCommand(Entry& e, uint32_t op, uint64_t commit_id) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {  // not expected: the ring has room for every entry's command
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
      spdlog::error("FUSE io_uring queue {}: no submission slot", qid);
      return;
    }
  }
  std::memset(static_cast<void*>(sqe), 0, 2 * sizeof *sqe);  // SQE128: the command area runs on
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fuse_fd;
  sqe->cmd_op = op;
  sqe->addr = reinterpret_cast<uintptr_t>(e.iov);
  sqe->len = 2;
  sqe->user_data = kEntryTag;
  auto* cmd = reinterpret_cast<RingCommand*>(sqe->cmd);
  cmd->commit_id = commit_id;
  cmd->qid = qid;
}

void UringTransport::Worker::Handle(Entry& e) {
  fuse_in_header in;
  std::memcpy(&in, e.header.in_out, sizeof in);
  const uint32_t payload = e.header.ring_ent_in_out.payload_sz;
  const uint64_t commit_id = e.header.ring_ent_in_out.commit_id;
  // The kernel's len counts the per-opcode struct (in op_in) and the payload; what is left of it
  // is the struct's size.
  if (in.len < sizeof in + payload || in.len - sizeof in - payload > kOpHeaderSize || payload > max_payload) {
    e.ReplyError(in.unique, EIO);
  } else {
    const size_t op_size = in.len - sizeof in - payload;
    char* start = e.payload() - op_size - sizeof in;
    std::memcpy(start, &in, sizeof in);
    std::memcpy(start + sizeof in, e.header.op_in, op_size);
    fuse_buf buf{};
    buf.size = in.len;
    buf.mem = start;
    e.unique = in.unique;
    e.replied = false;
    t_entry = &e;
    SetCurrentRequestKillsSuidgid(RequestKillsSuidgid(in.opcode, start + sizeof in, op_size));
    fuse_session_process_buf(se, &buf);
    SetCurrentRequestKillsSuidgid(false);
    t_entry = nullptr;
    // Every request that comes through a ring expects a reply (FORGET, which does not, comes
    // through /dev/fuse); a silent libfuse must not leave the caller waiting.
    if (!e.replied) e.ReplyError(in.unique, EIO);
  }
  e.committing = true;
  QueueCommand(e, kCmdCommitAndFetch, commit_id);
}

void UringTransport::Worker::Serve() {
  entry = std::make_unique<Entry>(max_payload);
  io_uring_sqe* poll = io_uring_get_sqe(&ring);
  io_uring_prep_poll_add(poll, stop_fd, POLLIN);
  poll->user_data = kStopTag;
  QueueCommand(*entry, kCmdRegister, 0);

  for (;;) {
    int r = io_uring_submit_and_wait(&ring, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      // The entry stays registered with no one to answer it: the other worker of this CPU goes
      // on. Nothing short of a broken ring gets here.
      spdlog::error("FUSE io_uring queue {}: io_uring_enter: {}", qid, std::strerror(-r));
      return;
    }
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
      const uint64_t tag = cqe->user_data;
      const int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      if (tag == kStopTag) return;
      if (res >= 0) {
        Handle(*entry);
        continue;
      }
      const bool gone = res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED;
      if (!gone) spdlog::warn("FUSE io_uring queue {}: {}", qid, std::strerror(-res));
      // A refused commit leaves the entry out of the queue: registered afresh, it serves on. A
      // refused REGISTER makes the kernel drop the rings (the mount goes on through /dev/fuse),
      // and a gone mount ends the worker.
      if (gone || !entry->committing) return;
      entry->committing = false;
      QueueCommand(*entry, kCmdRegister, 0);
    }
  }
}

void UringTransport::Worker::Run() {
  // The kernel queues a request on the ring of the CPU its caller runs on: the worker of that
  // ring belongs on that CPU, where waking it needs no inter-processor interrupt. A CPU outside
  // this process's affinity keeps the worker where the scheduler puts it.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(qid, &cpus);
  ::sched_setaffinity(0, sizeof cpus, &cpus);

  // Task work (handing a request to this thread) runs when the thread waits for completions,
  // not by interrupting it mid-request.
  io_uring_params params{};
  params.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(kRingSize, &ring, &params);
  if (r == -EINVAL) {
    params = {};
    params.flags = IORING_SETUP_SQE128;
    r = io_uring_queue_init_params(kRingSize, &ring, &params);
  }
  {
    std::unique_lock lock(mu);
    if (r != 0) error = std::string("io_uring_setup: ") + std::strerror(-r);
    state = r == 0 ? State::kCreated : State::kFailed;
    cv.notify_all();
    cv.wait(lock, [&] { return state == State::kGo || state == State::kCancel || state == State::kFailed; });
    if (state != State::kGo) {
      if (r == 0) io_uring_queue_exit(&ring);
      return;
    }
  }
  Serve();
  io_uring_queue_exit(&ring);
}

bool EnableKernelUring() {
  char value = 0;
  {
    layerstore::UniqueFd fd(::open(kEnableUring, O_RDONLY | O_CLOEXEC));
    if (!fd || ::read(fd.get(), &value, 1) != 1) return false;
  }
  if (value == 'Y') return true;
  layerstore::UniqueFd fd(::open(kEnableUring, O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), "Y", 1) == 1;
}

std::unique_ptr<UringTransport> UringTransport::Prepare(fuse_session* se, std::string* error) {
  std::unique_ptr<UringTransport> transport(new UringTransport);
  transport->stop_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!transport->stop_) {
    *error = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  const size_t queues = std::min<size_t>(PossibleCpus(), UINT16_MAX);
  for (size_t q = 0; q < queues; ++q) {
    for (size_t i = 0; i < kWorkersPerQueue; ++i) {
      auto w = std::make_unique<Worker>();
      w->se = se;
      w->fuse_fd = fuse_session_fd(se);
      w->stop_fd = transport->stop_.get();
      w->qid = static_cast<uint16_t>(q);
      transport->workers_.push_back(std::move(w));
    }
  }
  for (auto& w : transport->workers_) transport->threads_.emplace_back([w = w.get()] { w->Run(); });
  for (auto& w : transport->workers_) {
    std::unique_lock lock(w->mu);
    w->cv.wait(lock, [&] { return w->state != Worker::State::kCreating; });
    if (w->state == Worker::State::kFailed) {
      *error = w->error;
      return nullptr;  // the destructor cancels the others
    }
  }
  if (fuse_session_custom_io(se, &kCustomIo, fuse_session_fd(se)) != 0) {
    *error = "libfuse refused a custom io";
    return nullptr;
  }
  return transport;
}

void UringTransport::Start(size_t max_payload) {
  for (auto& w : workers_) {
    w->max_payload = max_payload;
    w->SetState(Worker::State::kGo);
  }
}

UringTransport::~UringTransport() {
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    if (w->state != Worker::State::kGo) {
      w->state = Worker::State::kCancel;
      w->cv.notify_all();
    }
  }
  if (stop_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
  }
  for (auto& t : threads_) t.join();
}

}  // namespace layerfs
