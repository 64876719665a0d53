// run, start, exec, stop and bundle: a container's process, on its mounted union.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "layerstore/unique_fd.h"
#include "mounts.h"
#include "output_file.h"
#include "runner.h"
#include "runtime/oci.h"

namespace cli {
namespace {

using layerstore::Status;

struct RunOnlyFlags {
  bool rm = false;
  bool detach = false;
};

// A strata error before the process ran: Docker's 125.
void FailRuntime(Context& ctx, const Status& s) {
  ctx.Fail(s);
  ctx.exit_code = kExitRuntime;
}

// The detached process's output: appended to container.log in the container's directory.
layerstore::Result<layerstore::UniqueFd> OpenLog(layerstore::Store& store, const std::string& id) {
  std::string path = store.ContainerDir(id) + "/container.log";
  layerstore::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  return fd;
}

// Opens the store (in this process: a detached child opens its own), resolves or creates the
// container, and runs it to its end.
int RunInThisProcess(Context& ctx, const std::function<layerstore::Result<layerstore::ContainerRecord>(layerstore::Store&)>& container,
                     bool remove, bool detached, const std::function<void(int)>& on_started) {
  auto store = ctx.Store();
  if (!store.ok()) {
    std::cerr << "Error: " << store.status().message() << "\n";
    on_started(kExitRuntime);
    return kExitRuntime;
  }
  auto c = container(**store);
  if (!c.ok()) {
    std::cerr << "Error: " << c.status().message() << "\n";
    on_started(kExitRuntime);
    return kExitRuntime;
  }
  layerstore::UniqueFd log;
  if (detached) {
    auto opened = OpenLog(**store, c->id);
    if (!opened.ok()) {
      std::cerr << "Error: " << opened.status().message() << "\n";
      on_started(kExitRuntime);
      return kExitRuntime;
    }
    log = std::move(*opened);
  }
  return RunToEnd(ctx, **store, *c, remove, log.get(), on_started);
}

void RunRun(const RunFlags& flags, const RunOnlyFlags& only, const std::vector<std::string>& command, Context& ctx) {
  if (Status s = CheckNoUnknownFlag(ctx, flags.image, command); !s.ok()) return FailRuntime(ctx, s);
  auto config = ConfigFromFlags(flags, command);
  if (!config.ok()) return FailRuntime(ctx, config.status());
  std::string created_id;
  auto create = [&](layerstore::Store& store) -> layerstore::Result<layerstore::ContainerRecord> {
    // A container removed after its run need not survive a crash (its layer is volatile too).
    auto c = store.CreateContainer(flags.name, flags.image, config->ToJson().dump(),
                                   only.rm ? layerstore::ContainerDurability::kRemovedAfterRun
                                           : layerstore::ContainerDurability::kSynced);
    if (c.ok()) created_id = c->id;
    return c;
  };
  if (only.detach) {
    int code = Detach([&](const std::function<void(int)>& on_started) {
      return RunInThisProcess(ctx, create, only.rm, true, [&](int started) {
        // Docker prints the new container's ID once it runs.
        if (started == 0) std::cout << created_id << "\n" << std::flush;
        on_started(started);
      });
    });
    ctx.exit_code = code;
    return;
  }
  ctx.exit_code = RunInThisProcess(ctx, create, only.rm, false, [](int) {});
}

struct StartFlags {
  bool attach = false;
  std::vector<std::string> containers;
};

void RunStart(const StartFlags& flags, Context& ctx) {
  if (flags.attach && flags.containers.size() > 1) {
    return FailRuntime(ctx, Status::InvalidArgument("you cannot start and attach multiple containers at once"));
  }
  for (const std::string& name : flags.containers) {
    auto resolve = [&](layerstore::Store& store) { return store.ResolveContainer(name); };
    if (flags.attach) {
      ctx.exit_code = RunInThisProcess(ctx, resolve, false, false, [](int) {});
      return;
    }
    int code = Detach([&](const std::function<void(int)>& on_started) {
      return RunInThisProcess(ctx, resolve, false, true, [&](int started) {
        if (started == 0) std::cout << name << "\n" << std::flush;
        on_started(started);
      });
    });
    if (code != 0) ctx.exit_code = code;
  }
}

struct ExecFlags {
  bool detach = false;
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  std::string user;
  std::string workdir;
  std::string container;
};

void RunExec(const ExecFlags& flags, const std::vector<std::string>& command, Context& ctx) {
  if (Status s = CheckNoUnknownFlag(ctx, flags.container, command); !s.ok()) return FailRuntime(ctx, s);
  if (command.empty()) {
    ctx.Fail(Status::InvalidArgument("\"strata exec\" requires at least 2 arguments: CONTAINER COMMAND [ARG...]"));
    ctx.exit_code = kExitUsage;
    return;
  }
  auto store = ctx.Store();
  if (!store.ok()) return FailRuntime(ctx, store.status());
  auto c = (*store)->ResolveContainer(flags.container);
  if (!c.ok()) return FailRuntime(ctx, c.status());
  auto state = ReadRunState((*store)->ContainerDir(c->id));
  if (!state.ok()) return FailRuntime(ctx, state.status());
  if (!state->Alive()) return FailRuntime(ctx, Status::FailedPrecondition("container " + c->name + " is not running"));
  layerstore::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, state->pid, 0)));
  if (!pidfd || layerstore::ProcessStartTime(state->pid) != state->pid_start_time)
    return FailRuntime(ctx, Status::FailedPrecondition("container " + c->name + " is not running"));

  ContainerConfig config = ContainerConfig::FromJson(c->config);
  auto image_text = (*store)->ReadBlob(c->image_id);
  if (!image_text.ok()) return FailRuntime(ctx, image_text.status());
  runtime::ImageDefaults image = runtime::ImageDefaults::FromImageConfig(nlohmann::json::parse(*image_text, nullptr, false));
  // The container's own environment, user and directory, then this exec's; never the entrypoint.
  runtime::RunOverrides run = config.run;
  if (run.hostname.empty()) run.hostname = c->id.substr(0, 12);
  run.entrypoint = "";
  run.cmd = command;
  run.tty = flags.tty;
  for (const auto& file : flags.env_files) {
    auto entries = runtime::ReadEnvFile(file);
    if (!entries.ok()) return FailRuntime(ctx, entries.status());
    run.env = runtime::MergeEnv(run.env, *entries);
  }
  run.env = runtime::MergeEnv(run.env, runtime::ExpandEnvArgs(flags.env));
  if (!flags.user.empty()) run.user = flags.user;
  if (!flags.workdir.empty()) run.working_dir = flags.workdir;
  std::string root = "/proc/" + std::to_string(state->pid) + "/root";
  auto process = runtime::ResolveProcess(image, run, runtime::ReadThroughRootfs(root));
  if (!process.ok()) return FailRuntime(ctx, process.status());

  layerstore::UniqueFd log;
  if (flags.detach) {
    auto opened = OpenLog(**store, c->id);
    if (!opened.ok()) return FailRuntime(ctx, opened.status());
    log = std::move(*opened);
  }
  runtime::StartFailure failure;
  runtime::ExecIo io{flags.interactive, log.get(), !flags.detach};
  auto child = runtime::ExecInContainer(pidfd.get(), state->pid, *process, io, &failure);
  if (!child.ok()) {
    ctx.Fail(failure.status);
    ctx.exit_code = failure.exit_code;
    return;
  }
  // Detached, it runs on as a child of the container's PID namespace's init once we are gone.
  if (flags.detach) return;
  ctx.exit_code = runtime::Supervise(*child, flags.interactive);
}

