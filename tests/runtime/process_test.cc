// Docker's rules for what a container runs (Entrypoint/Cmd, Env, WorkingDir, User), the user
// lookup in the image's own files (confined to the rootfs), env files, and the OCI config.
#include "runtime/process.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/oci.h"

namespace runtime {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rootfs_ = fs::temp_directory_path() / ("runtime-process-test-" + std::to_string(::getpid()));
    fs::remove_all(rootfs_);
    fs::create_directories(rootfs_ / "etc");
    Write("etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "# a comment\n"
          "app:x:1000:1000:App:/home/app:/bin/sh\n"
          "svc:x:1001:50::/srv:/bin/false\n");
    Write("etc/group",
          "root:x:0:\n"
          "staff:x:50:\n"
          "app:x:1000:\n"
          "audio:x:29:app,svc\n"
          "video:x:44:svc\n");
  }
  void TearDown() override { fs::remove_all(rootfs_); }

  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((rootfs_ / rel).parent_path());
    std::ofstream(rootfs_ / rel) << text;
  }

  Process Resolve(const ImageDefaults& image, const RunOverrides& run) {
    auto p = ResolveProcess(image, run, ReadThroughRootfs(rootfs_));
    EXPECT_TRUE(p.ok()) << p.status().message();
    return p.ok() ? *p : Process{};
  }

  fs::path rootfs_;
};

TEST_F(ProcessTest, EntrypointAndCmdCombineAsDocker) {
  ImageDefaults image;
  image.entrypoint = {"/entry", "-x"};
  image.cmd = {"serve", "--port=80"};
  EXPECT_EQ(Resolve(image, {}).args, (Args{"/entry", "-x", "serve", "--port=80"}));

  RunOverrides run;
  run.cmd = {"shell"};
  EXPECT_EQ(Resolve(image, run).args, (Args{"/entry", "-x", "shell"})) << "a command replaces Cmd only";

  RunOverrides ep;
  ep.entrypoint = "/other";
  EXPECT_EQ(Resolve(image, ep).args, (Args{"/other"})) << "--entrypoint drops the image's Cmd";
  ep.cmd = {"a", "b"};
  EXPECT_EQ(Resolve(image, ep).args, (Args{"/other", "a", "b"}));

  RunOverrides reset;
  reset.entrypoint = "";
  reset.cmd = {"ls"};
  EXPECT_EQ(Resolve(image, reset).args, (Args{"ls"})) << "--entrypoint '' resets it";

  auto none = ResolveProcess(ImageDefaults{}, RunOverrides{}, ReadThroughRootfs(rootfs_));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "no command specified");
}

TEST_F(ProcessTest, EnvironmentMergesImageThenFlags) {
  ImageDefaults image;
  image.cmd = {"sh"};
  image.env = {"PATH=/bin", "A=image", "B=image"};
  RunOverrides run;
  run.env = {"B=flag", "C=flag"};
  run.hostname = "box";
  Process p = Resolve(image, run);
  EXPECT_EQ(p.env, (Args{"PATH=/bin", "HOSTNAME=box", "A=image", "B=flag", "C=flag", "HOME=/root"}));

  ImageDefaults bare;
  bare.cmd = {"sh"};
  RunOverrides tty;
  tty.tty = true;
  tty.user = "app";
  Process q = Resolve(bare, tty);
  EXPECT_EQ(q.env, (Args{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
                         "HOME=/home/app"}))
      << "Docker's default PATH when the image has none; HOME from the user's passwd entry";
}

TEST_F(ProcessTest, WorkingDirectory) {
  ImageDefaults image;
  image.cmd = {"sh"};
  EXPECT_EQ(Resolve(image, {}).cwd, "/");
  image.working_dir = "/app";
  EXPECT_EQ(Resolve(image, {}).cwd, "/app");
  RunOverrides run;
  run.working_dir = "/tmp/x";
  EXPECT_EQ(Resolve(image, run).cwd, "/tmp/x");
  run.working_dir = "relative";
  auto bad = ResolveProcess(image, run, ReadThroughRootfs(rootfs_));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'relative' is invalid"), std::string::npos) << bad.status().message();
}

TEST_F(ProcessTest, UsersByNameIdAndGroup) {
  auto root = ResolveUser("", ReadThroughRootfs(rootfs_));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->home, "/root");

  auto app = ResolveUser("app", ReadThroughRootfs(rootfs_));
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->gid, 1000u);
  EXPECT_EQ(app->additional_gids, (std::vector<gid_t>{29}));
  EXPECT_EQ(app->home, "/home/app");

  auto by_id = ResolveUser("1001", ReadThroughRootfs(rootfs_));
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->gid, 50u) << "a known uid takes its passwd group";
  EXPECT_EQ(by_id->additional_gids, (std::vector<gid_t>{29, 44}));

  auto unknown_id = ResolveUser("4242:4343", ReadThroughRootfs(rootfs_));
  ASSERT_TRUE(unknown_id.ok()) << "numeric ids need no passwd entry";
  EXPECT_EQ(unknown_id->uid, 4242u);
  EXPECT_EQ(unknown_id->gid, 4343u);
  EXPECT_EQ(unknown_id->home, "/");

  auto named_group = ResolveUser("app:staff", ReadThroughRootfs(rootfs_));
  ASSERT_TRUE(named_group.ok());
  EXPECT_EQ(named_group->gid, 50u);

  auto missing = ResolveUser("nobody-here", ReadThroughRootfs(rootfs_));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "unable to find user nobody-here: no matching entries in passwd file");
  auto missing_group = ResolveUser("app:nogroup", ReadThroughRootfs(rootfs_));
  ASSERT_FALSE(missing_group.ok());
  EXPECT_EQ(missing_group.status().message(), "unable to find group nogroup: no matching entries in group file");
}

