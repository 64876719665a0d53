// Reference -> URL building, registry name normalisation, the TLS/scheme decision table and
// Link header pagination (registry/endpoint.h).
#include "registry/endpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "layerstore/reference.h"

namespace registry {
namespace {

TEST(Endpoint, NormalizeRegistry) {
  EXPECT_EQ(NormalizeRegistry("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeRegistry("index.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistry("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistry("Docker.IO"), "docker.io");
  EXPECT_EQ(NormalizeRegistry("localhost:5000/"), "localhost:5000");
  EXPECT_EQ(NormalizeRegistry("http://myreg.example:5000/v2/"), "myreg.example:5000");
  EXPECT_EQ(NormalizeRegistry("quay.io/namespace"), "quay.io");
  EXPECT_EQ(NormalizeRegistry("127.0.0.1:41234"), "127.0.0.1:41234");
}

TEST(Endpoint, HostsAndConfigKeys) {
  EXPECT_EQ(ApiHost("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(ApiHost("localhost:5000"), "localhost:5000");
  EXPECT_EQ(ConfigKey("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(ConfigKey("quay.io"), "quay.io");
}

TEST(Endpoint, IsLoopback) {
  EXPECT_TRUE(IsLoopback("localhost"));
  EXPECT_TRUE(IsLoopback("localhost:5000"));
  EXPECT_TRUE(IsLoopback("LOCALHOST:5000"));
  EXPECT_TRUE(IsLoopback("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopback("127.1.2.3"));
  EXPECT_TRUE(IsLoopback("[::1]:5000"));
  EXPECT_TRUE(IsLoopback("::1"));
  EXPECT_FALSE(IsLoopback("127.example.com"));
  EXPECT_FALSE(IsLoopback("10.0.0.1:5000"));
  EXPECT_FALSE(IsLoopback("registry-1.docker.io"));
  EXPECT_FALSE(IsLoopback("localhost.example.com"));
}

TEST(Endpoint, CandidatesDecisionTable) {
  CertFiles none;
  CertFiles ca{"/certs/ca.crt", "", ""};
  auto c = EndpointCandidates("registry.example.com", std::nullopt, none);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "https");
  EXPECT_TRUE(c[0].verify_tls);

  c = EndpointCandidates("registry.example.com", false, none);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "https");
  EXPECT_FALSE(c[0].verify_tls);
  EXPECT_EQ(c[1].scheme, "http");

  c = EndpointCandidates("127.0.0.1:5000", true, none);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0].verify_tls);

  c = EndpointCandidates("127.0.0.1:5000", std::nullopt, none);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_FALSE(c[0].verify_tls);  // Docker's insecure loopback default
  EXPECT_EQ(c[1].scheme, "http");

  c = EndpointCandidates("localhost:5000", std::nullopt, ca);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(c[0].verify_tls);  // a CA says: check it
  EXPECT_EQ(c[0].ca_file, "/certs/ca.crt");
}

TEST(InsecureRegistries, EntriesAreHostPortOrCidr) {
  for (const char* good : {"registry.lan", "registry.lan:5000", "REGISTRY.lan:5000", "10.1.2.3", "10.1.2.3:5000",
                           "10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "fd00::1", "[fd00::1]", "[fd00::1]:5000",
                           "http://registry.lan:5000", "HTTPS://registry.lan", "my-reg", "a.b-c.d:1"}) {
    EXPECT_TRUE(ValidateInsecureRegistry(good).ok()) << good << ": " << ValidateInsecureRegistry(good).message();
  }
  for (const char* bad : {"", "http://", "ftp://registry.lan", "registry.lan:5000/v2", "registry.lan:", "reg:65536",
                          "reg:50x", "reg:5000:1", "-reg", "reg-", "re_g", "a..b", "10.0.0.0/33", "fd00::/129",
                          "10.0.0.0/", "10.0.0/8x", "[fd00::1", "[fd00::1]5000", "[nothex]:5000", "two words"}) {
    EXPECT_FALSE(ValidateInsecureRegistry(bad).ok()) << "accepted [" << bad << "]";
  }
  // The message quotes the entry as written.
  EXPECT_NE(ValidateInsecureRegistry("reg:50x").message().find("\"reg:50x\""), std::string::npos);
}

TEST(InsecureRegistries, MatchByNameWithPort) {
  auto no_dns = [](const std::string& host) -> std::vector<std::string> {
    ADD_FAILURE() << "resolved " << host << " although no CIDR is listed";
    return {};
  };
  const std::vector<std::string> list = {"registry.lan:5000", "http://other.lan", "bad entry"};
  EXPECT_TRUE(IsInsecureRegistry("registry.lan:5000", list, no_dns));
  EXPECT_TRUE(IsInsecureRegistry("Registry.LAN:5000", list, no_dns));
  EXPECT_FALSE(IsInsecureRegistry("registry.lan", list, no_dns));  // the port is part of the name
  EXPECT_FALSE(IsInsecureRegistry("registry.lan:5001", list, no_dns));
  EXPECT_TRUE(IsInsecureRegistry("other.lan", list, no_dns));  // Docker drops the scheme
  EXPECT_FALSE(IsInsecureRegistry("docker.io", list, no_dns));
  EXPECT_FALSE(IsInsecureRegistry("registry.lan:5000", {}, no_dns));
}

TEST(InsecureRegistries, MatchByAddressInCidr) {
  std::vector<std::string> asked;
  auto dns = [&](const std::string& host) -> std::vector<std::string> {
    asked.push_back(host);
    if (host == "inside.lan") return {"2001:db8::5", "10.20.30.40"};
    if (host == "outside.lan") return {"192.0.2.1"};
    return {};
  };
  const std::vector<std::string> list = {"10.0.0.0/8", "fd00::/8", "192.0.2.128/25"};
  EXPECT_TRUE(IsInsecureRegistry("10.1.2.3:5000", list, dns));
  EXPECT_TRUE(IsInsecureRegistry("10.255.255.255", list, dns));
  EXPECT_FALSE(IsInsecureRegistry("11.0.0.1:5000", list, dns));
  EXPECT_TRUE(IsInsecureRegistry("192.0.2.128", list, dns));
  EXPECT_TRUE(IsInsecureRegistry("192.0.2.200:443", list, dns));
  EXPECT_FALSE(IsInsecureRegistry("192.0.2.127", list, dns));
  EXPECT_TRUE(IsInsecureRegistry("[fd12::1]:5000", list, dns));
  EXPECT_FALSE(IsInsecureRegistry("[fe80::1]:5000", list, dns));
  EXPECT_TRUE(asked.empty()) << "an IP address was resolved";
  EXPECT_TRUE(IsInsecureRegistry("inside.lan:5000", list, dns));  // any of its addresses
  EXPECT_FALSE(IsInsecureRegistry("outside.lan:5000", list, dns));
  EXPECT_FALSE(IsInsecureRegistry("nowhere.lan", list, dns));
  EXPECT_EQ(asked, (std::vector<std::string>{"inside.lan", "outside.lan", "nowhere.lan"}));
  EXPECT_TRUE(IsInsecureRegistry("10.0.0.1", {"10.0.0.1/32"}, dns));
  EXPECT_FALSE(IsInsecureRegistry("10.0.0.2", {"10.0.0.1/32"}, dns));
  EXPECT_TRUE(IsInsecureRegistry("8.8.8.8", {"0.0.0.0/0"}, dns));
}

TEST(Endpoint, FindCertFiles) {
  auto dir = std::filesystem::temp_directory_path() / ("strata-certs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "127.0.0.1:5000");
  std::ofstream(dir / "127.0.0.1:5000" / "ca.crt") << "x";
  std::ofstream(dir / "127.0.0.1:5000" / "client.cert") << "x";
  auto f = FindCertFiles(dir.string(), "127.0.0.1:5000");
  EXPECT_EQ(f.ca_file, (dir / "127.0.0.1:5000" / "ca.crt").string());
  EXPECT_EQ(f.client_cert, "");  // a certificate without its key is not used
  std::ofstream(dir / "127.0.0.1:5000" / "client.key") << "x";
  f = FindCertFiles(dir.string(), "127.0.0.1:5000");
  EXPECT_EQ(f.client_key, (dir / "127.0.0.1:5000" / "client.key").string());
  EXPECT_EQ(FindCertFiles(dir.string(), "other:1").ca_file, "");
  std::filesystem::remove_all(dir);
}

TEST(Endpoint, UrlsFromReferences) {
  auto ref = layerstore::ParseReference("busybox:1.36");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(Endpoint{}.BaseUrl(ApiHost(ref->domain)) + ManifestPath(ref->path, ref->tag),
            "https://registry-1.docker.io/v2/library/busybox/manifests/1.36");
  auto local = layerstore::ParseReference("localhost:5000/team/app@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(local.ok());
  Endpoint http;
  http.scheme = "http";
  EXPECT_EQ(http.BaseUrl(ApiHost(local->domain)) + ManifestPath(local->path, local->digest->str()),
            "http://localhost:5000/v2/team/app/manifests/sha256:" + std::string(64, 'a'));
  EXPECT_EQ(BlobPath("team/app", "sha256:ab"), "/v2/team/app/blobs/sha256:ab");
  EXPECT_EQ(UploadPath("team/app"), "/v2/team/app/blobs/uploads/");
  EXPECT_EQ(MountPath("team/app", "sha256:ab", "library/busybox"),
            "/v2/team/app/blobs/uploads/?mount=sha256%3Aab&from=library%2Fbusybox");
  EXPECT_EQ(CatalogPath(100), "/v2/_catalog?n=100");
}

TEST(Endpoint, ResolveUrlAndQuery) {
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/uuid?_state=x"),
            "http://h:1/v2/a/blobs/uploads/uuid?_state=x");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/", "https://other/x"), "https://other/x");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/b?q=1", "c"), "http://h:1/v2/a/c");
  EXPECT_EQ(ResolveUrl("http://h:1", "/x"), "http://h:1/x");
  EXPECT_EQ(AddQuery("http://h/u?_state=abc", "digest", "sha256:12"), "http://h/u?_state=abc&digest=sha256%3A12");
  EXPECT_EQ(AddQuery("/v1/search", "q", "a b"), "/v1/search?q=a%20b");
  EXPECT_EQ(UrlEncode("AZaz09-._~/:+ "), "AZaz09-._~%2F%3A%2B%20");
}

TEST(LinkHeader, NextPage) {
  EXPECT_EQ(NextLink(R"(</v2/_catalog?last=b&n=2>; rel="next")"), "/v2/_catalog?last=b&n=2");
  EXPECT_EQ(NextLink(R"(</v2/_catalog?last=b&n=2>;rel=next)"), "/v2/_catalog?last=b&n=2");
  EXPECT_EQ(NextLink(R"(<https://r/v2/_catalog?last=b>; rel="prev", <https://r/v2/_catalog?last=d>; rel="next")"),
            "https://r/v2/_catalog?last=d");
  EXPECT_EQ(NextLink(R"(</a>; title="x, y; z", </b>; rel="next")"), "/b");
  EXPECT_EQ(NextLink(R"(</a>; rel="prev next")"), "/a");
  EXPECT_EQ(NextLink(R"(</a>; REL="Next")"), "/a");
  EXPECT_EQ(NextLink(R"(</a>; rel="nextish")"), "");
  EXPECT_EQ(NextLink(R"(</a>; rel="prev")"), "");
  EXPECT_EQ(NextLink(""), "");
  EXPECT_EQ(NextLink("garbage <unterminated"), "");
}

}  // namespace
}  // namespace registry
