#include "output.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <set>

namespace cli {
namespace {

// ---- Sizes ----

constexpr const char* kDecimalUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
constexpr const char* kBinaryUnits[] = {"B",   "KiB", "MiB", "GiB", "TiB",
                                        "PiB", "EiB", "ZiB", "YiB"};

// go-units' getSizeAndUnit + "%.4g%s". C's %g and Go's %g agree for finite values (same
// exponent threshold, trailing zeros removed, two-digit exponent); only NaN and Inf are
// spelled differently, so those are special-cased.
template <size_t N>
std::string FormatSize(double size, double base, const char* const (&units)[N]) {
  if (std::isnan(size)) return std::string("NaN") + units[0];
  size_t i = 0;
  while (size >= base && i < N - 1) {
    size /= base;
    ++i;
  }
  if (std::isinf(size)) return std::string(size > 0 ? "+Inf" : "-Inf") + units[i];
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4g%s", size, units[i]);
  return buf;
}

// ---- Calendar arithmetic (proleptic Gregorian, days relative to 1970-01-01) ----

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2 ? 1 : 0);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Reads exactly `n` decimal digits at text[*pos].
bool ReadDigits(std::string_view text, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > text.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

// ---- Go's %v for decoded JSON ----

// strconv.FormatFloat(v, 'g', -1, 64): shortest round-trip digits, exponent form when the
// decimal exponent is < -4 or >= 6 (Go's fixed choice for shortest %g).
std::string GoShortestFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  std::string sign;
  if (!s.empty() && s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (exp < -4 || exp >= 6) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + ebuf;
  }
  const int dp = exp + 1;  // digits before the decimal point
  std::string out;
  if (dp <= 0) {
    out = "0." + std::string(static_cast<size_t>(-dp), '0') + digits;
  } else if (static_cast<size_t>(dp) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(dp) - digits.size(), '0');
  } else {
    out = digits.substr(0, static_cast<size_t>(dp)) + "." + digits.substr(static_cast<size_t>(dp));
  }
  return sign + out;
}

std::string FormatNumber(const nlohmann::json& v) {
  if (v.is_number_integer()) {
    return v.is_number_unsigned() ? std::to_string(v.get<uint64_t>())
                                  : std::to_string(v.get<int64_t>());
  }
  double d = v.get<double>();
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return GoShortestFloat(d);
}

// fmt's %v of an interface{} holding decoded JSON; `top` distinguishes text/template's
// "<no value>" for a missing value from fmt's "<nil>" for a nil inside a slice or map.
std::string GoText(const nlohmann::json& v, bool top) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return top ? "<no value>" : "<nil>";
    case nlohmann::json::value_t::string:
      return v.get_ref<const std::string&>();
    case nlohmann::json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return FormatNumber(v);
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ' ';
        first = false;
        out += GoText(e, false);
      }
      return out + "]";
    }
    case nlohmann::json::value_t::object: {
      // nlohmann::json keeps keys sorted, which is also the order fmt prints maps in.
      std::string out = "map[";
      bool first = true;
      for (const auto& [key, value] : v.items()) {
        if (!first) out += ' ';
        first = false;
        out += key + ":" + GoText(value, false);
      }
      return out + "]";
    }
    case nlohmann::json::value_t::binary:
      return "[]";
  }
  return "";
}

// Go's type names, for error messages that read like the docker CLI's.
std::string GoTypeName(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::boolean:
      return "bool";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "float64";
    case nlohmann::json::value_t::array:
      return "[]interface {}";
    case nlohmann::json::value_t::object:
      return "map[string]interface {}";
    default:
      return "<nil>";
  }
}

// ---- Template lexing and parsing ----

struct Pipeline;

struct Operand {
  enum class Kind { kField, kFunction, kLiteral, kPipeline };
  Kind kind = Kind::kLiteral;
  std::vector<std::string> path;  // kField: names after the dot; kPipeline: fields after ')'
  std::string name;               // kFunction
  nlohmann::json literal;         // kLiteral
  std::shared_ptr<Pipeline> sub;  // kPipeline
};

struct Command {
  std::vector<Operand> operands;
};

struct Pipeline {
  std::vector<Command> commands;
};

struct Segment {
  bool is_action = false;
  std::string text;  // literal text
  Pipeline pipeline;
  int line = 1;
};

enum class TokenKind { kField, kIdent, kLiteral, kPipe, kLeftParen, kRightParen, kEnd };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::vector<std::string> path;  // kField
  std::string text;               // kIdent
  nlohmann::json value;           // kLiteral
  bool space_before = false;      // a field right after ')' chains onto it only without a space
};

using FunctionImpl = std::function<bool(const std::vector<nlohmann::json>& args,
                                        nlohmann::json* out, std::string* err)>;

struct Function {
  size_t min_args;
  size_t max_args;  // SIZE_MAX for variadic
  FunctionImpl impl;
};