TEST_F(ProcessTest, PasswdSymlinkCannotLeaveTheRootfs) {
  // An image whose /etc/passwd points at the host's must read its own (absent) file instead.
  fs::path outside = rootfs_.string() + "-outside";
  fs::create_directories(outside);
  std::ofstream(outside / "passwd") << "evil:x:0:0::/:/bin/sh\n";
  fs::remove(rootfs_ / "etc/passwd");
  fs::create_symlink(outside / "passwd", rootfs_ / "etc/passwd");
  auto evil = ResolveUser("evil", ReadThroughRootfs(rootfs_));
  EXPECT_FALSE(evil.ok());
  fs::remove(rootfs_ / "etc/passwd");
  fs::create_symlink("../../../../../../" + (outside / "passwd").string(), rootfs_ / "etc/passwd");
  EXPECT_FALSE(ResolveUser("evil", ReadThroughRootfs(rootfs_)).ok());
  fs::remove_all(outside);
}

TEST_F(ProcessTest, EnvArgsAndFiles) {
  ::setenv("STRATA_TEST_FROM_HOST", "yes", 1);
  ::unsetenv("STRATA_TEST_UNSET");
  EXPECT_EQ(ExpandEnvArgs({"A=1", "STRATA_TEST_FROM_HOST", "STRATA_TEST_UNSET", "B="}),
            (Args{"A=1", "STRATA_TEST_FROM_HOST=yes", "B="}));
  Write("env.list", "# comment\n\nX=1\n  Y=two words\nSTRATA_TEST_FROM_HOST\n");
  auto entries = ReadEnvFile(rootfs_ / "env.list");
  ASSERT_TRUE(entries.ok()) << entries.status().message();
  EXPECT_EQ(*entries, (Args{"X=1", "Y=two words", "STRATA_TEST_FROM_HOST=yes"}));
  Write("bad.list", "OK=1\nBAD KEY=2\n");
  auto bad = ReadEnvFile(rootfs_ / "bad.list");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ReadEnvFile(rootfs_ / "missing.list").ok());
}

TEST_F(ProcessTest, OverridesSurviveJson) {
  RunOverrides run;
  run.env = {"A=1"};
  run.entrypoint = "";
  run.cmd = {"echo", "hi"};
  run.working_dir = "/w";
  run.user = "app:staff";
  run.hostname = "h";
  run.tty = true;
  RunOverrides back = RunOverrides::FromJson(run.ToJson());
  EXPECT_EQ(back.env, run.env);
  ASSERT_TRUE(back.entrypoint.has_value());
  EXPECT_EQ(*back.entrypoint, "");
  EXPECT_EQ(back.cmd, run.cmd);
  EXPECT_EQ(back.working_dir, "/w");
  EXPECT_EQ(back.user, "app:staff");
  EXPECT_EQ(back.hostname, "h");
  EXPECT_TRUE(back.tty);
  EXPECT_FALSE(RunOverrides::FromJson(RunOverrides{}.ToJson()).entrypoint.has_value());
}

TEST_F(ProcessTest, OciConfigDescribesTheSameContainer) {
  ContainerSpec spec;
  spec.rootfs = "/mnt/rootfs";
  spec.hostname = "box";
  spec.network = Network::kNone;
  spec.process.args = {"sh", "-c", "true"};
  spec.process.env = {"PATH=/bin"};
  spec.process.cwd = "/app";
  spec.process.user.uid = 1000;
  spec.process.user.gid = 1000;
  spec.process.user.additional_gids = {29};
  spec.mounts = {{"/host/data", "/data", true}};
  nlohmann::json c = OciConfig(spec);
  EXPECT_EQ(c["ociVersion"], "1.0.2");
  EXPECT_EQ(c["root"]["path"], "/mnt/rootfs");
  EXPECT_EQ(c["hostname"], "box");
  EXPECT_EQ(c["process"]["args"], nlohmann::json({"sh", "-c", "true"}));
  EXPECT_EQ(c["process"]["user"]["uid"], 1000);
  EXPECT_EQ(c["process"]["user"]["additionalGids"], nlohmann::json({29}));
  EXPECT_EQ(c["process"]["noNewPrivileges"], true);
  EXPECT_EQ(c["process"]["capabilities"]["bounding"].size(), DefaultCapabilities().size());
  std::vector<std::string> ns;
  for (const auto& n : c["linux"]["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(ns, (Args{"pid", "ipc", "uts", "mount", "network"}));
  const auto& last = c["mounts"].back();
  EXPECT_EQ(last["destination"], "/data");
  EXPECT_EQ(last["options"], nlohmann::json({"rbind", "rprivate", "ro"}));
}

}  // namespace
}  // namespace runtime