struct StopFlags {
  int timeout = 10;
  std::vector<std::string> containers;
};

void RunStop(const StopFlags& flags, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  for (const std::string& name : flags.containers) {
    auto c = (*store)->ResolveContainer(name);
    Status s = c.ok() ? StopContainer(**store, *c, flags.timeout) : c.status();
    if (!s.ok()) {
      std::cerr << "Error: " << s.message() << "\n";
      if (ctx.status.ok()) ctx.Fail(Status::FailedPrecondition(""));
      continue;
    }
    std::cout << name << "\n";
  }
}

struct BundleFlags {
  std::string container;
  std::string dir;
};

// An OCI bundle over the container's mounted union: DIR/config.json, and DIR/rootfs mounted
// (unless the container is mounted already, whose mount the bundle then names).
void RunBundle(const BundleFlags& flags, Context& ctx) {
  auto store = ctx.Store();
  if (!store.ok()) return ctx.Fail(store.status());
  auto c = (*store)->ResolveContainer(flags.container);
  if (!c.ok()) return ctx.Fail(c.status());
  std::error_code ec;
  std::filesystem::create_directories(flags.dir, ec);
  if (ec) return ctx.Fail(Status::FromErrno("creating " + flags.dir, ec.value()));
  std::string dir = std::filesystem::absolute(flags.dir, ec).lexically_normal().string();
  if (!dir.empty() && dir.size() > 1 && dir.back() == '/') dir.pop_back();

  auto live = LiveContainerMount(**store, c->id);
  if (!live.ok()) return ctx.Fail(live.status());
  std::string rootfs;
  bool mounted_here = false;
  if (*live) {
    rootfs = (*live)->mountpoint;
  } else {
    rootfs = dir + "/rootfs";
    if (::mkdir(rootfs.c_str(), 0755) != 0 && errno != EEXIST) return ctx.Fail(Status::FromErrno("creating " + rootfs, errno));
    if (Status m = MountContainer(ctx.StoreRoot(), c->id, c->name, rootfs, LayerMode::kWritable); !m.ok()) return ctx.Fail(m);
    mounted_here = true;
  }
  auto spec = BuildSpec(**store, *c, ContainerConfig::FromJson(c->config), rootfs);
  Status s = spec.status();
  if (spec.ok()) {
    std::string text = runtime::OciConfig(*spec).dump(2) + "\n";
    s = WriteOutput(dir + "/config.json", [&](int fd) {
      if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return Status::FromErrno("writing config.json", errno ? errno : EIO);
      return Status();
    });
  }
  if (!s.ok()) {
    if (mounted_here) {
      std::string real;
      if (Unmount(rootfs, true, &real).ok()) (void)(*store)->RemoveMountLease(real);
    }
    return ctx.Fail(s);
  }
  std::cout << dir << "\n";
}

}  // namespace

