#include "layerstore/reference.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace layerstore {
namespace {

// sha256 of the empty string: any valid digest would do.
constexpr std::string_view kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Sha() { return "sha256:" + std::string(kHex); }

Reference MustParse(std::string_view text) {
  Result<Reference> ref = ParseReference(text);
  EXPECT_TRUE(ref.ok()) << text << ": " << ref.status().ToString();
  return ref.ok() ? *ref : Reference{};
}

// Asserts that `text` is rejected as InvalidArgument, that the message quotes the input (so a user
// with several references on a command line can tell which one is bad) and says why.
void ExpectInvalid(std::string_view text, std::string_view why) {
  SCOPED_TRACE(std::string(text));
  for (bool default_tag : {true, false}) {
    Result<Reference> ref = default_tag ? ParseReference(text) : ParseReferenceNoDefaultTag(text);
    ASSERT_FALSE(ref.ok()) << "parsed as " << ref->String();
    EXPECT_EQ(ref.status().code(), Code::kInvalidArgument);
    const std::string& msg = ref.status().message();
    EXPECT_NE(msg.find("\"" + std::string(text) + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
  }
}

TEST(ReferenceTest, OfficialImageGetsDomainLibraryAndLatest) {
  Reference ref = MustParse("nginx");
  EXPECT_EQ(ref.domain, "docker.io");
  EXPECT_EQ(ref.path, "library/nginx");
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_FALSE(ref.digest.has_value());
  EXPECT_EQ(ref.Name(), "docker.io/library/nginx");
  EXPECT_EQ(ref.String(), "docker.io/library/nginx:latest");
  EXPECT_EQ(ref.FamiliarName(), "nginx");
  EXPECT_EQ(ref.FamiliarString(), "nginx:latest");
}

TEST(ReferenceTest, UserRepositoryWithTag) {
  Reference ref = MustParse("user/app:v1");
  EXPECT_EQ(ref.domain, "docker.io");
  EXPECT_EQ(ref.path, "user/app");
  EXPECT_EQ(ref.tag, "v1");
  EXPECT_EQ(ref.String(), "docker.io/user/app:v1");
  EXPECT_EQ(ref.FamiliarName(), "user/app");
  EXPECT_EQ(ref.FamiliarString(), "user/app:v1");
}

TEST(ReferenceTest, LocalhostWithPort) {
  Reference ref = MustParse("localhost:5000/app");
  EXPECT_EQ(ref.domain, "localhost:5000");
  EXPECT_EQ(ref.path, "app");  // no library/ outside Docker Hub
  EXPECT_EQ(ref.tag, "latest");
  EXPECT_EQ(ref.String(), "localhost:5000/app:latest");
  EXPECT_EQ(ref.FamiliarName(), "localhost:5000/app");
  EXPECT_EQ(ref.FamiliarString(), "localhost:5000/app:latest");
}

TEST(ReferenceTest, BareLocalhostIsADomain) {
  Reference ref = MustParse("localhost/app");
  EXPECT_EQ(ref.domain, "localhost");
  EXPECT_EQ(ref.path, "app");
  EXPECT_EQ(ref.String(), "localhost/app:latest");
  EXPECT_EQ(ref.FamiliarString(), "localhost/app:latest");
}

TEST(ReferenceTest, OtherRegistryWithNestedPath) {
  Reference ref = MustParse("quay.io/a/b/c:tag");
  EXPECT_EQ(ref.domain, "quay.io");
  EXPECT_EQ(ref.path, "a/b/c");
  EXPECT_EQ(ref.tag, "tag");
  EXPECT_EQ(ref.String(), "quay.io/a/b/c:tag");
  EXPECT_EQ(ref.FamiliarName(), "quay.io/a/b/c");
  EXPECT_EQ(ref.FamiliarString(), "quay.io/a/b/c:tag");
}

TEST(ReferenceTest, DigestOnlyGetsNoDefaultTag) {
  Reference ref = MustParse("name@" + Sha());
  EXPECT_EQ(ref.path, "library/name");
  EXPECT_EQ(ref.tag, "");
  ASSERT_TRUE(ref.digest.has_value());
  EXPECT_EQ(ref.digest->str(), Sha());
  EXPECT_EQ(ref.String(), "docker.io/library/name@" + Sha());
  EXPECT_EQ(ref.FamiliarString(), "name@" + Sha());
}

TEST(ReferenceTest, TagAndDigest) {
  Reference ref = MustParse("name:tag@" + Sha());
  EXPECT_EQ(ref.tag, "tag");
  ASSERT_TRUE(ref.digest.has_value());
  EXPECT_EQ(ref.digest->hex(), kHex);
  EXPECT_EQ(ref.String(), "docker.io/library/name:tag@" + Sha());
  EXPECT_EQ(ref.FamiliarString(), "name:tag@" + Sha());
}

TEST(ReferenceTest, LegacyIndexDomainNormalisesToDockerIo) {
  EXPECT_EQ(MustParse("index.docker.io/library/x").String(), "docker.io/library/x:latest");
  EXPECT_EQ(MustParse("index.docker.io/x").String(), "docker.io/library/x:latest");
  EXPECT_EQ(MustParse("index.docker.io/user/x:1").String(), "docker.io/user/x:1");
  EXPECT_EQ(MustParse("docker.io/x").String(), "docker.io/library/x:latest");
  EXPECT_EQ(MustParse("docker.io/library/x").FamiliarString(), "x:latest");
  EXPECT_EQ(MustParse("library/x").String(), "docker.io/library/x:latest");
}

TEST(ReferenceTest, AllSpellingsOfOneImageAreEqual) {
  const Reference canonical = MustParse("docker.io/library/redis:latest");
  for (std::string_view text : {"redis", "redis:latest", "library/redis", "docker.io/redis",
                                "index.docker.io/library/redis:latest"}) {
    EXPECT_EQ(MustParse(text), canonical) << text;
  }
  EXPECT_NE(MustParse("redis:7"), canonical);
}

TEST(ReferenceTest, FamiliarNameKeepsNestedLibraryPaths) {
  // Stripping "library/" here would turn it into docker.io/foo/bar when parsed back.
  Reference ref = MustParse("docker.io/library/foo/bar");
  EXPECT_EQ(ref.FamiliarName(), "library/foo/bar");
  EXPECT_EQ(MustParse("other/library").FamiliarName(), "other/library");
  EXPECT_EQ(MustParse("example.com/library/x").FamiliarName(), "example.com/library/x");
}

TEST(ReferenceTest, StringAndFamiliarStringRoundTrip) {
  for (std::string text : {std::string("nginx"), std::string("user/app:v1"), std::string("localhost:5000/a/b"),
                           std::string("quay.io/a/b/c:tag"), "name@" + Sha(), "name:tag@" + Sha(),
                           std::string("docker.io/library/foo/bar:x"), std::string("[fc00::1]:5000/docker")}) {
    SCOPED_TRACE(text);
    Reference ref = MustParse(text);
    EXPECT_EQ(MustParse(ref.String()), ref);
    EXPECT_EQ(MustParse(ref.FamiliarString()), ref);
  }
}

TEST(ReferenceTest, NoDefaultTagLeavesTagEmpty) {
  Result<Reference> ref = ParseReferenceNoDefaultTag("nginx");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->tag, "");
  EXPECT_EQ(ref->String(), "docker.io/library/nginx");
  EXPECT_EQ(ref->FamiliarString(), "nginx");

  ref = ParseReferenceNoDefaultTag("quay.io/a/b:v2");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->String(), "quay.io/a/b:v2");
}

TEST(ReferenceTest, DomainForms) {
  EXPECT_EQ(MustParse("127.0.0.1:5000/docker/docker").domain, "127.0.0.1:5000");
  EXPECT_EQ(MustParse("test-com:8080/foo").domain, "test-com:8080");
  EXPECT_EQ(MustParse("xn--n3h.com:18080/foo").domain, "xn--n3h.com:18080");
  Reference ipv6 = MustParse("[fc00::1]:5000/docker/docker");
  EXPECT_EQ(ipv6.domain, "[fc00::1]:5000");
  EXPECT_EQ(ipv6.path, "docker/docker");
  EXPECT_EQ(MustParse("[fc00:1:2:3:4:5:6:7]/x").domain, "[fc00:1:2:3:4:5:6:7]");
  // '_' cannot appear in a hostname, so this is a Docker Hub namespace.
  Reference underscore = MustParse("test_com/foo");
  EXPECT_EQ(underscore.domain, "docker.io");
  EXPECT_EQ(underscore.path, "test_com/foo");
}

TEST(ReferenceTest, UppercaseFirstComponentIsADomain) {
  // Docker's rule: namespaces are lowercase, so an uppercase first component must be a registry.
  Reference ref = MustParse("Foo/bar");
  EXPECT_EQ(ref.domain, "Foo");
  EXPECT_EQ(ref.path, "bar");
  EXPECT_EQ(ref.String(), "Foo/bar:latest");
  EXPECT_EQ(ref.FamiliarName(), "Foo/bar");
}

TEST(ReferenceTest, NameWithoutSlashIsNeverADomain) {
  // As in Docker, ":5000" is then a tag and the dots are part of the repository name.
  Reference ref = MustParse("localhost:5000");
  EXPECT_EQ(ref.String(), "docker.io/library/localhost:5000");
  EXPECT_EQ(MustParse("192.168.0.1").String(), "docker.io/library/192.168.0.1:latest");
}

TEST(ReferenceTest, PathSeparators) {
  Reference ref = MustParse("a__b/c--d---e/f.g_h-i/0");
  EXPECT_EQ(ref.path, "a__b/c--d---e/f.g_h-i/0");
  EXPECT_EQ(MustParse("d/t").path, "d/t");  // single characters are fine
}

TEST(ReferenceTest, TagCharactersAndLength) {
  EXPECT_EQ(MustParse("x:V1.2_rc-3").tag, "V1.2_rc-3");  // tags, unlike names, may be uppercase
  EXPECT_EQ(MustParse("x:_").tag, "_");
  const std::string longest(128, 'a');
  EXPECT_EQ(MustParse("x:" + longest).tag, longest);
}

TEST(ReferenceTest, HexNamesThatAreNotIds) {
  // Only exactly 64 hex characters is refused; with a domain, a tag or a different length the
  // text is an ordinary name.
  const std::string hex(kHex);
  EXPECT_EQ(MustParse("docker.io/" + hex).path, "library/" + hex);
  EXPECT_EQ(MustParse(hex + ":v1").path, "library/" + hex);
  EXPECT_EQ(MustParse(hex.substr(1)).path, "library/" + hex.substr(1));
  // Docker reads "sha256:<hex>" as repository "sha256" with a 64-character tag; callers that
  // accept image ids must check for them before parsing a reference.
  Reference ref = MustParse(Sha());
  EXPECT_EQ(ref.path, "library/sha256");
  EXPECT_EQ(ref.tag, hex);
}

TEST(ReferenceTest, LongestPath) {
  // 255 characters including the library/ prefix that Docker Hub adds.
  const std::string name(255 - 8, 'a');
  EXPECT_EQ(MustParse(name).path.size(), 255u);
  ExpectInvalid(name + "a", "must not be more than 255 characters");
  ExpectInvalid("user/" + std::string(251, 'b'), "must not be more than 255 characters");
}

TEST(ReferenceErrorTest, UppercaseRepository) {
  ExpectInvalid("Nginx", "repository name must be lowercase");
  ExpectInvalid("Nginx:latest", "repository name must be lowercase");
  ExpectInvalid("docker/Docker", "repository name must be lowercase");
  ExpectInvalid("docker.io/docker/Docker", "repository name must be lowercase");
  ExpectInvalid("quay.io/A", "repository name must be lowercase");
  Result<Reference> ref = ParseReference("Nginx:latest");
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().message(), "invalid reference \"Nginx:latest\": repository name must be lowercase");
}