const std::map<std::string, Function>& Functions();

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// Go allows Unicode letters in identifiers; any non-ASCII byte is let through as part of one.
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class ActionParser {
 public:
  ActionParser(std::string_view src, int line, std::string* error)
      : src_(src), line_(line), error_(error) {}

  bool Parse(Pipeline* out) {
    if (!Lex()) return false;
    if (tokens_.size() == 1) return Fail("missing value for command");
    if (!ParsePipeline(out)) return false;
    if (Peek().kind == TokenKind::kRightParen) return Fail("unexpected right paren");
    if (Peek().kind != TokenKind::kEnd) return Fail("unexpected token in command");
    return true;
  }

 private:
  bool Fail(const std::string& message) {
    if (error_ != nullptr) *error_ = "template: :" + std::to_string(line_) + ": " + message;
    return false;
  }

  bool LexQuoted(size_t* pos, std::string* out) {
    size_t i = *pos + 1;
    while (true) {
      if (i >= src_.size() || src_[i] == '\n') return Fail("unterminated quoted string");
      char c = src_[i];
      if (c == '"') break;
      if (c != '\\') {
        *out += c;
        ++i;
        continue;
      }
      if (++i >= src_.size()) return Fail("unterminated quoted string");
      char e = src_[i++];
      switch (e) {
        case 'n':
          *out += '\n';
          break;
        case 't':
          *out += '\t';
          break;
        case 'r':
          *out += '\r';
          break;
        case 'a':
          *out += '\a';
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'v':
          *out += '\v';
          break;
        case '\\':
          *out += '\\';
          break;
        case '"':
          *out += '"';
          break;
        case '\'':
          *out += '\'';
          break;
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n > src_.size()) return Fail("invalid syntax in quoted string");
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            char h = src_[i + k];
            int d = IsDigit(h)               ? h - '0'
                    : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                             : -1;
            if (d < 0) return Fail("invalid syntax in quoted string");
            cp = cp * 16 + static_cast<uint32_t>(d);
          }
          i += n;
          if (e == 'x') {
            *out += static_cast<char>(cp);
          } else {
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
              return Fail("invalid syntax in quoted string");
            }
            AppendUtf8(cp, out);
          }
          break;
        }
        default:
          return Fail("invalid syntax in quoted string");
      }
    }
    *pos = i + 1;
    return true;
  }

  bool LexNumber(size_t* pos, nlohmann::json* out) {
    size_t start = *pos;
    size_t i = start;
    if (src_[i] == '+' || src_[i] == '-') ++i;
    while (i < src_.size()) {
      char c = src_[i];
      bool exponent_sign =
          (c == '+' || c == '-') && i > start && (src_[i - 1] == 'e' || src_[i - 1] == 'E');
      if (!IsNameChar(c) && c != '.' && !exponent_sign) break;
      ++i;
    }
    std::string text;
    for (size_t k = start; k < i; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    *pos = i;
    const bool hex = text.find("0x") != std::string::npos || text.find("0X") != std::string::npos;
    const bool is_float = !hex && text.find_first_of(".eE") != std::string::npos;
    char* end = nullptr;
    errno = 0;
    if (is_float) {
      double d = std::strtod(text.c_str(), &end);
      if (*end == '\0' && errno == 0) {
        *out = d;
        return true;
      }
    } else {
      long long v = std::strtoll(text.c_str(), &end, 0);
      if (*end == '\0' && errno == 0 && !text.empty()) {
        *out = static_cast<int64_t>(v);
        return true;
      }
    }
    return Fail("bad number syntax: \"" + std::string(src_.substr(start, i - start)) + "\"");
  }

  bool Lex() {
    size_t i = 0;
    bool space = true;
    while (i < src_.size()) {
      char c = src_[i];
      if (IsSpace(c)) {
        space = true;
        ++i;
        continue;
      }
      Token tok;
      tok.space_before = space;
      space = false;
      const bool signed_number = (c == '+' || c == '-') && i + 1 < src_.size() &&
                                 (IsDigit(src_[i + 1]) || src_[i + 1] == '.');
      if (c == '|') {
        tok.kind = TokenKind::kPipe;
        ++i;
      } else if (c == '(') {
        tok.kind = TokenKind::kLeftParen;
        ++i;
      } else if (c == ')') {
        tok.kind = TokenKind::kRightParen;
        ++i;
      } else if (c == '"') {
        std::string s;
        if (!LexQuoted(&i, &s)) return false;
        tok.kind = TokenKind::kLiteral;
        tok.value = s;
      } else if (c == '`') {
        size_t close = src_.find('`', i + 1);
        if (close == std::string_view::npos) return Fail("unterminated raw quoted string");
        tok.kind = TokenKind::kLiteral;
        tok.value = std::string(src_.substr(i + 1, close - i - 1));
        i = close + 1;
      } else if (c == '\'') {
        // A character constant is a number in Go templates.
        if (i + 2 < src_.size() && src_[i + 1] != '\\' && src_[i + 2] == '\'') {
          tok.kind = TokenKind::kLiteral;
          tok.value = static_cast<int64_t>(static_cast<unsigned char>(src_[i + 1]));
          i += 3;
        } else {
          return Fail("unsupported character constant");
        }
      } else if (IsDigit(c) || signed_number ||
                 (c == '.' && i + 1 < src_.size() && IsDigit(src_[i + 1]))) {
        tok.kind = TokenKind::kLiteral;
        if (!LexNumber(&i, &tok.value)) return false;
      } else if (c == '.') {
        tok.kind = TokenKind::kField;
        // ".A.B" is one chained field; a lone "." is the data itself.
        while (i < src_.size() && src_[i] == '.') {
          size_t start = ++i;
          while (i < src_.size() && IsNameChar(src_[i])) ++i;
          if (i == start) {
            if (tok.path.empty() && (i >= src_.size() || src_[i] != '.')) break;
            return Fail("bad character in field name");
          }
          tok.path.emplace_back(src_.substr(start, i - start));
        }
      } else if (c == '$') {
        return Fail("variables are not supported");
      } else if (IsNameChar(c)) {
        size_t start = i;
        while (i < src_.size() && IsNameChar(src_[i])) ++i;
        std::string word(src_.substr(start, i - start));
        if (word == "true" || word == "false") {
          tok.kind = TokenKind::kLiteral;
          tok.value = word == "true";
        } else if (word == "nil") {
          tok.kind = TokenKind::kLiteral;
          tok.value = nullptr;
        } else {
          tok.kind = TokenKind::kIdent;
          tok.text = word;
        }
      } else {
        return Fail(std::string("unrecognized character in action: '") + c + "'");
      }
      tokens_.push_back(std::move(tok));
    }
    tokens_.push_back(Token{});  // kEnd
    return true;
  }

  const Token& Peek() const { return tokens_[pos_]; }

  bool ParsePipeline(Pipeline* out) {
    while (true) {
      Command cmd;
      while (Peek().kind != TokenKind::kPipe && Peek().kind != TokenKind::kRightParen &&
             Peek().kind != TokenKind::kEnd) {
        Operand operand;
        if (!ParseOperand(&operand)) return false;
        cmd.operands.push_back(std::move(operand));
      }
      if (cmd.operands.empty()) return Fail("missing value for command");
      if (cmd.operands[0].kind == Operand::Kind::kLiteral && cmd.operands[0].literal.is_null() &&
          cmd.operands.size() == 1) {
        return Fail("nil is not a command");
      }
      out->commands.push_back(std::move(cmd));
      if (Peek().kind != TokenKind::kPipe) return true;
      ++pos_;
    }
  }

  bool ParseOperand(Operand* out) {
    const Token& tok = tokens_[pos_++];
    switch (tok.kind) {
      case TokenKind::kField:
        out->kind = Operand::Kind::kField;
        out->path = tok.path;
        break;
      case TokenKind::kLiteral:
        out->kind = Operand::Kind::kLiteral;
        out->literal = tok.value;
        break;
      case TokenKind::kIdent: {
        static const std::set<std::string> kKeywords = {"if",    "else",    "end",      "range",
                                                        "with",  "define",  "template", "block",
                                                        "break", "continue"};
        if (kKeywords.count(tok.text) != 0) {
          return Fail("unsupported action \"" + tok.text + "\"");
        }
        if (Functions().count(tok.text) == 0) {
          return Fail("function \"" + tok.text + "\" not defined");
        }
        out->kind = Operand::Kind::kFunction;
        out->name = tok.text;
        break;
      }
      case TokenKind::kLeftParen: {
        out->kind = Operand::Kind::kPipeline;
        out->sub = std::make_shared<Pipeline>();
        if (!ParsePipeline(out->sub.get())) return false;
        if (Peek().kind != TokenKind::kRightParen) return Fail("unclosed left paren");
        ++pos_;
        if (Peek().kind == TokenKind::kField && !Peek().space_before) {
          out->path = tokens_[pos_++].path;
        }
        break;
      }
      case TokenKind::kRightParen:
        return Fail("unexpected right paren");
      default:
        return Fail("unexpected token in operand");
    }
    if (Peek().kind == TokenKind::kField && !Peek().space_before) {
      return Fail("unexpected field after operand");
    }
    return true;
  }

  std::string_view src_;
  int line_;
  std::string* error_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

// Docker's preFormat: strings.Trim(format, " ") and then `\t`, `\n` -> tab, newline, applied to
// the whole template (actions included) before Go parses it.
std::string PreFormat(std::string_view tmpl) {
  size_t b = tmpl.find_first_not_of(' ');
  if (b == std::string_view::npos) return "";
  size_t e = tmpl.find_last_not_of(' ');
  tmpl = tmpl.substr(b, e - b + 1);
  std::string out;
  out.reserve(tmpl.size());
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '\\' && i + 1 < tmpl.size() && (tmpl[i + 1] == 't' || tmpl[i + 1] == 'n')) {
      out += tmpl[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += tmpl[i];
    }
  }
  return out;
}