void RegisterRun(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<RunFlags>();
  auto only = std::make_shared<RunOnlyFlags>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("run", "Create and run a new container from an image");
    cmd->add_flag("--rm", only->rm, "Automatically remove the container when it exits");
    cmd->add_flag("-d,--detach", only->detach, "Run container in background and print container ID");
    AddRunFlags(cmd, *flags);
    cmd->callback([flags, only, cmd, &ctx] { RunRun(*flags, *only, cmd->remaining(), ctx); });
  }

  auto start = std::make_shared<StartFlags>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("start", "Start one or more stopped containers");
    cmd->add_flag("-a,--attach", start->attach, "Attach STDOUT/STDERR and forward signals");
    cmd->add_option("containers", start->containers, "Containers to start")->required();
    cmd->callback([start, &ctx] { RunStart(*start, ctx); });
  }

  auto exec = std::make_shared<ExecFlags>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("exec", "Execute a command in a running container");
    cmd->add_flag("-d,--detach", exec->detach, "Detached mode: run command in the background");
    cmd->add_flag("-i,--interactive", exec->interactive, "Keep STDIN open");
    cmd->add_flag("-t,--tty", exec->tty, "Allocate a pseudo-TTY");
    cmd->add_option("-e,--env", exec->env, "Set environment variables")->allow_extra_args(false);
    cmd->add_option("--env-file", exec->env_files, "Read in a file of environment variables")->allow_extra_args(false);
    cmd->add_option("-u,--user", exec->user, "Username or UID (format: <name|uid>[:<group|gid>])");
    cmd->add_option("-w,--workdir", exec->workdir, "Working directory inside the container");
    cmd->add_option("container", exec->container, "Container; then COMMAND [ARG...]")->required();
    cmd->prefix_command();
    cmd->callback([exec, cmd, &ctx] { RunExec(*exec, cmd->remaining(), ctx); });
  }

  auto stop = std::make_shared<StopFlags>();
  for (CLI::App* parent : {&app, app.get_subcommand("container")}) {
    CLI::App* cmd = parent->add_subcommand("stop", "Stop one or more running containers");
    cmd->add_option("-t,--time", stop->timeout, "Seconds to wait before killing the container")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("containers", stop->containers, "Containers to stop")->required();
    cmd->callback([stop, &ctx] { RunStop(*stop, ctx); });
  }

  auto bundle = std::make_shared<BundleFlags>();
  CLI::App* cmd = app.add_subcommand("bundle", "Write an OCI runtime bundle of a container, its rootfs mounted");
  cmd->add_option("container", bundle->container, "Container (name or ID)")->required();
  cmd->add_option("dir", bundle->dir, "Bundle directory: config.json, and rootfs/ mounted")->required();
  cmd->callback([bundle, &ctx] { RunBundle(*bundle, ctx); });
}

}  // namespace cli
