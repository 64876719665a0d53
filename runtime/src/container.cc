#include "runtime/container.h"

#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace runtime {

using layerstore::Result;
using layerstore::Status;
using layerstore::UniqueFd;

namespace {

constexpr int kSetupFailed = 125;
constexpr int kNotExecutable = 126;
constexpr int kNotFound = 127;

// What a child that failed before exec tells its parent, over a close-on-exec pipe: nothing at
// all arrives when exec succeeds.
struct FailureReport {
  int exit_code;
  int err;
  char message[1000];
};

// Reports a failure to the parent and ends the child. Only what a forked child may call.
[[noreturn]] void Die(int report_fd, int exit_code, int err, const char* format, ...) {
  FailureReport r{};
  r.exit_code = exit_code;
  r.err = err;
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(r.message, sizeof r.message, format, ap);
  va_end(ap);
  if (err != 0) {
    size_t used = std::strlen(r.message);
    std::snprintf(r.message + used, sizeof r.message - used, ": %s", std::strerror(err));
  }
  ssize_t ignored = ::write(report_fd, &r, sizeof r);
  (void)ignored;
  ::_exit(exit_code);
}

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Where `fd` points, as this process's mount namespace names it; "" when unknown.
std::string FdTarget(int fd) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(FdPath(fd).c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// mkdir -p of `path` inside the rootfs `root_fd`, every step confined to it; returns an O_PATH fd.
// With `created`, each directory it makes is added to it, as its path on this side of the
// rootfs (resolved: a symlink of the image on the way is followed, as the mkdir followed it).
// With `make_last_first`, the last step is made before it is looked up: a mount point the image
// lacks then costs a FUSE root one LOOKUP and a MKDIR, where a failed lookup first costs two
// LOOKUPs (the kernel asks the daemon again before any create of a name it knows only as
// missing); one it has costs the same single LOOKUP either way.
Result<UniqueFd> CreateDirIn(int root_fd, const std::string& path, std::vector<std::string>* created,
                             bool make_last_first = false) {
  std::string prefix;
  UniqueFd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!dir) return Status::FromErrno("duplicating the rootfs fd", errno);
  auto make = [&](const std::string& component) -> Status {
    if (::mkdirat(dir.get(), component.c_str(), 0755) == 0) {
      if (created) created->push_back(FdTarget(dir.get()) + "/" + component);
    } else if (errno != EEXIST) {
      return Status::FromErrno("creating " + prefix + " in the container", errno);
    }
    return {};
  };
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string component = path.substr(pos, next - pos);
    pos = next + 1;
    if (component.empty() || component == ".") continue;
    prefix += "/" + component;
    const bool first_make = make_last_first && pos >= path.size();
    if (first_make) LS_RETURN_IF_ERROR(make(component));
    auto fd = OpenInRoot(root_fd, prefix, O_PATH | O_DIRECTORY);
    if (!first_make && !fd.ok() && fd.status().IsNotFound()) {
      LS_RETURN_IF_ERROR(make(component));
      fd = OpenInRoot(root_fd, prefix, O_PATH | O_DIRECTORY);
    }
    if (!fd.ok()) return fd.status().WithContext(prefix + " in the container");
    dir.Reset(*fd);
  }
  return dir;
}