void TrimRight(std::string* s) {
  while (!s->empty() && IsSpace(s->back())) s->pop_back();
}

bool ParseTemplate(std::string_view tmpl_in, std::vector<Segment>* segments, std::string* error) {
  const std::string tmpl = PreFormat(tmpl_in);
  const std::string_view src(tmpl);
  size_t pos = 0;
  bool trim_next_text = false;
  std::string text;  // literal text not yet emitted
  auto flush_text = [&]() {
    if (!text.empty()) {
      Segment seg;
      seg.text = std::move(text);
      segments->push_back(std::move(seg));
    }
    text.clear();
  };
  auto fail = [&](int line, const std::string& message) {
    if (error != nullptr) *error = "template: :" + std::to_string(line) + ": " + message;
    return false;
  };
  while (pos < src.size()) {
    size_t open = src.find("{{", pos);
    std::string_view literal =
        src.substr(pos, open == std::string_view::npos ? src.npos : open - pos);
    if (trim_next_text) {
      size_t first = 0;
      while (first < literal.size() && IsSpace(literal[first])) ++first;
      literal.remove_prefix(first);
      trim_next_text = false;
    }
    text += literal;
    if (open == std::string_view::npos) break;
    const int line = 1 + static_cast<int>(std::count(src.begin(), src.begin() + open, '\n'));
    size_t start = open + 2;
    if (start + 1 < src.size() && src[start] == '-' && IsSpace(src[start + 1])) {
      TrimRight(&text);
      start += 2;
    }
    // A comment is "/*" right after the delimiter (and trim marker) up to "*/" immediately
    // followed by the closing delimiter, as Go's lexer requires.
    if (src.substr(start, 2) == "/*") {
      size_t close = src.find("*/", start + 2);
      if (close == std::string_view::npos) return fail(line, "unclosed comment");
      size_t after = close + 2;
      if (src.substr(after, 4) == " -}}") {
        trim_next_text = true;
        after += 4;
      } else if (src.substr(after, 2) == "}}") {
        after += 2;
      } else {
        return fail(line, "comment ends before closing delimiter");
      }
      pos = after;
      continue;
    }
    // Find the closing "}}" outside of quoted strings.
    size_t i = start;
    size_t close = std::string_view::npos;
    while (i < src.size()) {
      char c = src[i];
      if (c == '"' || c == '\'') {
        for (++i; i < src.size() && src[i] != c && src[i] != '\n'; ++i) {
          if (src[i] == '\\') ++i;
        }
        ++i;
      } else if (c == '`') {
        i = src.find('`', i + 1);
        if (i == std::string_view::npos) break;
        ++i;
      } else if (c == '}' && i + 1 < src.size() && src[i + 1] == '}') {
        close = i;
        break;
      } else {
        ++i;
      }
    }
    if (close == std::string_view::npos) return fail(line, "unclosed action");
    std::string_view content = src.substr(start, close - start);
    if (content.size() >= 2 && content.back() == '-' && IsSpace(content[content.size() - 2])) {
      content.remove_suffix(2);
      trim_next_text = true;
    }
    Segment seg;
    seg.is_action = true;
    seg.line = line;
    ActionParser parser(content, line, error);
    if (!parser.Parse(&seg.pipeline)) return false;
    flush_text();
    segments->push_back(std::move(seg));
    pos = close + 2;
  }
  flush_text();
  return true;
}

