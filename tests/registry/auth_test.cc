// WWW-Authenticate parsing, Basic credentials, token requests and answers (registry/auth.h).
#include "registry/auth.h"

#include <gtest/gtest.h>

namespace registry {
namespace {

TEST(WwwAuthenticate, DockerHubBearer) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].Param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].Param("service"), "registry.docker.io");
  EXPECT_EQ(c[0].Param("scope"), "repository:library/busybox:pull");
}

TEST(WwwAuthenticate, BasicRealm) {
  auto c = ParseWwwAuthenticate(R"(Basic realm="strata-test")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].Param("realm"), "strata-test");
}

TEST(WwwAuthenticate, SchemeAndKeysAreCaseInsensitive) {
  auto c = ParseWwwAuthenticate(R"(BEARER Realm="r", SERVICE=svc)");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].Param("realm"), "r");
  EXPECT_EQ(c[0].Param("service"), "svc");
}

TEST(WwwAuthenticate, SeveralChallengesInOneHeader) {
  auto c = ParseWwwAuthenticate(R"(Basic realm="a", Bearer realm="https://t/token", service="s", Negotiate)");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].Param("realm"), "a");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].Param("realm"), "https://t/token");
  EXPECT_EQ(c[1].Param("service"), "s");
  EXPECT_EQ(c[2].scheme, "negotiate");
  EXPECT_TRUE(c[2].params.empty());
}

TEST(WwwAuthenticate, QuotedCommasAndEscapes) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://x/token",scope="repository:a:pull,push repository:b:pull",error="say \"hi\"")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].Param("scope"), "repository:a:pull,push repository:b:pull");
  EXPECT_EQ(c[0].Param("error"), "say \"hi\"");
}

TEST(WwwAuthenticate, InsufficientScopeError) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:app:pull,push",error="insufficient_scope")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].Param("error"), "insufficient_scope");
  EXPECT_EQ(c[0].Param("scope"), "repository:app:pull,push");
}

TEST(WwwAuthenticate, Token68IsSkipped) {
  auto c = ParseWwwAuthenticate("Negotiate YWxhZGRpbjpvcGVu==, Basic realm=\"r\"");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "negotiate");
  EXPECT_EQ(c[1].scheme, "basic");
  EXPECT_EQ(c[1].Param("realm"), "r");
}

TEST(WwwAuthenticate, SpacesAroundEquals) {
  auto c = ParseWwwAuthenticate(R"(Bearer realm = "r" , service = s)");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].Param("realm"), "r");
  EXPECT_EQ(c[0].Param("service"), "s");
}

TEST(WwwAuthenticate, EmptyAndGarbage) {
  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("  ,  ").empty());
  // Garbage does not crash and does not invent parameters.
  auto c = ParseWwwAuthenticate("=== \"unterminated");
  for (const auto& ch : c) EXPECT_TRUE(ch.Param("realm").empty());
  auto d = ParseWwwAuthenticate(R"(Bearer realm="unterminated)");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].Param("realm"), "unterminated");
}

TEST(Base64, RoundTripsAllLengths) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    auto decoded = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, data);
    data.push_back(static_cast<char>(i * 37));
  }
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(*Base64Decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(*Base64Decode("dXNlcg"), "user");  // unpadded
}

TEST(Base64, RejectsInvalidWithoutEchoingIt) {
  auto r = Base64Decode("c2VjcmV0!!");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("c2VjcmV0"), std::string::npos);
}

TEST(Auth, BasicAuthorization) {
  EXPECT_EQ(BasicAuthorization({"alice", "s3cret:with:colons", ""}), "Basic " + Base64Encode("alice:s3cret:with:colons"));
}

TEST(Auth, TokenUrl) {
  Challenge c;
  c.scheme = "bearer";
  c.params = {{"realm", "https://auth.example.com/token"}, {"service", "registry example"}};
  EXPECT_EQ(TokenUrl(c, {RepositoryScope("library/busybox", "pull"), "registry:catalog:*"}),
            "https://auth.example.com/token?service=registry%20example&scope=repository%3Alibrary%2Fbusybox%3Apull"
            "&scope=registry%3Acatalog%3A%2A");
  c.params["realm"] = "https://auth.example.com/token?x=1";
  EXPECT_EQ(TokenUrl(c, {}), "https://auth.example.com/token?x=1&service=registry%20example");
}

TEST(Auth, ParseTokenResponse) {
  auto now = std::chrono::steady_clock::now();
  auto t = ParseTokenResponse(R"({"token":"abc","expires_in":300})", now);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "abc");
  EXPECT_EQ(t->expires, now + std::chrono::seconds(290));
  auto a = ParseTokenResponse(R"({"access_token":"xyz"})", now);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value, "xyz");
  EXPECT_EQ(a->expires, now + std::chrono::seconds(50));  // default 60 s, renewed 10 s early
  // A too-short lifetime is raised to the spec's minimum.
  EXPECT_EQ(ParseTokenResponse(R"({"token":"t","expires_in":5})", now)->expires, now + std::chrono::seconds(50));
  EXPECT_FALSE(ParseTokenResponse(R"({"expires_in":5})", now).ok());
  EXPECT_FALSE(ParseTokenResponse("not json", now).ok());
  EXPECT_FALSE(ParseTokenResponse(R"({"token":""})", now).ok());
}

}  // namespace
}  // namespace registry