// The mount point for a bind of a file: the file, created empty when missing (and recorded in
// `created` as CreateDirIn does). With `make_first`, created before it is looked up, as
// CreateDirIn's make_last_first.
Result<UniqueFd> CreateFileIn(int root_fd, const std::string& path, std::vector<std::string>* created,
                              bool make_first = false) {
  if (!make_first) {
    auto fd = OpenInRoot(root_fd, path, O_PATH);
    if (fd.ok()) return UniqueFd(*fd);
  }
  size_t slash = path.rfind('/');
  LS_ASSIGN_OR_RETURN(UniqueFd parent, CreateDirIn(root_fd, path.substr(0, slash), created));
  std::string name = path.substr(slash + 1);
  UniqueFd made(::openat(parent.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (made) {
    if (created) created->push_back(FdTarget(parent.get()) + "/" + name);
  } else if (errno != EEXIST || !make_first) {
    return Status::FromErrno("creating " + path + " in the container", errno);
  }
  auto fd = OpenInRoot(root_fd, path, O_PATH);
  if (!fd.ok()) return fd.status().WithContext(path + " in the container");
  return UniqueFd(*fd);
}

// CreateDirIn and CreateFileIn for the container's init, which reports a failure and ends.
UniqueFd MakeDirIn(int root_fd, const std::string& path, int report_fd) {
  auto fd = CreateDirIn(root_fd, path, nullptr);
  if (!fd.ok()) Die(report_fd, kSetupFailed, 0, "%s", fd.status().message().c_str());
  return std::move(*fd);
}

UniqueFd MakeFileIn(int root_fd, const std::string& path, int report_fd) {
  auto fd = CreateFileIn(root_fd, path, nullptr);
  if (!fd.ok()) Die(report_fd, kSetupFailed, 0, "%s", fd.status().message().c_str());
  return std::move(*fd);
}

void MountAt(int target_fd, const char* what, const char* source, const char* type, unsigned long flags,
             const char* data, int report_fd) {
  if (::mount(source, FdPath(target_fd).c_str(), type, flags, data) != 0)
    Die(report_fd, kSetupFailed, errno, "mounting %s", what);
}

void SetUpDev(int root_fd, int report_fd) {
  UniqueFd target = MakeDirIn(root_fd, "/dev", report_fd);
  MountAt(target.get(), "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", report_fd);
  auto opened = OpenInRoot(root_fd, "/dev", O_DIRECTORY | O_RDONLY);
  if (!opened.ok()) Die(report_fd, kSetupFailed, opened.status().posix_errno(), "opening /dev");
  UniqueFd dev(*opened);
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  for (const Node& n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7}, Node{"random", 1, 8},
                        Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    if (::mknodat(dev.get(), n.name, S_IFCHR | 0666, makedev(n.major, n.minor)) != 0)
      Die(report_fd, kSetupFailed, errno, "creating /dev/%s", n.name);
  }
  if (::mkdirat(dev.get(), "pts", 0755) != 0 || ::mkdirat(dev.get(), "shm", 01777) != 0)
    Die(report_fd, kSetupFailed, errno, "creating /dev/pts and /dev/shm");
  UniqueFd pts(::openat(dev.get(), "pts", O_PATH | O_DIRECTORY | O_CLOEXEC));
  MountAt(pts.get(), "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
          report_fd);
  UniqueFd shm(::openat(dev.get(), "shm", O_PATH | O_DIRECTORY | O_CLOEXEC));
  MountAt(shm.get(), "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
          report_fd);
  struct Link {
    const char* name;
    const char* target;
  };
  for (const Link& l : {Link{"ptmx", "pts/ptmx"}, Link{"fd", "/proc/self/fd"}, Link{"stdin", "/proc/self/fd/0"},
                        Link{"stdout", "/proc/self/fd/1"}, Link{"stderr", "/proc/self/fd/2"}}) {
    if (::symlinkat(l.target, dev.get(), l.name) != 0) Die(report_fd, kSetupFailed, errno, "creating /dev/%s", l.name);
  }
}

void BringUpLoopback(int report_fd) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) Die(report_fd, kSetupFailed, errno, "opening a socket to bring up lo");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) Die(report_fd, kSetupFailed, errno, "reading the flags of lo");
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) Die(report_fd, kSetupFailed, errno, "bringing up lo");
}