// ---- Template execution ----

bool AsString(const nlohmann::json& v, std::string* out, std::string* err) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  if (v.is_null()) {
    out->clear();
    return true;
  }
  *err = "wrong type for value; expected string; got " + GoTypeName(v);
  return false;
}

bool AsInt(const nlohmann::json& v, int64_t* out, std::string* err) {
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float() && v.get<double>() == std::trunc(v.get<double>())) {
    *out = static_cast<int64_t>(v.get<double>());
    return true;
  }
  if (v.is_null()) {
    *out = 0;
    return true;
  }
  *err = "wrong type for value; expected int; got " + GoTypeName(v);
  return false;
}

std::string AsciiMap(std::string s, int (*fn)(int)) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(fn(c));
  }
  return s;
}

// Go's encoder writes a float64 holding a whole number without a fraction ("2", not "2.0");
// nlohmann keeps the ".0", so whole floats are turned into integers before dumping.
void WholeFloatsToIntegers(nlohmann::json* v) {
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) {
      *v = static_cast<int64_t>(d);
    }
  } else if (v->is_structured()) {
    for (auto& child : *v) WholeFloatsToIntegers(&child);
  }
}

// Docker's formatJSON: json.Encoder with HTML escaping off, trailing newline trimmed. Invalid
// UTF-8 becomes U+FFFD as in Go rather than aborting the command.
std::string JsonText(const nlohmann::json& v) {
  nlohmann::json copy = v;
  WholeFloatsToIntegers(&copy);
  return copy.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// fmt.Sprint: a space between two operands only when neither is a string.
std::string SprintArgs(const std::vector<nlohmann::json>& args, bool always_space) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && (always_space || (!args[i - 1].is_string() && !args[i].is_string()))) out += ' ';
    out += GoText(args[i], false);
  }
  return out;
}

