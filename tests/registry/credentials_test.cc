// Docker config.json / Podman auth.json reading and writing (registry/credentials.h).
#include "registry/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace registry {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("strata-creds-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string Read(const std::string& name) {
    std::ifstream f(dir_ / name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

TEST_F(CredentialsTest, ReadsAuthField) {
  Write("config.json", R"({"auths":{"https://index.docker.io/v1/":{"auth":")" + Base64Encode("hub:pw") +
                           R"("},"localhost:5000":{"auth":")" + Base64Encode("u:p:with:colon") + R"("}}})");
  auto hub = ReadCredentials(Path("config.json"), "docker.io");
  ASSERT_TRUE(hub.ok());
  ASSERT_TRUE(hub->has_value());
  EXPECT_EQ((*hub)->username, "hub");
  EXPECT_EQ((*hub)->password, "pw");
  auto local = ReadCredentials(Path("config.json"), "localhost:5000");
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->password, "p:with:colon");
  auto none = ReadCredentials(Path("config.json"), "quay.io");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(CredentialsTest, AliasesAndUsernamePasswordFields) {
  Write("config.json", R"({"auths":{"http://myreg:5000":{"username":"a","password":"b"},"docker.io":{"auth":")" +
                           Base64Encode("x:y") + R"("}}})");
  auto r = ReadCredentials(Path("config.json"), "myreg:5000");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->username, "a");
  EXPECT_EQ((*r)->password, "b");
  auto hub = ReadCredentials(Path("config.json"), "docker.io");
  ASSERT_TRUE(hub.ok() && hub->has_value());
  EXPECT_EQ((*hub)->username, "x");
}

TEST_F(CredentialsTest, MissingFileIsNoCredentials) {
  auto r = ReadCredentials(Path("nope.json"), "docker.io");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(CredentialsTest, MalformedFilesFailWithoutEchoingSecrets) {
  Write("bad.json", "{not json");
  EXPECT_FALSE(ReadCredentials(Path("bad.json"), "docker.io").ok());
  Write("badauth.json", R"({"auths":{"r:1":{"auth":"c2VjcmV0!"}}})");
  auto r = ReadCredentials(Path("badauth.json"), "r:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("c2VjcmV0"), std::string::npos);
  Write("colonless.json", R"({"auths":{"r:1":{"auth":")" + Base64Encode("s3cr3tvalue") + R"("}}})");
  auto n = ReadCredentials(Path("colonless.json"), "r:1");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message().find("s3cr3t"), std::string::npos);
}

TEST_F(CredentialsTest, LookupPrefersDockerThenPodman) {
  Write("docker.json", R"({"auths":{"a:1":{"auth":")" + Base64Encode("docker:1") + R"("}}})");
  Write("podman.json", R"({"auths":{"a:1":{"auth":")" + Base64Encode("podman:1") + R"("},"b:2/ns":{"auth":")" +
                           Base64Encode("podman:2") + R"("}}})");
  AuthFiles files{Path("docker.json"), Path("podman.json")};
  std::string source;
  auto a = LookupCredentials(files, "a:1", &source);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->username, "docker");
  EXPECT_EQ(source, Path("docker.json"));
  auto b = LookupCredentials(files, "b:2", &source);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->username, "podman");
  EXPECT_EQ(source, Path("podman.json"));
  auto c = LookupCredentials(files, "c:3");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST_F(CredentialsTest, SaveCreatesPrivateFileAndKeepsOtherKeys) {
  std::string path = Path("sub/dir/config.json");
  ASSERT_TRUE(SaveCredentials(path, "docker.io", {"me", "pw", ""}).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Path("sub/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  json j = json::parse(Read("sub/dir/config.json"));
  EXPECT_EQ(j["auths"]["https://index.docker.io/v1/"]["auth"], Base64Encode("me:pw"));

  // Other keys survive, aliases of the same registry are folded into the canonical key.
  Write("config.json", R"({"psFormat":"x","credHelpers":{"gcr.io":"gcloud"},"auths":{"docker.io":{"auth":"b2xkOm9sZA=="},"other:1":{"auth":")" +
                           Base64Encode("o:o") + R"("}}})");
  ASSERT_TRUE(SaveCredentials(Path("config.json"), "docker.io", {"new", "pw2", ""}).ok());
  j = json::parse(Read("config.json"));
  EXPECT_EQ(j["psFormat"], "x");
  EXPECT_EQ(j["credHelpers"]["gcr.io"], "gcloud");
  EXPECT_FALSE(j["auths"].contains("docker.io"));
  EXPECT_EQ(j["auths"]["https://index.docker.io/v1/"]["auth"], Base64Encode("new:pw2"));
  EXPECT_EQ(j["auths"]["other:1"]["auth"], Base64Encode("o:o"));
  auto back = ReadCredentials(Path("config.json"), "docker.io");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->password, "pw2");
}

TEST_F(CredentialsTest, SaveWritesThroughSymlink) {
  Write("real.json", "{}");
  fs::create_symlink(dir_ / "real.json", dir_ / "config.json");
  ASSERT_TRUE(SaveCredentials(Path("config.json"), "r:1", {"u", "p", ""}).ok());
  EXPECT_TRUE(fs::is_symlink(dir_ / "config.json"));
  EXPECT_NE(Read("real.json").find(Base64Encode("u:p")), std::string::npos);
}

TEST_F(CredentialsTest, Erase) {
  ASSERT_TRUE(SaveCredentials(Path("config.json"), "r:1", {"u", "p", ""}).ok());
  ASSERT_TRUE(SaveCredentials(Path("config.json"), "r:2", {"u", "p", ""}).ok());
  auto erased = EraseCredentials(Path("config.json"), "r:1");
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(*erased);
  EXPECT_FALSE(ReadCredentials(Path("config.json"), "r:1")->has_value());
  EXPECT_TRUE(ReadCredentials(Path("config.json"), "r:2")->has_value());
  auto again = EraseCredentials(Path("config.json"), "r:1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  auto missing = EraseCredentials(Path("none.json"), "r:1");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
}

}  // namespace
}  // namespace registry