// One byte carrying one fd (SCM_RIGHTS), for both ends of the socketpair.
struct FdMessage {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

void SendFd(int sock, int fd) {
  FdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  while (::sendmsg(sock, &m.msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

UniqueFd ReceiveFd(int sock) {
  FdMessage m;
  ssize_t n;
  while ((n = ::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return UniqueFd();
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return UniqueFd();
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return UniqueFd(fd);
}

// This process's window size, when its stdin or stdout is a terminal.
bool TerminalSize(winsize* ws) {
  return ::ioctl(STDIN_FILENO, TIOCGWINSZ, ws) == 0 || ::ioctl(STDOUT_FILENO, TIOCGWINSZ, ws) == 0;
}

// A pty of the container's own devpts as the controlling terminal and stdio; the master goes
// to the parent over `pty_sock`.
void AttachPty(int pty_sock, int report_fd) {
  if (::setsid() < 0) Die(report_fd, kSetupFailed, errno, "starting a session for the terminal");
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master || ::unlockpt(master.get()) != 0) Die(report_fd, kSetupFailed, errno, "opening a pseudo-terminal");
  char name[64];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) Die(report_fd, kSetupFailed, errno, "naming the terminal");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY));
  if (!slave) Die(report_fd, kSetupFailed, errno, "opening %s", name);
  winsize ws{};
  if (TerminalSize(&ws)) ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0) Die(report_fd, kSetupFailed, errno, "making %s the terminal", name);
  SendFd(pty_sock, master.get());
  for (int fd = 0; fd <= 2; ++fd) {
    if (::dup2(slave.get(), fd) < 0) Die(report_fd, kSetupFailed, errno, "attaching the terminal");
  }
}

std::vector<cap_value_t> DefaultCapabilityValues() {
  std::vector<cap_value_t> values;
  for (const std::string& name : DefaultCapabilities()) {
    cap_value_t v;
    if (::cap_from_name(name.c_str(), &v) == 0) values.push_back(v);
  }
  return values;
}

// Everything after the namespaces and the root are in place: the working directory, stdio,
// capabilities, user, environment, and exec. Never returns.
[[noreturn]] void FinishAndExec(const Process& process, const ExecIo& io, int report_fd, int pty_sock) {
  ::umask(022);
  // The working directory is created as root, as Docker does, before the user changes.
  std::string dir;
  for (size_t pos = 1; pos <= process.cwd.size(); ++pos) {
    if (pos == process.cwd.size() || process.cwd[pos] == '/') {
      dir = process.cwd.substr(0, pos);
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        Die(report_fd, kSetupFailed, errno, "creating the working directory %s", dir.c_str());
    }
  }
  if (::chdir(process.cwd.c_str()) != 0)
    Die(report_fd, kSetupFailed, errno, "changing to the working directory %s", process.cwd.c_str());

  if (process.tty) {
    AttachPty(pty_sock, report_fd);
  } else if (!io.keep_stdin) {
    UniqueFd null(::open("/dev/null", O_RDONLY));
    if (!null || ::dup2(null.get(), STDIN_FILENO) < 0) Die(report_fd, kSetupFailed, errno, "opening /dev/null");
  }
  if (io.output_fd >= 0 && (::dup2(io.output_fd, STDOUT_FILENO) < 0 || ::dup2(io.output_fd, STDERR_FILENO) < 0))
    Die(report_fd, kSetupFailed, errno, "redirecting the output");
  if (pty_sock >= 0) ::close(pty_sock);
  // Whatever this process had open (the store's files, the caller's pipes) stays out of the container.
  ::syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);