TEST(ReferenceErrorTest, Empty) {
  ExpectInvalid("", "invalid reference format");
  ExpectInvalid(":tag", "missing repository name");
  ExpectInvalid("@" + Sha(), "missing repository name");
  ExpectInvalid("quay.io/", "missing repository name");
  ExpectInvalid("docker.io/:v1", "missing repository name");
}

TEST(ReferenceErrorTest, BadSlashes) {
  ExpectInvalid("foo/", "empty repository name component");
  ExpectInvalid("a//b", "empty repository name component");
  ExpectInvalid("docker///docker", "empty repository name component");
  ExpectInvalid("/foo", "empty repository name component");
  ExpectInvalid("quay.io/a/", "empty repository name component");
}

TEST(ReferenceErrorTest, BadPathComponents) {
  for (std::string_view text : {"-docker", "-docker/docker", "docker-/docker", "-docker-/docker", "____/____",
                                "_docker/_docker", "x/dock..er", "x/dock_.er", "x/dock-.er",
                                "dock___er/x", "a.", "nginx latest", " nginx", "a+b", "ng\xc3\xafnx"}) {
    ExpectInvalid(text, "invalid repository name component");
  }
}

TEST(ReferenceErrorTest, BadDomains) {
  for (std::string_view text : {"-docker.io/docker/docker", "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian",
                                "[2001:db8:3:4::192.0.2.33]:5000/debian", "host:/x", "host:50a/x",
                                "a..b/x", "[]:5000/x", "[::1]5000/x", "https://github.com/docker/docker"}) {
    ExpectInvalid(text, "invalid registry host");
  }
  // Without a slash the brackets are part of the repository name.
  ExpectInvalid("[fc00::1]", "invalid repository name component");
  ExpectInvalid("[fc00::1]:5000", "invalid repository name component");
  // A '.' makes the first component a host, so this is a bad host, not a bad namespace.
  ExpectInvalid("dock..er/docker", "invalid registry host");
}