const std::map<std::string, Function>& Functions() {
  using nlohmann::json;
  using Args = std::vector<json>;
  static const std::map<std::string, Function> kFunctions = {
      {"json",
       {1, 1,
        [](const Args& a, json* out, std::string*) {
          *out = JsonText(a[0]);
          return true;
        }}},
      {"join",
       {2, 2,
        [](const Args& a, json* out, std::string* err) {
          std::string sep;
          if (!AsString(a[1], &sep, err)) return false;
          if (a[0].is_null()) {
            *out = "";
            return true;
          }
          if (!a[0].is_array()) {
            *err = "wrong type for value; expected []string; got " + GoTypeName(a[0]);
            return false;
          }
          std::string s;
          for (size_t i = 0; i < a[0].size(); ++i) {
            if (i > 0) s += sep;
            s += GoText(a[0][i], false);
          }
          *out = s;
          return true;
        }}},
      {"split",
       {2, 2,
        [](const Args& a, json* out, std::string* err) {
          std::string s, sep;
          if (!AsString(a[0], &s, err) || !AsString(a[1], &sep, err)) return false;
          json parts = json::array();
          if (sep.empty()) {
            // strings.Split with an empty separator splits after each UTF-8 sequence.
            for (size_t i = 0; i < s.size();) {
              size_t n = 1;
              while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
              parts.push_back(s.substr(i, n));
              i += n;
            }
          } else {
            size_t start = 0;
            while (true) {
              size_t at = s.find(sep, start);
              if (at == std::string::npos) break;
              parts.push_back(s.substr(start, at - start));
              start = at + sep.size();
            }
            parts.push_back(s.substr(start));
          }
          *out = std::move(parts);
          return true;
        }}},
      {"upper",
       {1, 1,
        [](const Args& a, json* out, std::string* err) {
          std::string s;
          if (!AsString(a[0], &s, err)) return false;
          *out = AsciiMap(s, [](int c) { return std::toupper(c); });
          return true;
        }}},
      {"lower",
       {1, 1,
        [](const Args& a, json* out, std::string* err) {
          std::string s;
          if (!AsString(a[0], &s, err)) return false;
          *out = AsciiMap(s, [](int c) { return std::tolower(c); });
          return true;
        }}},
      {"title",
       {1, 1,
        [](const Args& a, json* out, std::string* err) {
          std::string s;
          if (!AsString(a[0], &s, err)) return false;
          bool at_word_start = true;
          for (char& c : s) {
            if (at_word_start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
            at_word_start = !IsNameChar(c);
          }
          *out = s;
          return true;
        }}},
      {"pad",
       {3, 3,
        [](const Args& a, json* out, std::string* err) {
          std::string s;
          int64_t prefix = 0, suffix = 0;
          if (!AsString(a[0], &s, err) || !AsInt(a[1], &prefix, err) ||
              !AsInt(a[2], &suffix, err)) {
            return false;
          }
          if (prefix < 0 || suffix < 0) {
            *err = "error calling pad: negative count";
            return false;
          }
          *out = std::string(static_cast<size_t>(prefix), ' ') + s +
                 std::string(static_cast<size_t>(suffix), ' ');
          return true;
        }}},
      {"truncate",
       {2, 2,
        [](const Args& a, json* out, std::string* err) {
          std::string s;
          int64_t n = 0;
          if (!AsString(a[0], &s, err) || !AsInt(a[1], &n, err)) return false;
          if (n < 0) {
            *err = "error calling truncate: negative length";
            return false;
          }
          // Docker truncates bytes, not characters.
          *out = static_cast<size_t>(n) > s.size() ? s : s.substr(0, static_cast<size_t>(n));
          return true;
        }}},
      {"index",
       {1, SIZE_MAX,
        [](const Args& a, json* out, std::string* err) {
          json cur = a[0];
          for (size_t k = 1; k < a.size(); ++k) {
            const json& key = a[k];
            if (cur.is_null()) {
              // Indexing a nil map or a missing value yields the zero value, like Go.
              cur = "";
            } else if (cur.is_object()) {
              if (!key.is_string()) {
                *err =
                    "error calling index: value has type " + GoTypeName(key) + "; should be string";
                return false;
              }
              auto it = cur.find(key.get<std::string>());
              // Docker's label maps are map[string]string: a missing key reads as "".
              json next = it == cur.end() ? json("") : *it;
              cur = std::move(next);
            } else if (cur.is_array() || cur.is_string()) {
              int64_t i = 0;
              if (!key.is_number() || !AsInt(key, &i, err)) {
                *err = "error calling index: cannot index slice/array with type " + GoTypeName(key);
                return false;
              }
              const size_t size =
                  cur.is_array() ? cur.size() : cur.get_ref<const std::string&>().size();
              if (i < 0 || static_cast<size_t>(i) >= size) {
                *err = "error calling index: index out of range: " + std::to_string(i);
                return false;
              }
              json next = cur.is_array()
                              ? cur[static_cast<size_t>(i)]
                              : json(static_cast<int64_t>(static_cast<unsigned char>(
                                    cur.get_ref<const std::string&>()[static_cast<size_t>(i)])));
              cur = std::move(next);
            } else {
              *err = "error calling index: can't index item of type " + GoTypeName(cur);
              return false;
            }
          }
          *out = std::move(cur);
          return true;
        }}},
      {"len",
       {1, 1,
        [](const Args& a, json* out, std::string* err) {
          if (a[0].is_string()) {
            *out = a[0].get_ref<const std::string&>().size();
          } else if (a[0].is_array() || a[0].is_object()) {
            *out = a[0].size();
          } else if (a[0].is_null()) {
            *out = 0;
          } else {
            *err = "error calling len: len of type " + GoTypeName(a[0]);
            return false;
          }
          return true;
        }}},
      {"print",
       {0, SIZE_MAX,
        [](const Args& a, json* out, std::string*) {
          *out = SprintArgs(a, false);
          return true;
        }}},
      {"println",
       {0, SIZE_MAX,
        [](const Args& a, json* out, std::string*) {
          *out = SprintArgs(a, true) + "\n";
          return true;
        }}},
  };
  return kFunctions;
}

class Executor {
 public:
  Executor(const nlohmann::json& dot, int line, std::string* error)
      : dot_(dot), line_(line), error_(error) {}

  bool Run(const Pipeline& pipe, nlohmann::json* out) {
    nlohmann::json prev;
    bool has_prev = false;
    for (const Command& cmd : pipe.commands) {
      nlohmann::json result;
      if (!RunCommand(cmd, has_prev ? &prev : nullptr, &result)) return false;
      prev = std::move(result);
      has_prev = true;
    }
    *out = std::move(prev);
    return true;
  }

 private:
  bool Fail(const std::string& message) {
    if (error_ != nullptr) {
      *error_ = "template: :" + std::to_string(line_) + ": executing: " + message;
    }
    return false;
  }

  // Walks by pointer so that `{{.A.B}}` copies only the value it prints.
  bool Walk(const nlohmann::json& root, const std::vector<std::string>& path, nlohmann::json* out) {
    static const nlohmann::json kMissing;
    const nlohmann::json* cur = &root;
    for (const std::string& name : path) {
      if (cur->is_null()) break;  // missing stays missing: prints "<no value>"
      if (!cur->is_object()) {
        return Fail("can't evaluate field " + name + " in type " + GoTypeName(*cur));
      }
      auto it = cur->find(name);
      cur = it == cur->end() ? &kMissing : &*it;
    }
    *out = *cur;
    return true;
  }

  bool Call(const std::string& name, const std::vector<nlohmann::json>& args, nlohmann::json* out) {
    const Function& fn = Functions().at(name);
    if (args.size() < fn.min_args || args.size() > fn.max_args) {
      return Fail("wrong number of args for " + name + ": want " + std::to_string(fn.min_args) +
                  " got " + std::to_string(args.size()));
    }
    std::string err;
    if (!fn.impl(args, out, &err)) return Fail(err);
    return true;
  }

  bool EvalOperand(const Operand& operand, nlohmann::json* out) {
    switch (operand.kind) {
      case Operand::Kind::kField:
        return Walk(dot_, operand.path, out);
      case Operand::Kind::kLiteral:
        *out = operand.literal;
        return true;
      case Operand::Kind::kFunction:
        return Call(operand.name, {}, out);
      case Operand::Kind::kPipeline: {
        nlohmann::json value;
        if (!Run(*operand.sub, &value)) return false;
        return Walk(value, operand.path, out);
      }
    }
    return false;
  }

  bool RunCommand(const Command& cmd, const nlohmann::json* piped, nlohmann::json* out) {
    const Operand& first = cmd.operands[0];
    if (first.kind != Operand::Kind::kFunction) {
      if (cmd.operands.size() > 1 || piped != nullptr) {
        return Fail("can't give argument to non-function");
      }
      return EvalOperand(first, out);
    }
    std::vector<nlohmann::json> args;
    for (size_t i = 1; i < cmd.operands.size(); ++i) {
      nlohmann::json value;
      if (!EvalOperand(cmd.operands[i], &value)) return false;
      args.push_back(std::move(value));
    }
    if (piped != nullptr) args.push_back(*piped);
    return Call(first.name, args, out);
  }

  const nlohmann::json& dot_;
  int line_;
  std::string* error_;
};

// The first field an action references, depth first; nullptr when it has none.
const std::vector<std::string>* FirstField(const Pipeline& pipe) {
  for (const Command& cmd : pipe.commands) {
    for (const Operand& operand : cmd.operands) {
      if (operand.kind == Operand::Kind::kField) return &operand.path;
      if (operand.kind == Operand::Kind::kPipeline) {
        if (const auto* path = FirstField(*operand.sub)) return path;
      }
    }
  }
  return nullptr;
}

// ---- Tabwriter ----

constexpr size_t kTabMinWidth = 10;
constexpr size_t kTabPadding = 3;

struct Cell {
  std::string_view text;
  size_t width;
};
using TabLine = std::vector<Cell>;

void WriteTabLines(const std::vector<TabLine>& lines, size_t line0, size_t line1,
                   const std::vector<size_t>& widths, std::string* out) {
  for (size_t i = line0; i < line1; ++i) {
    const TabLine& line = lines[i];
    for (size_t j = 0; j < line.size(); ++j) {
      *out += line[j].text;
      if (j < widths.size()) out->append(widths[j] - line[j].width, ' ');
    }
    // The text after the last newline is a partial line: tabwriter adds no newline to it.
    if (i + 1 < lines.size()) *out += '\n';
  }
}

// tabwriter's format(): a column block is a run of consecutive lines that all have a
// tab-terminated cell in this column; each block gets its own width.
void FormatTabBlock(const std::vector<TabLine>& lines, size_t line0, size_t line1,
                    std::vector<size_t>* widths, std::string* out) {
  const size_t column = widths->size();
  for (size_t cur = line0; cur < line1; ++cur) {
    if (column + 1 >= lines[cur].size()) continue;
    WriteTabLines(lines, line0, cur, *widths, out);
    line0 = cur;
    size_t width = kTabMinWidth;
    for (; cur < line1; ++cur) {
      const TabLine& line = lines[cur];
      if (column + 1 >= line.size()) break;
      width = std::max(width, line[column].width + kTabPadding);
    }
    widths->push_back(width);
    FormatTabBlock(lines, line0, cur, widths, out);
    widths->pop_back();
    line0 = cur;
  }
  WriteTabLines(lines, line0, line1, *widths, out);
}

}  // namespace

