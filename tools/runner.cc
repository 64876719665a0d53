#include "runner.h"

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "layerfs/mount.h"
#include "layerstore/io.h"
#include "layerstore/rootfs.h"
#include "layerstore/unique_fd.h"
#include "mounts.h"
#include "runtime/process.h"

namespace cli {

using layerstore::Result;
using layerstore::Status;
using layerstore::UniqueFd;

namespace {

std::string ReadHostFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  return text.str();
}

// How long the end of a run waits for the container's daemon to let go after the unmount; a
// mount detached while busy keeps its daemon until the last user leaves.
constexpr auto kDaemonExitWait = std::chrono::seconds(10);

// Removes a container whose process has ended, retrying until `deadline` while its stratafs
// daemon still holds the container's lock (it does until it exits, a moment after the unmount).
Status RemoveWhenFree(layerstore::Store& store, const layerstore::ContainerRecord& c,
                      std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    Status s = store.RemoveContainer(c.id);
    if (s.code() != layerstore::Code::kUnavailable || std::chrono::steady_clock::now() >= deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Unmounts a run's container (if the run mounted it), waits for its daemon to let go of the
// container (so that the next start or mount of it finds it free) and, with `remove`, removes
// the container; one deadline covers the waits.
Status ReleaseAndRemove(std::optional<RunMount>& mount, layerstore::Store& store, const layerstore::ContainerRecord& c,
                        bool remove) {
  auto deadline = std::chrono::steady_clock::now() + kDaemonExitWait;
  if (mount) mount->Release(store, deadline);
  return remove ? RemoveWhenFree(store, c, deadline) : Status();
}

bool DirectoryIsEmpty(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) return false;
  while (const dirent* e = ::readdir(dir.get())) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) return false;
  }
  return true;
}

// The image's own file at `path`, from the store. Any case it does not settle plainly (a
// non-regular file, a symlink loop) is an error, for the caller to read through the mount.
Result<std::optional<std::string>> ReadImageFile(layerstore::Store& store, const layerstore::RootfsIndex& index,
                                                 const std::string& path) {
  LS_ASSIGN_OR_RETURN(std::optional<uint32_t> node, layerstore::ResolvePath(index, path));
  if (!node) return std::optional<std::string>();
  LS_ASSIGN_OR_RETURN(layerstore::RootfsNode n, index.Node(*node));
  if (!S_ISREG(n.mode) || n.size > runtime::kMaxRootfsFile) return Status::FailedPrecondition(path + ": not read here");
  LS_ASSIGN_OR_RETURN(layerstore::Digest object, index.Object(*node));
  LS_ASSIGN_OR_RETURN(UniqueFd fd, store.OpenObject(object));
  std::string text(n.size, '\0');
  LS_ASSIGN_OR_RETURN(size_t got, layerstore::ReadFull(fd.get(), text.data(), text.size(), path + " of the image"));
  if (got != text.size()) return Status::Corruption(path + " of the image is shorter than recorded");
  return std::optional<std::string>(std::move(text));
}

