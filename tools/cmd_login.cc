#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "registry/client.h"
#include "registry/credentials.h"
#include "registry/endpoint.h"
#include "registry_options.h"

namespace cli {
namespace {

struct LoginOptions {
  std::string server;  // registry; default Docker Hub
  std::string username;
  std::string password;
  bool password_stdin = false;
  RegistryFlags registry;
};

// Restores the terminal's echo however the prompt is left.
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
    }
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

void RunLogin(LoginOptions opts, Context& ctx) {
  using layerstore::Status;
  const std::string domain = registry::NormalizeRegistry(opts.server.empty() ? "docker.io" : opts.server);
  const std::string shown = registry::ConfigKey(domain);
  if (opts.password_stdin && !opts.password.empty()) {
    return ctx.FailUsage(Status::InvalidArgument("--password and --password-stdin are mutually exclusive"));
  }
  if (opts.password_stdin && opts.username.empty()) {
    return ctx.FailUsage(Status::InvalidArgument("Must provide --username with --password-stdin"));
  }
  auto config = ctx.Config();
  if (!config.ok()) return ctx.Fail(config.status());
  if (!opts.password.empty()) std::cerr << "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n";
  if (opts.password_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    opts.password = TrimNewlines(all);
  }
  registry::AuthFiles files = registry::DefaultAuthFiles();
  registry::ClientOptions client_options = ClientOptionsFor(opts.registry, domain, **config);
  client_options.auth_files = files;

  // Without a user name or password, stored credentials are checked first, as docker login does.
  if (opts.username.empty() && opts.password.empty()) {
    auto stored = registry::LookupCredentials(files, domain);
    if (stored.ok() && stored->has_value()) {
      client_options.credentials = **stored;
      registry::Client client(domain, client_options);
      if (client.CheckLogin().ok()) {
        std::cerr << "Authenticating with existing credentials...\n";
        std::cout << "Login Succeeded\n";
        return;
      }
    }
  }
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  if ((opts.username.empty() || opts.password.empty()) && !tty) {
    return ctx.Fail(Status::InvalidArgument("Cannot perform an interactive login from a non TTY device"));
  }
  if (opts.username.empty()) {
    std::cerr << "Username: " << std::flush;
    std::getline(std::cin, opts.username);
    opts.username = TrimNewlines(opts.username);
    if (opts.username.empty()) return ctx.Fail(Status::InvalidArgument("Error: Non-null Username Required"));
  }
  if (opts.password.empty()) {
    std::cerr << "Password: " << std::flush;
    {
      EchoOff quiet(STDIN_FILENO);
      std::getline(std::cin, opts.password);
    }
    std::cerr << "\n";
    opts.password = TrimNewlines(opts.password);
    if (opts.password.empty()) return ctx.Fail(Status::InvalidArgument("Error: Password Required"));
  }

  client_options.credentials = registry::Credentials{opts.username, opts.password, ""};
  registry::Client client(domain, client_options);
  Status checked = client.CheckLogin();
  // The message names the registry and the user, never the password.
  if (!checked.ok()) return ctx.Fail(checked.WithContext("login to " + shown + " as " + opts.username + " failed"));
  Status saved = registry::SaveCredentials(files.docker_config, domain, *client_options.credentials);
  if (!saved.ok()) return ctx.Fail(saved.WithContext("saving credentials"));
  std::cerr << "WARNING! Your password will be stored unencrypted in " << files.docker_config << ".\n";
  std::cout << "Login Succeeded\n";
}

}  // namespace

void RegisterLogin(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<LoginOptions>();
  CLI::App* cmd = app.add_subcommand("login", "Log in to a registry (Docker Hub by default)");
  cmd->add_option("server", opts->server, "Registry (HOST[:PORT]); default docker.io");
  cmd->add_option("-u,--username", opts->username, "Username");
  cmd->add_option("-p,--password", opts->password, "Password (insecure: prefer --password-stdin)");
  cmd->add_flag("--password-stdin", opts->password_stdin, "Take the password from stdin");
  AddRegistryFlags(cmd, &opts->registry);
  cmd->callback([opts, &ctx] { RunLogin(*opts, ctx); });
}

}  // namespace cli
