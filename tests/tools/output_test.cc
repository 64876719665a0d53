// Pins the CLI's output strings to what the docker CLI prints, so a refactor cannot drift from
// the format scripts depend on.
#include "output.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "progress.h"

namespace cli {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr int64_t kDay = 24 * 3600;

TEST(HumanSizeTest, MatchesGoUnits) {
  EXPECT_EQ(HumanSize(0), "0B");
  EXPECT_EQ(HumanSize(999), "999B");
  EXPECT_EQ(HumanSize(1000), "1kB");
  EXPECT_EQ(HumanSize(1234), "1.234kB");
  EXPECT_EQ(HumanSize(4860000), "4.86MB");
  EXPECT_EQ(HumanSize(1.2e9), "1.2GB");
  EXPECT_EQ(HumanSize(2.5e12), "2.5TB");
  EXPECT_EQ(HumanSize(7799999), "7.8MB");
  // go-units divides only while >= 1000, so rounding up to 4 digits can print "1000kB".
  EXPECT_EQ(HumanSize(999999), "1000kB");
  EXPECT_EQ(HumanSize(1e27), "1000YB");
}

TEST(BytesSizeTest, MatchesGoUnits) {
  EXPECT_EQ(BytesSize(0), "0B");
  EXPECT_EQ(BytesSize(1023), "1023B");
  EXPECT_EQ(BytesSize(1536), "1.5KiB");
  EXPECT_EQ(BytesSize(1048576), "1MiB");
  EXPECT_EQ(BytesSize(5.5 * 1024 * 1024 * 1024), "5.5GiB");
}

TEST(HumanDurationTest, Boundaries) {
  EXPECT_EQ(HumanDuration(seconds(-5)), "Less than a second");
  EXPECT_EQ(HumanDuration(seconds(0)), "Less than a second");
  EXPECT_EQ(HumanDuration(seconds(1)), "1 second");
  EXPECT_EQ(HumanDuration(seconds(2)), "2 seconds");
  EXPECT_EQ(HumanDuration(seconds(59)), "59 seconds");
  EXPECT_EQ(HumanDuration(seconds(60)), "About a minute");
  EXPECT_EQ(HumanDuration(seconds(119)), "About a minute");
  EXPECT_EQ(HumanDuration(seconds(120)), "2 minutes");
  EXPECT_EQ(HumanDuration(minutes(59) + seconds(59)), "59 minutes");
  EXPECT_EQ(HumanDuration(hours(1)), "About an hour");
  // Hours round to nearest: 1h29m is still "about an hour", 1h30m is 2 hours.
  EXPECT_EQ(HumanDuration(hours(1) + minutes(29) + seconds(59)), "About an hour");
  EXPECT_EQ(HumanDuration(hours(1) + minutes(30)), "2 hours");
  EXPECT_EQ(HumanDuration(hours(47)), "47 hours");
  EXPECT_EQ(HumanDuration(hours(47) + minutes(30)), "2 days");
  EXPECT_EQ(HumanDuration(hours(48)), "2 days");
  EXPECT_EQ(HumanDuration(seconds(13 * kDay)), "13 days");
  EXPECT_EQ(HumanDuration(seconds(13 * kDay + 5 * 3600)), "13 days");
  EXPECT_EQ(HumanDuration(seconds(14 * kDay)), "2 weeks");
  EXPECT_EQ(HumanDuration(seconds(30 * kDay)), "4 weeks");
  EXPECT_EQ(HumanDuration(seconds(59 * kDay)), "8 weeks");
  // go-units switches to months at 60 days, so 12 weeks is already "2 months".
  EXPECT_EQ(HumanDuration(seconds(60 * kDay)), "2 months");
  EXPECT_EQ(HumanDuration(seconds(12 * 7 * kDay)), "2 months");
  EXPECT_EQ(HumanDuration(seconds(90 * kDay)), "3 months");
  EXPECT_EQ(HumanDuration(seconds(24 * 30 * kDay)), "24 months");
  EXPECT_EQ(HumanDuration(seconds(2 * 365 * kDay)), "2 years");
  EXPECT_EQ(HumanDuration(seconds(3 * 365 * kDay + 60 * kDay)), "3 years");
}

TEST(CreatedSinceTest, AddsAgoOrNA) {
  const int64_t now = 1727386302;
  EXPECT_EQ(CreatedSince(now - 3 * 7 * kDay, now), "3 weeks ago");
  EXPECT_EQ(CreatedSince(now - 10, now), "10 seconds ago");
  EXPECT_EQ(CreatedSince(now + 100, now), "Less than a second ago");
  EXPECT_EQ(CreatedSince(0, now), "N/A");
  EXPECT_EQ(CreatedSince(-1, now), "N/A");
}

// Sets TZ for one test and puts the previous value back.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    const char* old = std::getenv("TZ");
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (had_old_) {
      setenv("TZ", old_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  bool had_old_ = false;
  std::string old_;
};

TEST(TimestampTest, FormatTimestampIsGoTimeString) {
  {
    ScopedTz tz("UTC0");
    EXPECT_EQ(FormatTimestamp(1727386302, 0), "2024-09-26 21:31:42 +0000 UTC");
    EXPECT_EQ(FormatTimestamp(1727386302, 999), "2024-09-26 21:31:42 +0000 UTC");
  }
  {
    // POSIX TZ: "XYZ" is 2h30m east of UTC; needs no tzdata.
    ScopedTz tz("XYZ-2:30");
    EXPECT_EQ(FormatTimestamp(1727386302, 0), "2024-09-27 00:01:42 +0230 XYZ");
  }
}

TEST(TimestampTest, Rfc3339Nano) {
  EXPECT_EQ(Rfc3339Nano(1704164645, 0), "2024-01-02T03:04:05Z");
  EXPECT_EQ(Rfc3339Nano(1704164645, 123456789), "2024-01-02T03:04:05.123456789Z");
  EXPECT_EQ(Rfc3339Nano(1704164645, 120000000), "2024-01-02T03:04:05.12Z");
  EXPECT_EQ(Rfc3339Nano(0, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339Nano(-1, 500000000), "1969-12-31T23:59:59.5Z");
  EXPECT_EQ(Rfc3339Nano(951782400, 0), "2000-02-29T00:00:00Z");
  EXPECT_EQ(Rfc3339Nano(1704164645, 1500000000), "2024-01-02T03:04:06.5Z");
}

TEST(TimestampTest, ParseRfc3339) {
  using P = std::pair<int64_t, int32_t>;
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05Z"), P(1704164645, 0));
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05.123456789Z"), P(1704164645, 123456789));
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05.5Z"), P(1704164645, 500000000));
  EXPECT_EQ(ParseRfc3339("2024-01-02T03:04:05.1234567891Z"), P(1704164645, 123456789));
  EXPECT_EQ(ParseRfc3339("2024-01-02T05:04:05+02:00"), P(1704164645, 0));
  EXPECT_EQ(ParseRfc3339("2024-01-01T22:34:05.25-04:30"), P(1704164645, 250000000));
  EXPECT_EQ(ParseRfc3339("1969-12-31T23:59:59Z"), P(-1, 0));
  EXPECT_EQ(ParseRfc3339("2000-02-29T00:00:00Z"), P(951782400, 0));

  EXPECT_FALSE(ParseRfc3339(""));
  EXPECT_FALSE(ParseRfc3339("2024-01-02T03:04:05"));       // no zone
  EXPECT_FALSE(ParseRfc3339("2024-01-02 03:04:05Z"));      // space separator
  EXPECT_FALSE(ParseRfc3339("2024-13-02T03:04:05Z"));      // month 13
  EXPECT_FALSE(ParseRfc3339("2023-02-29T03:04:05Z"));      // not a leap year
  EXPECT_FALSE(ParseRfc3339("2024-01-02T24:00:00Z"));      // hour 24
  EXPECT_FALSE(ParseRfc3339("2024-01-02T03:04:05.Z"));     // empty fraction
  EXPECT_FALSE(ParseRfc3339("2024-01-02T03:04:05+0200"));  // offset without colon
  EXPECT_FALSE(ParseRfc3339("2024-01-02T03:04:05Zjunk"));  // trailing text
}

TEST(TimestampTest, RoundTrip) {
  for (const char* text : {"2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000000001Z",
                           "1999-12-31T23:59:59.999Z", "1960-06-15T12:00:00.5Z"}) {
    auto parsed = ParseRfc3339(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(Rfc3339Nano(parsed->first, parsed->second), text);
  }
}

TEST(DisplayWidthTest, CountsCodePoints) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("h\xc3\xa9llo"), 5u);      // é is two bytes
  EXPECT_EQ(DisplayWidth("\xe2\x82\xac"), 1u);      // €
  EXPECT_EQ(DisplayWidth("\xf0\x9f\x90\xb3"), 1u);  // 🐳
  EXPECT_EQ(DisplayWidth("a\xff"
                         "b"),
            3u);  // a bad byte counts as one
}

TEST(TableTest, DockerAlignment) {
  Table table({"REPOSITORY", "TAG", "IMAGE ID"});
  table.AddRow({"busybox", "latest", "af4709625109"});
  table.AddRow({"alpine", "3.20", "91ef0af61f39"});
  std::ostringstream out;
  table.Render(out);
  // Column width = max(10, widest + 3); the last column is never padded.
  EXPECT_EQ(out.str(),
            "REPOSITORY   TAG       IMAGE ID\n"
            "busybox      latest    af4709625109\n"
            "alpine       3.20      91ef0af61f39\n");
}

TEST(TableTest, HeaderOnlyAndUtf8) {
  Table empty({"A", "B"});
  std::ostringstream out;
  empty.Render(out);
  EXPECT_EQ(out.str(), "A         B\n");

  Table table({"NAME", "X"});
  table.AddRow({"h\xc3\xa9llo-w\xc3\xb6rld!", "1"});  // 12 code points, 14 bytes
  std::ostringstream out2;
  table.Render(out2);
  // The column is 12 code points + 3 wide, not 14 bytes + 3.
  EXPECT_EQ(out2.str(), "NAME" + std::string(11, ' ') + "X\n" + "h\xc3\xa9llo-w\xc3\xb6rld!   1\n");
}

TEST(TabWriteTest, ColumnBlocksAndPartialLines) {
  // A line without tabs ends the column block: the lines after it align on their own.
  EXPECT_EQ(TabWrite("aaaaaaaaaaaaaa\tx\nno tabs here\nb\ty\n"),
            "aaaaaaaaaaaaaa   x\n"
            "no tabs here\n"
            "b         y\n");
  // A cell ending in a tab is padded even when it is the last one on its line.
  EXPECT_EQ(TabWrite("a\tb\t\n"), "a         b         \n");
  // Text after the final newline is written without one.
  EXPECT_EQ(TabWrite("a\tb"), "a         b");
  EXPECT_EQ(TabWrite(""), "");
}

TEST(TabWriteTest, ManPageExample) {
  std::string text;
  const std::map<std::string, std::string> names = {{"Repository", "REPOSITORY"},
                                                    {"Tag", "TAG"},
                                                    {"ID", "IMAGE ID"},
                                                    {"CreatedSince", "CREATED"},
                                                    {"Size", "SIZE"}};
  const std::string format =
      "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";
  std::string tmpl;
  ASSERT_TRUE(FormatIsTable(format, &tmpl));
  std::string error;
  text += TemplateHeader(tmpl, names, &error) + "\n";
  ASSERT_EQ(error, "");
  for (const auto& row : {nlohmann::json{{"Repository", "busybox"},
                                         {"Tag", "latest"},
                                         {"ID", "af4709625109"},
                                         {"CreatedSince", "3 weeks ago"},
                                         {"Size", "4.26MB"}},
                          nlohmann::json{{"Repository", "<none>"},
                                         {"Tag", "<none>"},
                                         {"ID", "0ae6c3e1c8a5"},
                                         {"CreatedSince", "4 months ago"},
                                         {"Size", "7.79MB"}}}) {
    text += RenderTemplate(tmpl, row, &error) + "\n";
    ASSERT_EQ(error, "");
  }
  EXPECT_EQ(TabWrite(text),
            "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE\n"
            "busybox      latest    af4709625109   3 weeks ago    4.26MB\n"
            "<none>       <none>    0ae6c3e1c8a5   4 months ago   7.79MB\n");
}

class TemplateTest : public ::testing::Test {
 protected:
  TemplateTest() {
    obj_ = nlohmann::json::parse(R"({
      "Repository": "busybox",
      "Tag": "latest",
      "Size": 4260000,
      "Negative": -3,
      "Float": 1.5,
      "WholeFloat": 1000000.0,
      "Tiny": 0.00001,
      "Flag": true,
      "Nothing": null,
      "RepoTags": ["a", "b", "c"],
      "Empty": [],
      "Mixed": [1, "x", null, true],
      "Config": {"Env": ["PATH=/bin", "A=b"], "Labels": {"maintainer": "me", "k": "v"}}
    })");
  }

  // Renders and expects success.
  std::string Render(std::string_view tmpl) {
    std::string error;
    std::string out = RenderTemplate(tmpl, obj_, &error);
    EXPECT_EQ(error, "") << "template: " << tmpl;
    return out;
  }

  // Renders and expects failure; returns the error.
  std::string Error(std::string_view tmpl) {
    std::string error;
    EXPECT_EQ(RenderTemplate(tmpl, obj_, &error), "") << "template: " << tmpl;
    EXPECT_NE(error, "") << "template: " << tmpl;
    return error;
  }

  nlohmann::json obj_;
};

TEST_F(TemplateTest, LiteralsAndFields) {
  EXPECT_EQ(Render("plain text"), "plain text");
  EXPECT_EQ(Render("{{.Repository}}:{{.Tag}}"), "busybox:latest");
  EXPECT_EQ(Render("{{ .Repository }}"), "busybox");
  EXPECT_EQ(Render("{{.Config.Env}}"), "[PATH=/bin A=b]");
  EXPECT_EQ(Render("{{.Config.Labels}}"), "map[k:v maintainer:me]");
  EXPECT_EQ(Render("{{.Config.Labels.k}}"), "v");
}

TEST_F(TemplateTest, ValuesPrintAsGo) {
  EXPECT_EQ(Render("{{.Size}}"), "4260000");
  EXPECT_EQ(Render("{{.Negative}}"), "-3");
  EXPECT_EQ(Render("{{.Float}}"), "1.5");
  EXPECT_EQ(Render("{{.WholeFloat}}"), "1000000");
  EXPECT_EQ(Render("{{.Tiny}}"), "1e-05");
  EXPECT_EQ(Render("{{.Flag}}"), "true");
  EXPECT_EQ(Render("{{.RepoTags}}"), "[a b c]");
  EXPECT_EQ(Render("{{.Empty}}"), "[]");
  EXPECT_EQ(Render("{{.Mixed}}"), "[1 x <nil> true]");
  EXPECT_EQ(Render("{{.Nothing}}"), "<no value>");
  EXPECT_EQ(Render("{{.Missing}}"), "<no value>");
  EXPECT_EQ(Render("{{.Missing.Deeper}}"), "<no value>");
  EXPECT_EQ(Render("{{\"lit\"}} {{42}} {{true}}"), "lit 42 true");
}

TEST_F(TemplateTest, Json) {
  EXPECT_EQ(Render("{{json .RepoTags}}"), R"(["a","b","c"])");
  EXPECT_EQ(Render("{{json .Config}}"),
            R"({"Env":["PATH=/bin","A=b"],"Labels":{"k":"v","maintainer":"me"}})");
  EXPECT_EQ(Render("{{json .Tag}}"), R"("latest")");
  EXPECT_EQ(Render("{{json .Missing}}"), "null");
  EXPECT_EQ(Render("{{json .Size}}"), "4260000");
  EXPECT_EQ(Render("{{json .WholeFloat}}"), "1000000");  // Go writes whole floats bare
  EXPECT_EQ(Render("{{json .Float}}"), "1.5");
  nlohmann::json small = {{"b", 1}, {"a", "x<y&z"}};
  std::string error;
  // Keys sorted and no HTML escaping, as Docker's encoder is configured.
  EXPECT_EQ(RenderTemplate("{{json .}}", small, &error), R"({"a":"x<y&z","b":1})");
  EXPECT_EQ(error, "");
}

TEST_F(TemplateTest, Functions) {
  EXPECT_EQ(Render("{{join .RepoTags \",\"}}"), "a,b,c");
  EXPECT_EQ(Render("{{join .Empty \",\"}}"), "");
  EXPECT_EQ(Render("{{join .Missing \",\"}}"), "");
  EXPECT_EQ(Render("{{upper .Tag}}"), "LATEST");
  EXPECT_EQ(Render("{{lower \"MiXeD\"}}"), "mixed");
  EXPECT_EQ(Render("{{title \"hello big-world\"}}"), "Hello Big-World");
  EXPECT_EQ(Render("{{index .Config.Labels \"maintainer\"}}"), "me");
  EXPECT_EQ(Render("{{index .Config.Labels \"absent\"}}"), "");
  EXPECT_EQ(Render("{{index .RepoTags 1}}"), "b");
  EXPECT_EQ(Render("{{len .RepoTags}}"), "3");
  EXPECT_EQ(Render("{{pad .Tag 1 2}}|"), " latest  |");
  EXPECT_EQ(Render("{{truncate .Repository 4}}"), "busy");
  EXPECT_EQ(Render("{{join (split \"a:b:c\" \":\") \"-\"}}"), "a-b-c");
  EXPECT_EQ(Render("{{.Tag | upper}}"), "LATEST");
  EXPECT_EQ(Render("{{.RepoTags | json}}"), R"(["a","b","c"])");
  EXPECT_EQ(Render("{{print .Tag 1 2}}"), "latest1 2");
  EXPECT_EQ(Render("{{println .Tag}}"), "latest\n");
}

TEST_F(TemplateTest, EscapesTrimAndComments) {
  EXPECT_EQ(Render("{{.Repository}}\\t{{.Tag}}\\n"), "busybox\tlatest\n");
  EXPECT_EQ(Render("  {{.Tag}}  "), "latest");  // Docker trims spaces around the format
  EXPECT_EQ(Render("a  {{- .Tag -}}  b"), "alatestb");
  EXPECT_EQ(Render("a\n\t{{- .Tag}}"), "alatest");
  EXPECT_EQ(Render("{{.Tag -}}\\t|"), "latest|");
  EXPECT_EQ(Render("a{{/* a comment */}}b"), "ab");
  EXPECT_EQ(Render("a {{- /* trimmed */ -}} b"), "ab");
  EXPECT_EQ(Render("{{\"}}\"}}"), "}}");
  EXPECT_EQ(Render("{{-3}}"), "-3");
}

TEST_F(TemplateTest, Errors) {
  EXPECT_EQ(Error("{{foo .Tag}}"), "template: :1: function \"foo\" not defined");
  EXPECT_EQ(Error("{{.Tag"), "template: :1: unclosed action");
  EXPECT_EQ(Error("line1\nline2 {{.Tag"), "template: :2: unclosed action");
  EXPECT_EQ(Error("{{}}"), "template: :1: missing value for command");
  EXPECT_EQ(Error("{{if .Tag}}x{{end}}"), "template: :1: unsupported action \"if\"");
  EXPECT_EQ(Error("{{range .RepoTags}}{{.}}{{end}}"), "template: :1: unsupported action \"range\"");
  EXPECT_EQ(Error("{{$x := 1}}"), "template: :1: variables are not supported");
  EXPECT_EQ(Error("{{\"open}}"), "template: :1: unclosed action");
  EXPECT_EQ(Error("{{(.Tag}}"), "template: :1: unclosed left paren");
  EXPECT_EQ(Error("{{.Tag.X}}"), "template: :1: executing: can't evaluate field X in type string");
  EXPECT_EQ(Error("{{.Tag 1}}"), "template: :1: executing: can't give argument to non-function");
  EXPECT_EQ(Error("{{index .RepoTags 5}}"),
            "template: :1: executing: error calling index: index out of range: 5");
  EXPECT_EQ(Error("{{upper .Size}}"),
            "template: :1: executing: wrong type for value; expected string; got float64");
  EXPECT_EQ(Error("{{join .RepoTags}}"),
            "template: :1: executing: wrong number of args for join: want 2 got 1");
  EXPECT_EQ(Error("{{/* unclosed"), "template: :1: unclosed comment");

  // A null error pointer is allowed.
  EXPECT_EQ(RenderTemplate("{{nope}}", obj_, nullptr), "");
}

TEST(FormatIsTableTest, Prefix) {
  std::string rest;
  EXPECT_TRUE(FormatIsTable("table {{.Repository}}\\t{{.Tag}}", &rest));
  EXPECT_EQ(rest, "{{.Repository}}\\t{{.Tag}}");
  EXPECT_TRUE(FormatIsTable("table", &rest));
  EXPECT_EQ(rest, "");
  EXPECT_FALSE(FormatIsTable("{{.ID}}", &rest));
  EXPECT_EQ(rest, "{{.ID}}");
  EXPECT_FALSE(FormatIsTable("json", nullptr));
}

TEST(TemplateHeaderTest, NamesColumns) {
  const std::map<std::string, std::string> names = {
      {"Repository", "REPOSITORY"}, {"ID", "IMAGE ID"}, {"Config.Env", "ENVIRONMENT"}};
  EXPECT_EQ(TemplateHeader("{{.Repository}}\\t{{.ID}}", names), "REPOSITORY\tIMAGE ID");
  EXPECT_EQ(TemplateHeader("{{.CreatedSince}}\t{{json .Labels}}", names), "CREATEDSINCE\tLABELS");
  EXPECT_EQ(TemplateHeader("{{.Config.Env}} / {{upper .Tag}}", names), "ENVIRONMENT / TAG");
  std::string error;
  EXPECT_EQ(TemplateHeader("{{.Repository", names, &error), "");
  EXPECT_EQ(error, "template: :1: unclosed action");
}

// Reads back everything written to a tmpfile().
std::string ReadAll(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fseek(f, 0, SEEK_END);  // the writer appends next; switching direction needs a seek
  return out;
}

TEST(TerminalProgressTest, PlainLinesWhenNotATerminal) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    TerminalProgress progress(f, /*is_tty=*/false, /*quiet=*/false);
    progress.Begin("af4709625109", "Loading layer", 4860000);
    for (uint64_t done = 0; done <= 4860000; done += 32768) progress.Update("af4709625109", done);
    progress.Begin("0ae6c3e1c8a5", "Loading layer", 0);
    progress.End("af4709625109", "Loaded");
    progress.End("0ae6c3e1c8a5", "Already exists");
    progress.Note("Loaded 2 layers");
  }
  EXPECT_EQ(ReadAll(f),
            "af4709625109: Loading layer\n"
            "0ae6c3e1c8a5: Loading layer\n"
            "af4709625109: Loaded\n"
            "0ae6c3e1c8a5: Already exists\n"
            "Loaded 2 layers\n");
  std::fclose(f);
}