// ---- Public: sizes and durations ----

std::string HumanSize(double bytes) { return FormatSize(bytes, 1000.0, kDecimalUnits); }

std::string BytesSize(double bytes) { return FormatSize(bytes, 1024.0, kBinaryUnits); }

std::string HumanDuration(std::chrono::seconds d) {
  const int64_t seconds = d.count();
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return std::to_string(seconds) + " seconds";
  const int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return std::to_string(minutes) + " minutes";
  // go-units rounds hours to nearest (int(d.Hours() + 0.5)); exact in integers for whole seconds.
  const int64_t hours = (seconds + 1800) / 3600;
  if (hours == 1) return "About an hour";
  if (hours < 48) return std::to_string(hours) + " hours";
  if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
  if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
  // Years use the truncated hours, as go-units does.
  return std::to_string(seconds / 3600 / 24 / 365) + " years";
}

std::string CreatedSince(int64_t unix_seconds, int64_t now) {
  if (unix_seconds <= 0) return "N/A";
  return HumanDuration(std::chrono::seconds(now - unix_seconds)) + " ago";
}

// ---- Public: timestamps ----

std::string FormatTimestamp(int64_t unix_seconds, int32_t /*nanos*/) {
  const auto t = static_cast<time_t>(unix_seconds);
  struct tm tm_local {};
  char buf[128];
  if (localtime_r(&t, &tm_local) != nullptr &&
      std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z %Z", &tm_local) > 0) {
    return buf;
  }
  // Out of the C library's range: fall back to UTC computed by hand.
  std::string utc = Rfc3339Nano(unix_seconds, 0);
  return utc.substr(0, 10) + " " + utc.substr(11, 8) + " +0000 UTC";
}