TEST(ReferenceErrorTest, BadTags) {
  ExpectInvalid("name:", "empty tag");
  ExpectInvalid("name:@" + Sha(), "empty tag");
  ExpectInvalid("nginx:ta!g", "invalid tag");
  ExpectInvalid("nginx:-tag", "invalid tag");
  ExpectInvalid("nginx:.tag", "invalid tag");
  ExpectInvalid("nginx:a:b", "invalid tag");
  ExpectInvalid("user/nginx:a/b", "invalid tag");
  // With no earlier slash, "nginx:a" is the first component and so a (bad) host and port.
  ExpectInvalid("nginx:a/b", "invalid registry host");
  ExpectInvalid("nginx:" + std::string(129, 'a'), "tag is longer than 128 characters");
}

TEST(ReferenceErrorTest, BadDigests) {
  const std::string hex(kHex);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
  ExpectInvalid("name@", "empty digest");
  ExpectInvalid("name@sha256:abc", "invalid digest");
  ExpectInvalid("name@sha256", "invalid digest");
  ExpectInvalid("name@" + hex, "invalid digest");
  // Well-formed for the grammar, refused by Digest::Parse (whose wording is its own).
  ExpectInvalid("name@sha256:" + hex + "00", "digest");  // 66 hex characters
  ExpectInvalid("name@sha256:" + upper, "digest");       // sha256 digests are lowercase
  ExpectInvalid("name@sha256:" + hex + "@x", "invalid digest");
  ExpectInvalid("name@sha512:" + hex + hex, "digest");  // only sha256 is supported
  ExpectInvalid("name:v1@md5:" + hex, "digest");
}

TEST(ReferenceErrorTest, ImageIdIsNotAName) {
  ExpectInvalid(kHex, "cannot specify 64-byte hexadecimal strings");
}

}  // namespace
}  // namespace layerstore
