// Docker Hub search answers and push's media type helpers (registry/search.h, registry/push.h).
#include <gtest/gtest.h>

#include "registry/push.h"
#include "registry/search.h"

namespace registry {
namespace {

TEST(Search, ParsesDockerHubShape) {
  auto r = ParseSearchResults(R"({"num_results":2,"query":"busy","results":[
      {"name":"busybox","description":"Busybox base image.","star_count":3300,"is_official":true,"is_automated":false},
      {"name":"user/busy","description":null,"star_count":1},
      {"description":"no name: skipped"}]})",
                              "");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "busybox");
  EXPECT_EQ((*r)[0].description, "Busybox base image.");
  EXPECT_EQ((*r)[0].stars, 3300);
  EXPECT_TRUE((*r)[0].official);
  EXPECT_FALSE((*r)[0].automated);
  EXPECT_EQ((*r)[1].name, "user/busy");
  EXPECT_EQ((*r)[1].description, "");
  EXPECT_FALSE((*r)[1].official);
}

TEST(Search, PrefixesOtherRegistries) {
  auto r = ParseSearchResults(R"({"results":[{"name":"team/app"}]})", "quay.example:5000/");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "quay.example:5000/team/app");
}

TEST(Search, RejectsOtherShapes) {
  EXPECT_FALSE(ParseSearchResults("<html>", "").ok());
  EXPECT_FALSE(ParseSearchResults(R"({"repositories":["a"]})", "").ok());
}

TEST(Push, MediaTypeCompression) {
  EXPECT_EQ(MediaTypeCompression("application/vnd.oci.image.layer.v1.tar+gzip"), "gzip");
  EXPECT_EQ(MediaTypeCompression("application/vnd.oci.image.layer.v1.tar+zstd"), "zstd");
  EXPECT_EQ(MediaTypeCompression("application/vnd.oci.image.layer.v1.tar"), "none");
  EXPECT_EQ(MediaTypeCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"), "gzip");
  EXPECT_EQ(MediaTypeCompression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "gzip");
  EXPECT_EQ(MediaTypeCompression("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"), "gzip");
  EXPECT_EQ(MediaTypeCompression("application/octet-stream"), "");
}

}  // namespace
}  // namespace registry