TEST(TerminalProgressTest, QuietPrintsNothing) {
  for (bool tty : {false, true}) {
    FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    {
      TerminalProgress progress(f, tty, /*quiet=*/true);
      progress.Begin("abc", "Loading layer", 10);
      progress.Update("abc", 5);
      progress.End("abc", "Loaded");
      progress.Note("note");
    }
    EXPECT_EQ(ReadAll(f), "");
    std::fclose(f);
  }
}

TEST(TerminalProgressTest, RedrawsInPlaceOnATerminal) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  // A tmpfile has no window size, so the display assumes 80 columns.
  TerminalProgress progress(f, /*is_tty=*/true, /*quiet=*/false, [&now] { return now; });

  progress.Begin("abc", "Loading layer", 4860000);
  // "abc: Loading layer" (18) + " " + bar + "      0B/4.86MB" (15) in 79 columns leaves a bar of
  // 41 cells.
  std::string expected =
      "\x1b[2Kabc: Loading layer [>" + std::string(41, ' ') + "]       0B/4.86MB\n";
  EXPECT_EQ(ReadAll(f), expected);

  progress.Update("abc", 1000);  // within the redraw interval: not drawn
  EXPECT_EQ(ReadAll(f), expected);

  now += std::chrono::milliseconds(150);
  progress.Update("abc", 2430000);
  expected += "\x1b[1A\r\x1b[2Kabc: Loading layer [" + std::string(20, '=') + ">" +
              std::string(21, ' ') + "]   2.43MB/4.86MB\x1b[1B\r";
  EXPECT_EQ(ReadAll(f), expected);

  progress.Begin("def", "Loading layer", 0);
  expected += "\x1b[2Kdef: Loading layer\n";
  EXPECT_EQ(ReadAll(f), expected);

  // End draws at once even inside the interval, two lines up.
  progress.End("abc", "Loaded");
  expected += "\x1b[2A\r\x1b[2Kabc: Loaded\x1b[2B\r";
  EXPECT_EQ(ReadAll(f), expected);

  now += std::chrono::milliseconds(150);
  progress.Update("def", 1234);  // unknown total: the size alone
  expected += "\x1b[1A\r\x1b[2Kdef: Loading layer  1.234kB\x1b[1B\r";
  EXPECT_EQ(ReadAll(f), expected);

  progress.End("def", "Loaded");
  expected += "\x1b[1A\r\x1b[2Kdef: Loaded\x1b[1B\r";
  progress.Note("all done");
  expected += "\x1b[2Kall done\n";
  EXPECT_EQ(ReadAll(f), expected);
  std::fclose(f);
}

}  // namespace
}  // namespace cli
