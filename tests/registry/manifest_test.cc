// Manifest formats and platform selection (registry/manifest.h).
#include "registry/manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace registry {
namespace {

std::string D(char c) { return "sha256:" + std::string(64, c); }

std::string Entry(const std::string& digest, const std::string& os, const std::string& arch,
                  const std::string& variant = "", const std::string& type = std::string(kOciManifest)) {
  std::string platform = R"({"os":")" + os + R"(","architecture":")" + arch + "\"" +
                         (variant.empty() ? "" : R"(,"variant":")" + variant + "\"") + "}";
  return R"({"mediaType":")" + type + R"(","digest":")" + digest + R"(","size":100,"platform":)" + platform + "}";
}

ManifestIndex Index(std::initializer_list<std::string> entries) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  bool first = true;
  for (const auto& e : entries) {
    body += (first ? "" : ",") + e;
    first = false;
  }
  body += "]}";
  auto index = ParseIndex(body, kOciIndex);
  EXPECT_TRUE(index.ok()) << index.status().message();
  return *index;
}

TEST(Platform, ParseAndNormalize) {
  auto p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->String(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("linux/x86_64")->String(), "linux/amd64");
  EXPECT_EQ(ParsePlatform("linux/aarch64")->String(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("linux/arm")->String(), "linux/arm/v7");
  EXPECT_EQ(ParsePlatform("linux/armhf")->String(), "linux/arm/v7");
  EXPECT_EQ(ParsePlatform("linux/arm/6")->String(), "linux/arm/v6");
  EXPECT_EQ(ParsePlatform("Linux/AMD64")->String(), "linux/amd64");
  EXPECT_FALSE(ParsePlatform("linux").ok());
  EXPECT_FALSE(ParsePlatform("linux/").ok());
  EXPECT_FALSE(ParsePlatform("/amd64").ok());
  EXPECT_FALSE(ParsePlatform("a/b/c/d").ok());
  EXPECT_EQ(HostPlatform().os, "linux");
  EXPECT_FALSE(HostPlatform().architecture.empty());
}

TEST(Platform, Matches) {
  Platform arm64{"linux", "arm64", "", ""};
  EXPECT_TRUE(PlatformMatches(arm64, {"linux", "arm64", "v8", ""}));
  EXPECT_TRUE(PlatformMatches(arm64, {"linux", "aarch64", "", ""}));
  EXPECT_FALSE(PlatformMatches(arm64, {"linux", "amd64", "", ""}));
  EXPECT_FALSE(PlatformMatches(arm64, {"windows", "arm64", "", ""}));
  Platform v7{"linux", "arm", "v7", ""};
  EXPECT_TRUE(PlatformMatches(v7, {"linux", "arm", "v6", ""}));
  EXPECT_TRUE(PlatformMatches(v7, {"linux", "arm", "v5", ""}));
  EXPECT_FALSE(PlatformMatches({"linux", "arm", "v6", ""}, {"linux", "arm", "v7", ""}));
}

TEST(Platform, SelectExactFirst) {
  auto index = Index({Entry(D('1'), "linux", "amd64"), Entry(D('2'), "linux", "arm", "v6"),
                      Entry(D('3'), "linux", "arm", "v7"), Entry(D('4'), "linux", "arm64", "v8"),
                      Entry(D('5'), "unknown", "unknown")});
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/amd64"))->digest.str(), D('1'));
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/arm/v7"))->digest.str(), D('3'));
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/arm/v6"))->digest.str(), D('2'));
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/arm64"))->digest.str(), D('4'));
  auto none = SelectPlatform(index, *ParsePlatform("linux/s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().IsNotFound());
  EXPECT_NE(none.status().message().find("linux/arm64"), std::string::npos);  // lists what is offered
  EXPECT_EQ(none.status().message().find("unknown"), std::string::npos);      // not attestations
}

TEST(Platform, SelectNewestCompatibleArmVariant) {
  auto index = Index({Entry(D('5'), "linux", "arm", "v5"), Entry(D('6'), "linux", "arm", "v6")});
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/arm/v7"))->digest.str(), D('6'));
}

TEST(Platform, SkipsNestedIndexesAndEntriesWithoutPlatform) {
  auto index = Index({Entry(D('1'), "linux", "amd64", "", std::string(kOciIndex)),
                      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + D('2') +
                          R"(","size":1})",
                      Entry(D('3'), "linux", "amd64", "", std::string(kDockerManifest))});
  EXPECT_EQ(SelectPlatform(index, *ParsePlatform("linux/amd64"))->digest.str(), D('3'));
}

TEST(Manifest, MediaTypeDetection) {
  EXPECT_EQ(*ManifestMediaType("application/vnd.oci.image.manifest.v1+json", "{}"), kOciManifest);
  EXPECT_EQ(*ManifestMediaType("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8", "{}"),
            kDockerManifestList);
  // Generic Content-Type: the body decides.
  EXPECT_EQ(*ManifestMediaType("application/json", R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json"})"),
            kDockerManifest);
  EXPECT_EQ(*ManifestMediaType("", R"({"schemaVersion":2,"manifests":[]})"), kOciIndex);
  EXPECT_EQ(*ManifestMediaType("", R"({"schemaVersion":2,"config":{},"layers":[]})"), kOciManifest);
  auto s1 = ManifestMediaType("application/vnd.docker.distribution.manifest.v1+prettyjws", "{}");
  ASSERT_FALSE(s1.ok());
  EXPECT_EQ(s1.status().code(), layerstore::Code::kUnsupported);
  EXPECT_NE(s1.status().message().find("schema 1"), std::string::npos);
  EXPECT_FALSE(ManifestMediaType("application/json", R"({"schemaVersion":1,"fsLayers":[]})").ok());
  EXPECT_FALSE(ManifestMediaType("text/html", "<html>").ok());
}

TEST(Manifest, ParseImageManifest) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":")" +
                     D('c') + R"("},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":")" + D('1') +
                     R"("},{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":16724,"digest":")" +
                     D('2') + R"(","urls":["https://example.com/layer"]}]})";
  auto m = ParseImageManifest(body, kDockerManifest);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->config.digest.str(), D('c'));
  EXPECT_EQ(m->config.size, 7023u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].urls.size(), 1u);
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"layers":[]})", kOciManifest).ok());
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"config":{"digest":"md5:x","size":1},"layers":[]})", kOciManifest).ok());
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"config":{"digest":")" + D('a') + R"(","size":-1},"layers":[]})",
                                  kOciManifest)
                   .ok());
}

}  // namespace
}  // namespace registry
