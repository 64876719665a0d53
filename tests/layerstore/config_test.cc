// ReadStoreConfig (layerstore/config.h): defaults without a file, the keys it knows, and errors
// that name the file and the key for everything else.
#include "layerstore/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "testutil/temp_base.h"

namespace layerstore {
namespace {

namespace fs = std::filesystem;

class StoreConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = TempBase() + "/strata-config.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void Write(const std::string& text) {
    std::ofstream out(root_ + "/config.json", std::ios::binary);
    out << text;
  }
  // The error of reading `text`; fails the test when it is accepted.
  std::string ErrorOf(const std::string& text) {
    Write(text);
    auto c = ReadStoreConfig(root_);
    EXPECT_FALSE(c.ok()) << "accepted: " << text;
    if (c.ok()) return "";
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << c.status().ToString();
    EXPECT_EQ(c.status().message().rfind(root_ + "/config.json: ", 0), 0u) << c.status().message();
    return c.status().message();
  }

  std::string root_;
};

TEST_F(StoreConfigTest, MissingOrEmptyFileGivesDefaults) {
  for (const std::string& root : {root_, root_ + "/no/such/store"}) {
    auto c = ReadStoreConfig(root);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_FALSE(c->keep_blobs);
    EXPECT_TRUE(c->insecure_registries.empty());
  }
  Write("");
  ASSERT_TRUE(ReadStoreConfig(root_).ok());
  Write(" \n\t\r\n");
  ASSERT_TRUE(ReadStoreConfig(root_).ok());
  Write("{}");
  ASSERT_TRUE(ReadStoreConfig(root_).ok());
  EXPECT_EQ(StoreConfigPath("/x/y"), "/x/y/config.json");
}

TEST_F(StoreConfigTest, KnownKeys) {
  Write("\xef\xbb\xbf{\n  \"keep-blobs\": true,\n  \"insecure-registries\": [\"reg.lan:5000\", \"10.0.0.0/8\"]\n}\n");
  auto c = ReadStoreConfig(root_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->keep_blobs);
  EXPECT_EQ(c->insecure_registries, (std::vector<std::string>{"reg.lan:5000", "10.0.0.0/8"}));
  Write(R"({"keep-blobs": false, "insecure-registries": []})");
  c = ReadStoreConfig(root_);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->keep_blobs);
}

TEST_F(StoreConfigTest, ErrorsNameTheFileAndTheKey) {
  std::string e = ErrorOf("{\"keep-blobs\": true,}");
  EXPECT_NE(e.find("not valid JSON: parse error at line 1"), std::string::npos) << e;
  EXPECT_EQ(e.find("json.exception"), std::string::npos) << e;
  e = ErrorOf("[\"keep-blobs\"]");
  EXPECT_NE(e.find("must hold a JSON object"), std::string::npos) << e;
  e = ErrorOf(R"({"keep-blobs": "yes"})");
  EXPECT_NE(e.find("\"keep-blobs\" must be true or false, not \"yes\""), std::string::npos) << e;
  e = ErrorOf(R"({"insecure-registries": "reg.lan:5000"})");
  EXPECT_NE(e.find("\"insecure-registries\" must be a list"), std::string::npos) << e;
  e = ErrorOf(R"({"insecure-registries": ["reg.lan", 5000]})");
  EXPECT_NE(e.find("\"insecure-registries\": 5000 is not a string"), std::string::npos) << e;
  e = ErrorOf(R"({"keep_blobs": true})");  // a typo is not silently ignored
  EXPECT_NE(e.find("unknown key \"keep_blobs\""), std::string::npos) << e;
  e = ErrorOf(R"({"data-root": "/srv"})");
  EXPECT_NE(e.find("unknown key \"data-root\""), std::string::npos) << e;
}

TEST_F(StoreConfigTest, UnreadableFileIsAnError) {
  fs::create_directory(root_ + "/config.json");  // a directory cannot be read as a file
  auto c = ReadStoreConfig(root_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("config.json"), std::string::npos) << c.status().ToString();
}

}  // namespace
}  // namespace layerstore