std::string Rfc3339Nano(int64_t unix_seconds, int32_t nanos) {
  int64_t s = unix_seconds + FloorDiv(nanos, 1000000000);
  int64_t ns = nanos - FloorDiv(nanos, 1000000000) * 1000000000;
  const int64_t days = FloorDiv(s, 86400);
  const int64_t sod = s - days * 86400;
  int64_t year = 0;
  unsigned month = 0, day = 0;
  CivilFromDays(days, &year, &month, &day);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                static_cast<long long>(year), month, day, static_cast<long long>(sod / 3600),
                static_cast<long long>(sod / 60 % 60), static_cast<long long>(sod % 60));
  std::string out = buf;
  if (ns != 0) {
    std::snprintf(buf, sizeof(buf), ".%09lld", static_cast<long long>(ns));
    std::string frac = buf;
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  return out + "Z";
}

std::optional<std::pair<int64_t, int32_t>> ParseRfc3339(std::string_view text) {
  size_t pos = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &day)) {
    return std::nullopt;
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't')) return std::nullopt;
  ++pos;
  if (!ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, static_cast<unsigned>(month)) ||
      hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (digits < 9) nanos = nanos * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (size_t k = digits; k < 9; ++k) nanos *= 10;
  }
  if (pos >= text.size()) return std::nullopt;
  int64_t offset = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int64_t oh = 0, om = 0;
    if (!ReadDigits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') ||
        !ReadDigits(text, &pos, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  return std::make_pair(seconds, static_cast<int32_t>(nanos));
}

// ---- Public: tables ----

size_t DisplayWidth(std::string_view s) {
  size_t count = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    ++count;
    i += valid ? len : 1;  // like utf8.RuneCount, a bad byte is one (replacement) rune
  }
  return count;
}