// How a run reads /etc/passwd and /etc/group. While the container's layer is empty (its first
// run) its root shows exactly the image, whose files the store reads without the dozen FUSE
// round trips reading them through the mount costs; otherwise, or where the store cannot say
// plainly, through the mount.
runtime::RootfsFileReader RootfsFiles(layerstore::Store& store, const layerstore::ContainerRecord& c,
                                      const std::string& rootfs) {
  runtime::RootfsFileReader through_mount = runtime::ReadThroughRootfs(rootfs);
  if (!DirectoryIsEmpty(store.ContainerDir(c.id) + "/upper")) return through_mount;
  auto image = store.ResolveImage(c.image_id.str());
  if (!image.ok()) return through_mount;
  auto index = store.OpenRootfs(image->record.layers, false);
  if (!index.ok()) return through_mount;
  std::shared_ptr<layerstore::RootfsIndex> shared(std::move(*index));
  return [&store, shared, through_mount](const std::string& path) -> Result<std::optional<std::string>> {
    auto text = ReadImageFile(store, *shared, path);
    return text.ok() ? text : through_mount(path);
  };
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

void AddRunFlags(CLI::App* cmd, RunFlags& f) {
  // -h is Docker's --hostname here, so help is --help alone.
  cmd->set_help_flag("--help", "Print this help message and exit");
  cmd->add_option("--name", f.name, "Assign a name to the container");
  cmd->add_option("-e,--env", f.env, "Set environment variables (K=V, or K to pass strata's own)")->allow_extra_args(false);
  cmd->add_option("--env-file", f.env_files, "Read in a file of environment variables")->allow_extra_args(false);
  cmd->add_option("-w,--workdir", f.workdir, "Working directory inside the container");
  cmd->add_option("-u,--user", f.user, "Username or UID (format: <name|uid>[:<group|gid>])");
  cmd->add_option("-v,--volume", f.volumes, "Bind mount a volume (HOST:CONTAINER[:ro])")->allow_extra_args(false);
  cmd->add_option("--entrypoint", "Overwrite the default ENTRYPOINT of the image")
      ->each([&f](const std::string& v) { f.entrypoint = v; });
  cmd->add_option("-h,--hostname", f.hostname, "Container host name");
  cmd->add_option("--network,--net", f.network, "Connect a container to a network: host (default) or none");
  cmd->add_flag("-i,--interactive", f.interactive, "Keep STDIN open");
  cmd->add_flag("-t,--tty", f.tty, "Allocate a pseudo-TTY");
  cmd->add_flag("--read-only", f.read_only, "Mount the container's root filesystem as read only");
  cmd->add_option("image", f.image, "Image; then COMMAND [ARG...]")->required();
  // Everything after IMAGE is the command and its arguments, options included.
  cmd->prefix_command();
}

Status CheckNoUnknownFlag(const Context& ctx, const std::string& positional, const std::vector<std::string>& command) {
  if (command.empty() || command[0].size() < 2 || command[0][0] != '-') return {};
  for (size_t i = 1; i < ctx.argv.size(); ++i) {
    if (ctx.argv[i] == positional) return {};  // the word follows IMAGE: it is the command
    if (ctx.argv[i] == command[0]) break;
  }
  return Status::InvalidArgument("unknown flag: " + command[0] + "\nRun with --help for more information.");
}

Result<ContainerConfig> ConfigFromFlags(const RunFlags& f, const std::vector<std::string>& command) {
  ContainerConfig c;
  for (const auto& file : f.env_files) {
    LS_ASSIGN_OR_RETURN(auto entries, runtime::ReadEnvFile(file));
    c.run.env = runtime::MergeEnv(c.run.env, entries);
  }
  c.run.env = runtime::MergeEnv(c.run.env, runtime::ExpandEnvArgs(f.env));
  c.run.entrypoint = f.entrypoint;
  c.run.cmd = command;
  if (!f.workdir.empty() && f.workdir[0] != '/') {
    return Status::InvalidArgument("the working directory '" + f.workdir + "' is invalid: it needs to be an absolute path");
  }
  c.run.working_dir = f.workdir;
  c.run.user = f.user;
  c.run.hostname = f.hostname;
  c.run.tty = f.tty;
  c.open_stdin = f.interactive;
  LS_ASSIGN_OR_RETURN(c.network, ParseNetwork(f.network));
  for (const auto& v : f.volumes) {
    LS_ASSIGN_OR_RETURN(runtime::BindMount m, ParseVolume(v));
    c.binds.push_back(std::move(m));
  }
  c.read_only_rootfs = f.read_only;
  return c;
}

Result<RunMount> RunMount::Acquire(Context& ctx, layerstore::Store& store, const layerstore::ContainerRecord& c,
                                   LayerMode mode) {
  RunMount m;
  LS_ASSIGN_OR_RETURN(auto live, LiveContainerMount(store, c.id));
  m.dir_ = store.ContainerDir(c.id) + "/merged";
  if (live) {
    // A volatile mount left by a killed `run --rm` serves no other run: its layer stays suspect.
    if (mode != LayerMode::kVolatile) LS_RETURN_IF_ERROR(layerfs::CheckNotVolatile(store.ContainerDir(c.id), c.name));
    // Ours when an earlier run left it (its supervisor was killed): then this run unmounts it.
    m.owned_ = live->mountpoint == m.dir_;
    m.dir_ = live->mountpoint;
    // Not our child, but its exit is awaited all the same (Release).
    if (m.owned_) m.daemon_ = DaemonOf(store, m.dir_);
    return m;
  }
  if (::mkdir(m.dir_.c_str(), 0700) != 0 && errno != EEXIST) return Status::FromErrno("creating " + m.dir_, errno);
  pid_t daemon = -1;
  LS_RETURN_IF_ERROR(MountContainer(ctx.StoreRoot(), c.id, c.name, m.dir_, mode, &daemon));
  m.owned_ = true;
  // Our child, not yet reaped: the PID cannot have been reused.
  m.daemon_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, daemon, 0)));
  return m;
}

