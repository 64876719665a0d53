// Output formatting shared by the CLI's commands: sizes, durations and timestamps exactly as
// Docker prints them, Docker's aligned tables, and the subset of Go templates that `--format`
// accepts.
//
// Byte-for-byte parity with the docker CLI is the goal, because scripts parse this output; where a
// behaviour deliberately differs from Docker the comment on the declaration says so.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cli {

// ---- Sizes and durations (github.com/docker/go-units) ----

// Decimal units with 4 significant digits, as `docker images` shows SIZE: 1234 -> "1.234kB".
std::string HumanSize(double bytes);
// Binary units (KiB, MiB, ...) with 4 significant digits: 1536 -> "1.5KiB".
std::string BytesSize(double bytes);
// An approximate duration ("About a minute", "3 weeks"); negative durations read as
// "Less than a second", as in Docker, so clock skew never prints nonsense.
std::string HumanDuration(std::chrono::seconds d);
// "<HumanDuration(now - t)> ago", or "N/A" when the creation time is unknown (t <= 0).
std::string CreatedSince(int64_t unix_seconds, int64_t now);

// ---- Timestamps ----

// Docker's CreatedAt column: Go's time.Time.String() in local time,
// "2006-01-02 15:04:05 -0700 MST". The Engine API carries only whole seconds for this
// column, so `nanos` is accepted for symmetry with Rfc3339Nano but never printed.
std::string FormatTimestamp(int64_t unix_seconds, int32_t nanos);
// Go's time.RFC3339Nano in UTC: "2024-01-02T03:04:05.123456789Z", with trailing zeros of the
// fraction trimmed and no fraction at all when it is zero. `nanos` outside [0, 1e9) is carried
// into the seconds.
std::string Rfc3339Nano(int64_t unix_seconds, int32_t nanos);
// Parses RFC 3339 ("2024-01-02T03:04:05Z", "...05.5+02:00") into (unix seconds, nanoseconds in
// [0, 1e9)). Fractions longer than 9 digits are truncated, as Go does. nullopt when malformed or
// out of range (month 13, Feb 30, second 60).
std::optional<std::pair<int64_t, int32_t>> ParseRfc3339(std::string_view text);

// ---- Tables (Go's text/tabwriter as Docker configures it) ----

// Number of UTF-8 code points (an invalid byte counts as one): the width Go's tabwriter uses,
// which is not the terminal's column count for wide CJK or emoji.
size_t DisplayWidth(std::string_view utf8);

// Aligns tab-separated text exactly as tabwriter.NewWriter(out, 10, 1, 3, ' ', 0) does: every
// tab-terminated cell is padded to max(10, widest cell of its column block + 3); the text after a
// line's last tab is not part of any column and is never padded.
std::string TabWrite(std::string_view text);

// A table built from cells rather than from template output; renders through TabWrite so both
// paths align identically.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  void AddRow(std::vector<std::string> cells);
  // Writes the header line and then every row, each ending in '\n'. The header is written even
  // when there are no rows, as `docker images` does.
  void Render(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// ---- --format templates (a subset of Go's text/template plus Docker's helper functions) ----
//
// Supported: literal text; actions `{{.Field}}`, `{{.A.B}}`, `{{.}}`; string, number and bool
// literals; pipelines `{{.X | upper}}` and parenthesised arguments; trim markers `{{- ` and
// ` -}}`; comments `{{/* */}}`; functions json, join, split, upper, lower, title, index, len,
// pad, truncate, print, println. Control structures (if, range, with, ...) and variables are
// rejected with an error naming them.
//
// As in Docker, leading and trailing spaces of the template are dropped and the two-character
// sequences `\t` and `\n` become a tab and a newline before parsing.
//
// Values print as Go's fmt prints decoded JSON, with one deliberate difference: integral numbers
// always print as integers (Go would print a float64 1e6 as "1e+06"), because the fields we
// render are integers in Docker's typed structs. Missing fields and null print "<no value>".
// Where a function expects a string, array or integer, null counts as that type's zero value,
// the way Docker's typed structs hold "" or nil rather than nothing.
//
// On error returns "" and sets *error (when non-null) to a message in Go's style, e.g.
// `template: :1: function "foo" not defined`; on success *error is cleared.
std::string RenderTemplate(std::string_view tmpl, const nlohmann::json& obj, std::string* error);

// True when `format` asks for a table ("table" or "table <template>", Docker's prefix test);
// *rest (when non-null) receives the template after the prefix with surrounding spaces removed,
// or `format` unchanged when it is not a table. An empty *rest means "the default columns".
bool FormatIsTable(std::string_view format, std::string* rest);

// The header line of a table template: every action becomes the header of the first field it
// references (header_names["Repository"] -> "REPOSITORY", or for a nested path the key
// "Config.Env"), defaulting to the path in upper case; literal text, tabs included, is kept.
// Functions are ignored, so `{{json .Labels}}` heads its column "LABELS" as Docker's header
// functions do. Returns "" and sets *error on a malformed template.
std::string TemplateHeader(std::string_view tmpl,
                           const std::map<std::string, std::string>& header_names,
                           std::string* error = nullptr);

}  // namespace cli
