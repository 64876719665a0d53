// RunMount: the life of a stratafs daemon. Order as in libfuse's passthrough_hp: fork first (so
// the parent can report whether the mount came up), then, in the child only, open the store and
// create loggers (LMDB environments and spdlog's threads do not survive a fork), build the
// session, mount, tell the parent, make the io_uring workers, answer FUSE_INIT (asking for
// passthrough and the rings), serve, unmount.
#include "layerfs/mount.h"

#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "attr_policy.h"
#include "directory_layers.h"
#include "filesystem.h"
#include "killpriv.h"
#include "layerstore/store.h"
#include "lower.h"
#include "ops.h"
#include "passthrough.h"
#include "uring.h"
#include "union_fs.h"

namespace layerfs {
namespace {

// Workers for requests; more than a serial client needs, so that one waiting on the disk
// (fsync, a large copy-up) does not stop the others.
constexpr unsigned kMaxWorkers = 8;

struct SessionDeleter {
  void operator()(fuse_session* se) const noexcept { fuse_session_destroy(se); }
};
struct LoopConfigDeleter {
  void operator()(fuse_loop_config* c) const noexcept { fuse_loop_cfg_destroy(c); }
};

// Reports readiness (or the reason for failing) to the waiting parent, once, as one line: the
// parent returns on the newline rather than on the pipe's end, which would cost it a second
// wake-up (across CPUs, 0.1-0.3 ms of every mount).
class ReadyPipe {
 public:
  explicit ReadyPipe(int fd) : fd_(fd) {}
  ~ReadyPipe() { Send("ERR stratafs exited before the mount was ready"); }
  void Send(const std::string& msg) {
    if (fd_ < 0) return;
    std::string line = msg;
    std::replace(line.begin(), line.end(), '\n', ' ');
    line += '\n';
    ssize_t ignored = ::write(fd_, line.data(), line.size());
    (void)ignored;
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The layers to show: the image's chain, or one layer of it as stored.
layerstore::Result<std::unique_ptr<layerstore::RootfsIndex>> OpenView(layerstore::Store& store,
                                                                      const MountOptions& opts,
                                                                      layerstore::Digest* image_id) {
  LS_ASSIGN_OR_RETURN(layerstore::ImageView image, store.ResolveImage(opts.image));
  *image_id = image.record.id;
  const auto& layers = image.record.layers;
  if (opts.layer.empty()) return store.OpenRootfs(layers, false);
  // Up to 4 digits is a position (1-based from the bottom); anything longer, a diff_id prefix.
  bool position = opts.layer.size() <= 4 && opts.layer.find_first_not_of("0123456789") == std::string::npos;
  if (position) {
    unsigned long n = std::strtoul(opts.layer.c_str(), nullptr, 10);
    if (n < 1 || n > layers.size()) {
      return layerstore::Status::InvalidArgument("--layer " + opts.layer + ": " + opts.image + " has layers 1.." +
                                                 std::to_string(layers.size()));
    }
    return store.OpenRootfs({layers[n - 1]}, true);
  }
  std::string prefix = opts.layer.rfind("sha256:", 0) == 0 ? opts.layer.substr(7) : opts.layer;
  std::vector<layerstore::Digest> matches;
  for (const auto& l : layers) {
    if (!prefix.empty() && l.hex().rfind(prefix, 0) == 0) matches.push_back(l);
  }
  if (matches.size() != 1) {
    return layerstore::Status::InvalidArgument("--layer " + opts.layer + " names " +
                                               (matches.empty() ? "no" : "more than one") + " layer of " + opts.image +
                                               " (use 1.." + std::to_string(layers.size()) + " or a diff_id prefix)");
  }
  return store.OpenRootfs(matches, true);
}

void RaiseFdLimit() {
  rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;  // every open file holds an object fd
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Grows the kernel's fd table now, while the daemon has one thread. Once workers share the table,
// each doubling waits for an RCU grace period (8-15 ms on these VMs, the CPU idle meanwhile), and
// so does the request whose open needed it: 10,000 creates through a writable mount, which keep an
// fd per inode, waited 70 ms of their 790 for seven doublings. 16,384 slots (128 KiB of kernel
// memory) cover the union's fd cache and open files, and a read of a large image up to its content
// fd budget at the usual limits; a daemon that needs more grows the table as before.
void ReserveFdTable(int any_fd) {
  constexpr rlim_t kReservedSlots = 16384;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t slots = std::min(lim.rlim_cur, kReservedSlots);
  // The kernel sizes tables in powers of two of 128 slots and wants one more than the fd asked.
  const int highest = static_cast<int>(slots > 128 ? slots - 128 : slots - 1);
  // Taking the slot grows the table; giving it back at once leaves the table at its new size.
  UniqueFd(::fcntl(any_fd, F_DUPFD_CLOEXEC, highest)).Reset();
}

// A container mounted with MountOptions::volatile_layer has this file in its directory, from
// before its first unsynced write for as long as the container lives.
constexpr const char* kVolatileMark = "volatile";

// Refuses a marked layer (CheckNotVolatile); marks it, durably, when this mount is to be volatile.
layerstore::Status CheckVolatileMark(const std::string& container_dir, const std::string& name, bool volatile_layer) {
  LS_RETURN_IF_ERROR(CheckNotVolatile(container_dir, name));
  if (!volatile_layer) return {};
  const std::string mark = container_dir + "/" + kVolatileMark;
  UniqueFd file(::open(mark.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!file) return layerstore::Status::FromErrno("creating " + mark, errno);
  UniqueFd dir(::open(container_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) return layerstore::Status::FromErrno("syncing " + container_dir, errno);
  return {};
}

// Serves requests until the mount goes away; libfuse's result.
int ServeRequests(fuse_session* se, bool debug) {
  if (debug) return fuse_session_loop(se);
  std::unique_ptr<fuse_loop_config, LoopConfigDeleter> loop(fuse_loop_cfg_create());
  fuse_loop_cfg_set_clone_fd(loop.get(), 1);
  // A pool for both kinds of mount. On this VM a wake-up across CPUs costs 70-110 us when the
  // host is busy (perf bench sched pipe) against 7 us on one CPU; one worker then pays it both
  // ways on every request (70-100 us per GETXATTR round trip, half the random-read IOPS), while
  // with a pool the woken thread is often already on the caller's CPU (25-35 us). When cross-CPU
  // wake-ups are cheap (8 us) one worker was the faster (docs/benchmarks.md, "Workers"): the pool
  // is for the slow case, the one this machine's users meet. libfuse starts threads only when all
  // are busy; a serial client got three or four. (Capping idle threads instead makes libfuse
  // 3.14 create and destroy a thread per request.)
  fuse_loop_cfg_set_max_threads(loop.get(), kMaxWorkers);
  return fuse_session_loop_mt(se, loop.get());
}

int Serve(MountOptions opts, ReadyPipe& ready, bool background) {
  // The store's shared GC lock, from resolving the image until its lease is recorded: rmi and
  // prune, which take it exclusively, then either run before (the image is gone and the mount
  // fails) or see the lease. Released before anything that owns the store is destroyed.
  std::unique_ptr<layerstore::WriteLease> gc_guard;
  auto fail = [&](const std::string& msg) {
    gc_guard.reset();
    if (!background) std::cerr << "stratafs: " << msg << "\n";
    ready.Send("ERR " + msg);
    return 1;
  };
  if (background) {
    spdlog::set_default_logger(spdlog::syslog_logger_mt("stratafs", "stratafs", LOG_PID));
  } else {
    spdlog::set_default_logger(spdlog::stderr_color_mt("stratafs"));
  }
  RaiseFdLimit();

  char real[PATH_MAX];
  if (!::realpath(opts.mountpoint.c_str(), real)) return fail("mountpoint " + opts.mountpoint + ": " + strerror(errno));
  std::unique_ptr<Lower> lower;
  layerstore::Store* store_ptr = nullptr;  // a store mount's: where its lease goes
  UniqueFd container_lock;
  layerstore::ContainerRecord container;
  layerstore::Digest image_id;
  if (!opts.lower_dirs.empty()) {
    // Inode numbers of layers on the upper's filesystem pass unchanged (DirectoryLayers::Ino).
    std::optional<dev_t> upper_dev;
    struct stat upper_st;
    if (!opts.upper_dir.empty() && ::stat(opts.upper_dir.c_str(), &upper_st) == 0) upper_dev = upper_st.st_dev;
    auto layers = DirectoryLayers::Open(opts.lower_dirs, upper_dev);
    if (!layers.ok()) return fail(layers.status().message());
    lower = std::move(*layers);
  } else {
    auto store = layerstore::Store::Open({.root = opts.store_root});
    if (!store.ok()) return fail(store.status().message());
    auto guard = (*store)->AcquireWriteLease();
    if (!guard.ok()) return fail(guard.status().message());
    gc_guard = std::move(*guard);
    // A container: its directory's lock first (held for the daemon's life: one writer per layer,
    // and rm waits for it), then its record, which rm may have removed meanwhile.
    if (!opts.container.empty()) {
      auto record = (*store)->ResolveContainer(opts.container);
      if (!record.ok()) return fail(record.status().message());
      const std::string dir = (*store)->ContainerDir(record->id);
      container_lock.Reset(::open((dir + "/lock").c_str(), O_RDWR | O_CLOEXEC));
      if (!container_lock) return fail("container " + opts.container + ": " + dir + "/lock: " + strerror(errno));
      if (::flock(container_lock.get(), LOCK_EX | LOCK_NB) != 0) {
        return fail("container " + record->name + " is already mounted (or being removed)");
      }
      auto again = (*store)->ResolveContainer(record->id);
      if (!again.ok()) return fail(again.status().message());
      container = *again;
      opts.image = container.image_id.str();
      opts.upper_dir = dir + "/upper";
      opts.work_dir = dir + "/work";
      if (auto s = CheckVolatileMark(dir, container.name, opts.volatile_layer); !s.ok()) return fail(s.message());
      if (opts.volatile_layer) opts.overlay.sync = false;
    }
    auto index = OpenView(**store, opts, &image_id);
    if (!index.ok()) return fail(index.status().message());
    auto store_lower = std::make_unique<StoreLower>(std::move(*store), std::move(*index));
    store_ptr = &store_lower->store();
    lower = std::move(store_lower);
  }
  const bool writable_layer = !opts.upper_dir.empty();
  const AttrPolicy policy(opts.overlay);
  std::unique_ptr<Filesystem> image_fs;
  ImageSession image_session{};
  std::unique_ptr<UnionFs> union_fs;
  UnionSession union_session{};
  fuse_lowlevel_ops ops;
  void* userdata;
  if (writable_layer) {
    auto fs = UnionFs::Open(std::move(lower), opts.upper_dir, opts.work_dir,
                            {.policy = policy, .sync = opts.overlay.sync});
    if (!fs.ok()) return fail(fs.status().message());
    union_fs = std::move(*fs);
    union_session.fs = union_fs.get();
    union_session.read_only = opts.read_only;
    ops = MakeUnionOperations();
    userdata = &union_session;
  } else {
    image_fs = std::make_unique<Filesystem>(std::move(lower), policy);
    image_session.fs = image_fs.get();
    ops = MakeOperations();
    userdata = &image_session;
  }
  std::string fsname = opts.overlay.fsname;
  if (fsname.empty()) {
    fsname = opts.lower_dirs.empty() ? "stratafs:" + (container.name.empty() ? opts.image : container.name)
                                     : "stratafs";
  }
  std::string options = std::string(writable_layer && !opts.read_only ? "rw" : "ro") +
                        ",default_permissions,fsname=" + fsname + ",subtype=stratafs";
  if (::geteuid() == 0) options += ",allow_other";  // processes of any uid inside the rootfs
  for (const auto& o : opts.overlay.fuse_options) options += "," + o;
  std::vector<std::string> argv_storage = {"stratafs", "-o", options};
  if (opts.debug) argv_storage.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  std::unique_ptr<fuse_session, SessionDeleter> se(fuse_session_new(&args, &ops, sizeof ops, userdata));
  fuse_opt_free_args(&args);
  if (!se) return fail("cannot create the FUSE session");
  if (fuse_set_signal_handlers(se.get()) != 0) return fail("cannot install signal handlers");
  // Before mounting: the kernel decides what its FUSE_INIT offers when the mount is made.
  const bool uring_enabled = opts.io_uring && EnableKernelUring();
  if (fuse_session_mount(se.get(), real) != 0) {
    fuse_remove_signal_handlers(se.get());
    return fail(std::string("cannot mount on ") + real + " (is /dev/fuse available and the directory empty?)");
  }
  if (store_ptr) {
    layerstore::MountLease lease;
    lease.mountpoint = real;
    lease.image = image_id;
    lease.container_id = container.id;
    lease.pid = ::getpid();
    lease.start_time = layerstore::ProcessStartTime(lease.pid);
    if (auto s = store_ptr->AddMountLease(lease); !s.ok()) {
      fuse_session_unmount(se.get());
      fuse_remove_signal_handlers(se.get());
      return fail(s.message());
    }
    gc_guard.reset();
  }
  ready.Send("OK");
  if (background) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
      ::close(null);
    }
  }

  ReserveFdTable(fuse_session_fd(se.get()));

  // Before the loop, so that the workers it starts see the session complete.
  std::unique_ptr<PassthroughFiles> passthrough;
  std::unique_ptr<UringTransport> uring;
  if (uring_enabled) {
    std::string why;
    uring = UringTransport::Prepare(se.get(), &why);
    if (!uring) spdlog::warn("{}: FUSE over io_uring: {}; serving through /dev/fuse", real, why);
  }
  // A writable mount clears setuid/setgid itself (killpriv.h): the rings' transport, or else a
  // reader of /dev/fuse, records each request's flags for its handlers.
  const bool writes = writable_layer && !opts.read_only;
  const bool flags_seen = uring != nullptr || (writes && InstallKillFlagReader(se.get()));
  InitResult init = NegotiateInit(se.get(), opts.passthrough, uring != nullptr, writes && flags_seen);
  int rc = 1;
  if (!init.error.empty()) {
    spdlog::error("{}: {}", real, init.error);
  } else {
    if (init.passthrough) {
      passthrough = std::make_unique<PassthroughFiles>(fuse_session_fd(se.get()));
      image_session.passthrough = union_session.passthrough = passthrough.get();
    }
    union_session.kills_suidgid = init.killpriv_v2;
    union_session.se = se.get();
    if (init.uring) {
      uring->Start(init.max_payload);
    } else {
      uring.reset();
    }
    rc = ServeRequests(se.get(), opts.debug);
  }
  if (store_ptr) store_ptr->RemoveMountLease(real);
  fuse_session_unmount(se.get());
  uring.reset();  // the mount is gone: its rings are answered ENOTCONN
  fuse_remove_signal_handlers(se.get());
  return rc == 0 ? 0 : 1;
}

}  // namespace

layerstore::Status CheckNotVolatile(const std::string& container_dir, const std::string& name) {
  const std::string mark = container_dir + "/" + kVolatileMark;
  if (::access(mark.c_str(), F_OK) == 0) {
    return layerstore::Status::FailedPrecondition(
        "container " + name + " was mounted volatile (strata run --rm: its layer is written without syncs) and " +
        "never removed; after a crash its files may be incomplete. Remove it (strata rm " + name + "), or, if the " +
        "machine has not crashed since, delete " + mark);
  }
  if (errno != ENOENT) return layerstore::Status::FromErrno(mark, errno);
  return {};
}

int RunMount(const MountOptions& options, pid_t* daemon) {
  MountOptions opts = options;
  if (opts.debug) opts.foreground = true;
  if (opts.foreground) {
    ReadyPipe ready(-1);
    return Serve(opts, ready, false);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::cerr << "stratafs: pipe: " << strerror(errno) << "\n";
    return 1;
  }
  std::fflush(nullptr);  // nothing the caller buffered may be written twice
  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "stratafs: fork: " << strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    ::close(fds[0]);
    // The daemon keeps nothing of its parent's open files but stdio (redirected once mounted)
    // and the ready pipe: `strata run` forks it with its own store open, and LMDB must not see
    // a second handle of an environment in one process; nor may the daemon hold its parent's
    // pipes open for as long as the mount lives.
    if (fds[1] > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(fds[1] - 1), 0u);
    ::syscall(SYS_close_range, static_cast<unsigned>(fds[1] + 1), ~0u, 0u);
    ::prctl(PR_SET_NAME, "stratafs", 0, 0, 0);
    ::setsid();
    ReadyPipe ready(fds[1]);
    int rc = Serve(opts, ready, true);
    std::_Exit(rc);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while (msg.find('\n') == std::string::npos &&
         ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))) {
    if (n > 0) msg.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (daemon) *daemon = pid;
  msg = msg.substr(0, msg.find('\n'));
  if (msg == "OK") return 0;
  std::cerr << "stratafs: " << (msg.rfind("ERR ", 0) == 0 ? msg.substr(4) : "the daemon died before mounting") << "\n";
  return 1;
}

}  // namespace layerfs