  std::vector<cap_value_t> keep = DefaultCapabilityValues();
  for (cap_value_t c = 0; c <= CAP_LAST_CAP; ++c) {
    if (std::find(keep.begin(), keep.end(), c) != keep.end()) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      Die(report_fd, kSetupFailed, errno, "dropping capability %d", c);
  }
  cap_t caps = ::cap_init();
  if (!caps || ::cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0 ||
      ::cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0 ||
      ::cap_set_flag(caps, CAP_INHERITABLE, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0 ||
      ::cap_set_proc(caps) != 0) {
    Die(report_fd, kSetupFailed, errno, "setting capabilities");
  }
  ::cap_free(caps);

  const User& u = process.user;
  if (::setgroups(u.additional_gids.size(), u.additional_gids.data()) != 0)
    Die(report_fd, kSetupFailed, errno, "setting supplementary groups");
  if (::setresgid(u.gid, u.gid, u.gid) != 0) Die(report_fd, kSetupFailed, errno, "setting gid %u", u.gid);
  if (::setresuid(u.uid, u.uid, u.uid) != 0) Die(report_fd, kSetupFailed, errno, "setting uid %u", u.uid);
  if (u.uid != 0 && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    Die(report_fd, kSetupFailed, errno, "setting no_new_privs");
  // A container outlives no supervisor (set last: changing credentials clears it).
  if (io.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    Die(report_fd, kSetupFailed, errno, "PR_SET_PDEATHSIG");

  std::vector<char*> argv;
  for (const auto& a : process.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : process.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // execvp searches the PATH of `environ`: the container's.
  environ = envp.data();
  ::execvp(argv[0], argv.data());
  int err = errno;
  const char* cmd = argv[0];
  if (err == ENOENT && !std::strchr(cmd, '/'))
    Die(report_fd, kNotFound, 0, "exec: \"%s\": executable file not found in $PATH", cmd);
  if (err == ENOENT) Die(report_fd, kNotFound, err, "exec: \"%s\"", cmd);
  Die(report_fd, kNotExecutable, err, "exec: \"%s\"", cmd);
}

[[noreturn]] void ContainerInit(const ContainerSpec& spec, int report_fd, int pty_sock) {
  const char* rootfs = spec.rootfs.c_str();
  // Nothing mounted from here on may reach the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    Die(report_fd, kSetupFailed, errno, "making the mounts private");
  if (::mount(rootfs, rootfs, nullptr, MS_BIND | MS_REC, nullptr) != 0)
    Die(report_fd, kSetupFailed, errno, "binding the rootfs %s", rootfs);
  UniqueFd root(::open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) Die(report_fd, kSetupFailed, errno, "opening the rootfs %s", rootfs);

  UniqueFd proc = MakeDirIn(root.get(), "/proc", report_fd);
  MountAt(proc.get(), "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, report_fd);
  SetUpDev(root.get(), report_fd);
  UniqueFd sys = MakeDirIn(root.get(), "/sys", report_fd);
  MountAt(sys.get(), "/sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, report_fd);

  for (const BindMount& m : spec.mounts) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) Die(report_fd, kSetupFailed, errno, "bind source %s", m.source.c_str());
    UniqueFd target = S_ISDIR(st.st_mode) ? MakeDirIn(root.get(), m.destination, report_fd)
                                          : MakeFileIn(root.get(), m.destination, report_fd);
    std::string at = FdPath(target.get());
    if (::mount(m.source.c_str(), at.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      Die(report_fd, kSetupFailed, errno, "binding %s to %s", m.source.c_str(), m.destination.c_str());
    if (m.read_only) {
      // The new mount sits on top of the path now; the fd still names what was under it.
      auto mounted = OpenInRoot(root.get(), m.destination, O_PATH);
      if (!mounted.ok() ||
          ::mount(nullptr, FdPath(*mounted).c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
        Die(report_fd, kSetupFailed, errno, "making %s read-only", m.destination.c_str());
      ::close(*mounted);
    }
  }

  if (spec.network == Network::kNone) BringUpLoopback(report_fd);
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    Die(report_fd, kSetupFailed, errno, "setting the hostname");
  if (spec.read_only_rootfs &&
      ::mount(nullptr, rootfs, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
    Die(report_fd, kSetupFailed, errno, "making the rootfs read-only");

  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the rootfs.
  if (::fchdir(root.get()) != 0) Die(report_fd, kSetupFailed, errno, "entering the rootfs");
  if (::syscall(SYS_pivot_root, ".", ".") != 0) Die(report_fd, kSetupFailed, errno, "pivot_root to %s", rootfs);
  if (::umount2(".", MNT_DETACH) != 0) Die(report_fd, kSetupFailed, errno, "detaching the host's root");
  if (::chdir("/") != 0) Die(report_fd, kSetupFailed, errno, "entering /");
  root.Reset();
  FinishAndExec(spec.process, ExecIo{spec.keep_stdin, spec.output_fd, true}, report_fd, pty_sock);
}

// The end of a start: waits for the child's exec or its failure report.
Result<Child> AwaitExec(pid_t pid, UniqueFd report, UniqueFd pty_sock, StartFailure* failure) {
  FailureReport r{};
  ssize_t n;
  while ((n = ::read(report.get(), &r, sizeof r)) < 0 && errno == EINTR) {
  }
  if (n > 0) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    r.message[sizeof r.message - 1] = 0;
    failure->exit_code = r.exit_code;
    failure->status = r.err == ENOENT ? Status::NotFound(r.message) : Status::FailedPrecondition(r.message);
    return failure->status;
  }
  UniqueFd master;
  if (pty_sock) master = ReceiveFd(pty_sock.get());
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    failure->status = Status::FromErrno("pidfd_open", errno);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return failure->status;
  }
  return Child(pid, std::move(pidfd), std::move(master));
}

struct Channels {
  UniqueFd report_read, report_write, pty_parent, pty_child;
};

Result<Channels> OpenChannels(bool tty) {
  Channels c;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  c.report_read.Reset(p[0]);
  c.report_write.Reset(p[1]);
  if (tty) {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) return Status::FromErrno("socketpair", errno);
    c.pty_parent.Reset(s[0]);
    c.pty_child.Reset(s[1]);
  }
  return c;
}

// Puts this process's terminal in raw mode for as long as it lives, so that keys reach the
// container's terminal unprocessed.
class RawTerminal {
 public:
  RawTerminal() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> kCaps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",      "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",     "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE",           "CAP_SYS_CHROOT",       "CAP_KILL",        "CAP_AUDIT_WRITE"};
  return kCaps;
}

Result<std::vector<std::string>> MakeMountPoints(const ContainerSpec& spec) {
  UniqueFd root(::open(spec.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Status::FromErrno("opening the rootfs " + spec.rootfs, errno);
  std::vector<std::string> made;
  for (const char* dir : {"/proc", "/dev", "/sys"}) LS_RETURN_IF_ERROR(CreateDirIn(root.get(), dir, &made, true).status());
  for (const BindMount& m : spec.mounts) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) return Status::FromErrno("bind source " + m.source, errno);
    auto target = S_ISDIR(st.st_mode) ? CreateDirIn(root.get(), m.destination, &made, true)
                                      : CreateFileIn(root.get(), m.destination, &made, true);
    LS_RETURN_IF_ERROR(target.status());
  }
  // CreateDirIn named them as seen from here: below the rootfs's own path.
  const std::string prefix = FdTarget(root.get());
  std::vector<std::string> paths;
  for (const std::string& path : made) {
    if (prefix.empty() || path.compare(0, prefix.size(), prefix) != 0 || path[prefix.size()] != '/')
      return Status::IOError("created " + path + ", which is not below the rootfs " + prefix);
    paths.push_back(path.substr(prefix.size()));
  }
  return paths;
}

Result<Child> StartContainer(const ContainerSpec& spec, StartFailure* failure) {
  auto channels = OpenChannels(spec.process.tty);
  if (!channels.ok()) {
    failure->status = channels.status();
    return failure->status;
  }
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec.network == Network::kNone) flags |= CLONE_NEWNET;
  std::fflush(nullptr);
  // A raw clone: like fork, the child runs on a copy of this stack, and it is PID 1 of the new
  // PID namespace at once (unshare would need a second fork for that).
  long pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    failure->status = Status::FromErrno("creating the container's namespaces", errno);
    return failure->status;
  }
  if (pid == 0) {
    channels->report_read.Reset();
    channels->pty_parent.Reset();
    ContainerInit(spec, channels->report_write.get(), channels->pty_child.get());
  }
  channels->report_write.Reset();
  channels->pty_child.Reset();
  return AwaitExec(static_cast<pid_t>(pid), std::move(channels->report_read), std::move(channels->pty_parent),
                   failure);
}

Result<Child> ExecInContainer(int init_pidfd, pid_t init_pid, const Process& process, const ExecIo& io,
                              StartFailure* failure) {
  auto channels = OpenChannels(process.tty);
  if (!channels.ok()) {
    failure->status = channels.status();
    return failure->status;
  }
  // Children made from here on are born in the container's PID namespace.
  std::string pid_ns = "/proc/" + std::to_string(init_pid) + "/ns/pid";
  UniqueFd ns(::open(pid_ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns || ::setns(ns.get(), CLONE_NEWPID) != 0) {
    failure->status = Status::FromErrno("entering the container's PID namespace", errno);
    return failure->status;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    failure->status = Status::FromErrno("fork", errno);
    return failure->status;
  }
  if (pid == 0) {
    channels->report_read.Reset();
    channels->pty_parent.Reset();
    int report = channels->report_write.get();
    // Entering the mount namespace also moves root and working directory to its root.
    if (::setns(init_pidfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0)
      Die(report, kSetupFailed, errno, "entering the container's namespaces");
    FinishAndExec(process, io, report, channels->pty_child.get());
  }
  channels->report_write.Reset();
  channels->pty_child.Reset();
  return AwaitExec(pid, std::move(channels->report_read), std::move(channels->pty_parent), failure);
}

int Supervise(Child& child, bool relay_stdin) {
  sigset_t forwarded, saved;
  ::sigemptyset(&forwarded);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) ::sigaddset(&forwarded, sig);
  ::sigprocmask(SIG_BLOCK, &forwarded, &saved);
  UniqueFd signals(::signalfd(-1, &forwarded, SFD_CLOEXEC));

  const int master = child.pty_master();
  std::optional<RawTerminal> raw;
  if (master >= 0) {
    if (relay_stdin && ::isatty(STDIN_FILENO)) raw.emplace();
    winsize ws{};
    if (TerminalSize(&ws)) ::ioctl(master, TIOCSWINSZ, &ws);
  }
  bool stdin_open = master >= 0 && relay_stdin;
  bool master_open = master >= 0;
  char buf[16384];
  siginfo_t info{};
  for (;;) {
    pollfd fds[4] = {{child.pidfd(), POLLIN, 0}, {signals.get(), POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    if (master_open) fds[2].fd = master;
    if (stdin_open) fds[3].fd = STDIN_FILENO;
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(signals.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGWINCH) {
          winsize ws{};
          if (master >= 0 && TerminalSize(&ws)) ::ioctl(master, TIOCSWINSZ, &ws);
        } else {
          ::syscall(SYS_pidfd_send_signal, child.pidfd(), si.ssi_signo, nullptr, 0);
        }
      }
    }
    if (fds[2].revents) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) {
        WriteAll(STDOUT_FILENO, buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        master_open = false;  // EIO: every slave is closed
      }
    }
    if (fds[3].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        WriteAll(master, buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
      }
    }
    if (fds[0].revents & POLLIN) {
      if (::waitid(P_PIDFD, static_cast<id_t>(child.pidfd()), &info, WEXITED) == 0) break;
      if (errno != EINTR) break;
    }
  }
  // What the process wrote just before it exited is still in the pty.
  if (master_open) {
    ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(master, buf, sizeof buf)) > 0) WriteAll(STDOUT_FILENO, buf, static_cast<size_t>(n));
  }
  raw.reset();
  ::sigprocmask(SIG_SETMASK, &saved, nullptr);
  if (info.si_code == CLD_EXITED) return info.si_status;
  if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) return 128 + info.si_status;
  return kSetupFailed;
}

}  // namespace runtime
