// The container settings kept in a container's record: -v and --network parsing, and the
// round trip through JSON that `start` relies on.
#include "container_config.h"

#include <gtest/gtest.h>

namespace cli {
namespace {

TEST(ContainerConfigTest, Volumes) {
  auto rw = ParseVolume("/srv/data:/data");
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(rw->source, "/srv/data");
  EXPECT_EQ(rw->destination, "/data");
  EXPECT_FALSE(rw->read_only);
  auto ro = ParseVolume("/srv:/mnt/x:ro");
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(ro->read_only);
  EXPECT_TRUE(ParseVolume("/a:/b:rw").ok());
  for (const char* bad : {"/a", "named:/data", "/a:relative", "/a:/b:rx", "/a:/", ":/b"}) {
    auto r = ParseVolume(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

TEST(ContainerConfigTest, Network) {
  EXPECT_EQ(*ParseNetwork("host"), runtime::Network::kHost);
  EXPECT_EQ(*ParseNetwork("none"), runtime::Network::kNone);
  auto bad = ParseNetwork("bridge");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bridge"), std::string::npos);
}

TEST(ContainerConfigTest, RoundTrip) {
  ContainerConfig c;
  c.run.cmd = {"sh", "-c", "echo hi"};
  c.run.env = {"A=1"};
  c.open_stdin = true;
  c.network = runtime::Network::kNone;
  c.binds = {{"/h", "/c", true}, {"/h2", "/c2", false}};
  c.read_only_rootfs = true;
  ContainerConfig back = ContainerConfig::FromJson(c.ToJson().dump());
  EXPECT_EQ(back.run.cmd, c.run.cmd);
  EXPECT_EQ(back.run.env, c.run.env);
  EXPECT_TRUE(back.open_stdin);
  EXPECT_EQ(back.network, runtime::Network::kNone);
  ASSERT_EQ(back.binds.size(), 2u);
  EXPECT_TRUE(back.binds[0].read_only);
  EXPECT_EQ(back.binds[1].destination, "/c2");
  EXPECT_TRUE(back.read_only_rootfs);
  // What `create` wrote before `run` existed still reads.
  EXPECT_EQ(ContainerConfig::FromJson(R"({"Cmd":["ls"]})").run.cmd, (std::vector<std::string>{"ls"}));
  EXPECT_TRUE(ContainerConfig::FromJson("{}").run.cmd.empty());
}

}  // namespace
}  // namespace cli