std::string TabWrite(std::string_view text) {
  std::vector<TabLine> lines;
  size_t start = 0;
  while (true) {
    size_t nl = text.find('\n', start);
    std::string_view line_text =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    TabLine line;
    size_t cell_start = 0;
    while (true) {
      size_t tab = line_text.find('\t', cell_start);
      std::string_view cell = line_text.substr(
          cell_start, tab == std::string_view::npos ? line_text.npos : tab - cell_start);
      line.push_back(Cell{cell, DisplayWidth(cell)});
      if (tab == std::string_view::npos) break;
      cell_start = tab + 1;
    }
    lines.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::string out;
  out.reserve(text.size() * 2);
  std::vector<size_t> widths;
  FormatTabBlock(lines, 0, lines.size(), &widths, &out);
  return out;
}

Table::Table(std::vector<std::string> headers) { rows_.push_back(std::move(headers)); }

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

void Table::Render(std::ostream& out) const {
  std::string text;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) text += '\t';
      text += row[i];
    }
    text += '\n';
  }
  out << TabWrite(text);
}

// ---- Public: templates ----

std::string RenderTemplate(std::string_view tmpl, const nlohmann::json& obj, std::string* error) {
  std::vector<Segment> segments;
  std::string local_error;
  std::string* err = error != nullptr ? error : &local_error;
  err->clear();  // callers test error.empty(), so a reused string must not carry an old message
  if (!ParseTemplate(tmpl, &segments, err)) return "";
  std::string out;
  for (const Segment& seg : segments) {
    if (!seg.is_action) {
      out += seg.text;
      continue;
    }
    Executor exec(obj, seg.line, err);
    nlohmann::json value;
    if (!exec.Run(seg.pipeline, &value)) return "";
    out += GoText(value, true);
  }
  return out;
}

bool FormatIsTable(std::string_view format, std::string* rest) {
  constexpr std::string_view kPrefix = "table";
  if (format.substr(0, kPrefix.size()) != kPrefix) {
    if (rest != nullptr) *rest = std::string(format);
    return false;
  }
  if (rest != nullptr) {
    std::string_view tail = format.substr(kPrefix.size());
    size_t b = tail.find_first_not_of(' ');
    size_t e = tail.find_last_not_of(' ');
    *rest = b == std::string_view::npos ? "" : std::string(tail.substr(b, e - b + 1));
  }
  return true;
}

std::string TemplateHeader(std::string_view tmpl,
                           const std::map<std::string, std::string>& header_names,
                           std::string* error) {
  std::vector<Segment> segments;
  std::string local_error;
  std::string* err = error != nullptr ? error : &local_error;
  err->clear();
  if (!ParseTemplate(tmpl, &segments, err)) return "";
  std::string out;
  for (const Segment& seg : segments) {
    if (!seg.is_action) {
      out += seg.text;
      continue;
    }
    const std::vector<std::string>* path = FirstField(seg.pipeline);
    if (path == nullptr) continue;
    std::string key;
    for (const std::string& name : *path) {
      if (!key.empty()) key += '.';
      key += name;
    }
    auto it = header_names.find(key);
    out += it != header_names.end() ? it->second
                                    : AsciiMap(key, [](int c) { return std::toupper(c); });
  }
  return out;
}

}  // namespace cli