void RunMount::Release(layerstore::Store& store, std::chrono::steady_clock::time_point deadline) {
  if (!owned_) return;
  owned_ = false;
  std::string real;
  Status s = Unmount(dir_, true, &real);
  if (!s.ok()) {
    std::cerr << "Error: " << s.message() << " (the container's mount stays; strata umount it)\n";
    return;
  }
  (void)store.RemoveMountLease(real);
  AwaitExit(daemon_, std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  daemon_.Reset();
}

Result<runtime::ContainerSpec> BuildSpec(layerstore::Store& store, const layerstore::ContainerRecord& c,
                                         const ContainerConfig& config, const std::string& rootfs) {
  LS_ASSIGN_OR_RETURN(std::string image_text, store.ReadBlob(c.image_id));
  nlohmann::json image = nlohmann::json::parse(image_text, nullptr, false);
  runtime::RunOverrides run = config.run;
  // Docker's default hostname: the short container ID.
  if (run.hostname.empty()) run.hostname = c.id.substr(0, 12);

  runtime::ContainerSpec spec;
  spec.rootfs = rootfs;
  LS_ASSIGN_OR_RETURN(spec.process, runtime::ResolveProcess(runtime::ImageDefaults::FromImageConfig(image), run,
                                                            RootfsFiles(store, c, rootfs)));
  spec.hostname = run.hostname;
  spec.network = config.network;
  spec.read_only_rootfs = config.read_only_rootfs;
  spec.keep_stdin = config.open_stdin;

  // The host's name service files, as Docker gives them; the host's own names come along with
  // the host network, loopback only without it.
  std::string dir = store.ContainerDir(c.id);
  std::string hosts = config.network == runtime::Network::kHost
                          ? ReadHostFile("/etc/hosts")
                          : "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  if (!hosts.empty() && hosts.back() != '\n') hosts += '\n';
  hosts += "127.0.1.1\t" + run.hostname + "\n";
  LS_RETURN_IF_ERROR(ReplaceFile(dir + "/hosts", hosts));
  LS_RETURN_IF_ERROR(ReplaceFile(dir + "/hostname", run.hostname + "\n"));
  LS_RETURN_IF_ERROR(ReplaceFile(dir + "/resolv.conf", ReadHostFile("/etc/resolv.conf")));
  spec.mounts = {{dir + "/hosts", "/etc/hosts", false},
                 {dir + "/hostname", "/etc/hostname", false},
                 {dir + "/resolv.conf", "/etc/resolv.conf", false}};
  for (const auto& b : config.binds) {
    // As docker run -v does, a missing host directory is created.
    std::error_code ec;
    if (!std::filesystem::exists(b.source, ec)) {
      std::filesystem::create_directories(b.source, ec);
      if (ec) return Status::FromErrno("creating the volume source " + b.source, ec.value());
    }
    spec.mounts.push_back(b);
  }
  // Made here rather than by the container's init, which cannot say which it made: those are
  // recorded for diff and commit to leave out, as Docker's init layer keeps them out.
  LS_ASSIGN_OR_RETURN(std::vector<std::string> made, runtime::MakeMountPoints(spec));
  // A -v target is the container's own, as runc makes it in the container layer under Docker:
  // docker diff shows it, and so does strata diff. Only strata's own mount points are hidden.
  std::erase_if(made, [&](const std::string& path) {
    return std::any_of(config.binds.begin(), config.binds.end(), [&](const runtime::BindMount& b) {
      return b.destination == path || b.destination.rfind(path + "/", 0) == 0;
    });
  });
  LS_RETURN_IF_ERROR(AddInitPaths(dir, made));
  return spec;
}

int RunToEnd(Context& ctx, layerstore::Store& store, const layerstore::ContainerRecord& c, bool remove,
             int output_fd, const std::function<void(int)>& on_started) {
  const std::string dir = store.ContainerDir(c.id);
  std::optional<RunMount> mount;
  auto fail = [&](int code, const Status& s) {
    if (!s.message().empty()) std::cerr << "Error: " << s.message() << "\n";
    (void)ReleaseAndRemove(mount, store, c, remove);
    on_started(code);
    return code;
  };
  auto previous = ReadRunState(dir);
  if (!previous.ok()) return fail(kExitRuntime, previous.status());
  if (previous->Alive()) return fail(kExitRuntime, Status::FailedPrecondition("container " + c.name + " is already running"));

  // A container removed when its process ends is mounted volatile, as Podman mounts `run --rm`
  // containers: whatever its process syncs, the layer is thrown away right after.
  auto acquired = RunMount::Acquire(ctx, store, c, remove ? LayerMode::kVolatile : LayerMode::kWritable);
  if (!acquired.ok()) return fail(kExitRuntime, acquired.status());
  mount = std::move(*acquired);
  auto spec = BuildSpec(store, c, ContainerConfig::FromJson(c.config), mount->dir());
  if (!spec.ok()) return fail(kExitRuntime, spec.status());
  spec->output_fd = output_fd;

  runtime::StartFailure failure;
  auto child = runtime::StartContainer(*spec, &failure);
  if (!child.ok()) return fail(failure.exit_code, failure.status);

  RunState state;
  state.pid = child->pid();
  state.pid_start_time = layerstore::ProcessStartTime(child->pid());
  state.monitor_pid = ::getpid();
  state.monitor_start_time = layerstore::ProcessStartTime(::getpid());
  state.running = true;
  state.started_at = static_cast<int64_t>(::time(nullptr));
  state.mountpoint = mount->dir();
  Status written = WriteRunState(dir, state);
  if (!written.ok()) std::cerr << "Error: " << written.message() << "\n";
  on_started(0);

  int code = runtime::Supervise(*child, spec->keep_stdin);

  state.running = false;
  state.exit_code = code;
  state.finished_at = static_cast<int64_t>(::time(nullptr));
  // Recorded before the unmount, which waits for the daemon to exit: meanwhile ps shows the
  // container mounted, then exited, never as a run that did not happen.
  if (!remove) {
    written = WriteRunState(dir, state);
    if (!written.ok()) std::cerr << "Error: " << written.message() << "\n";
  }
  Status removed = ReleaseAndRemove(mount, store, c, remove);
  if (!removed.ok()) std::cerr << "Error: removing container " << c.name << ": " << removed.message() << "\n";
  return code;
}

int Detach(const std::function<int(const std::function<void(int)>& on_started)>& body) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    std::perror("Error: pipe");
    return kExitRuntime;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("Error: fork");
    return kExitRuntime;
  }
  if (pid == 0) {
    ::close(p[0]);
    ::setsid();
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    int report = p[1];
    int code = body([&](int started) {
      if (report < 0) return;
      ssize_t ignored = ::write(report, &started, sizeof started);
      (void)ignored;
      ::close(report);
      report = -1;
      // The caller may be reading our stdout to its end ($(strata run -d ...)): let go of it.
      std::fflush(nullptr);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
    });
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(p[1]);
  int started = kExitRuntime;
  ssize_t n;
  while ((n = ::read(p[0], &started, sizeof started)) < 0 && errno == EINTR) {
  }
  ::close(p[0]);
  if (n != sizeof started) {
    // It died before it could say: reap it, its stderr already told why.
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return kExitRuntime;
  }
  return started;
}

Status StopContainer(layerstore::Store& store, const layerstore::ContainerRecord& c, int timeout) {
  const std::string dir = store.ContainerDir(c.id);
  LS_ASSIGN_OR_RETURN(RunState state, ReadRunState(dir));
  if (!state.Alive()) return {};
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, state.pid, 0)));
  // Checked after the pidfd is held, so the signal cannot reach a process that reused the PID.
  if (pidfd && layerstore::ProcessStartTime(state.pid) == state.pid_start_time) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0);
    if (!WaitReadable(pidfd.get(), timeout * 1000)) {
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      if (!WaitReadable(pidfd.get(), 10000)) {
        return Status::Unavailable("container " + c.name + " did not stop after SIGKILL");
      }
    }
  }
  // Its supervisor records the exit and unmounts; wait for that so the caller can go on (rm).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (state.MonitorAlive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

}  // namespace cli
