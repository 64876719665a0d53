#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "output.h"

namespace cli {
namespace {

constexpr size_t kDefaultColumns = 80;
constexpr size_t kMaxBarWidth = 50;  // Docker's bar: 50 cells of '=' plus the '>' head
constexpr size_t kMinBarWidth = 10;  // below this a bar says nothing: numbers only

// Cuts `text` to at most `max_points` UTF-8 code points.
std::string TruncateCodePoints(const std::string& text, size_t max_points) {
  size_t points = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (points == max_points) return text.substr(0, i);
    ++points;
  }
  return text;
}

std::string LeftPad(const std::string& text, size_t width) {
  size_t w = DisplayWidth(text);
  return w >= width ? text : std::string(width - w, ' ') + text;
}

std::string Prefix(const std::string& id) { return id.empty() ? "" : id + ": "; }

}  // namespace

TerminalProgress::TerminalProgress(FILE* out, bool is_tty, bool quiet)
    : TerminalProgress(out, is_tty, quiet, [] { return std::chrono::steady_clock::now(); }) {}

TerminalProgress::TerminalProgress(FILE* out, bool is_tty, bool quiet, Clock clock)
    : out_(out), is_tty_(is_tty), quiet_(quiet), clock_(std::move(clock)) {}

void TerminalProgress::Begin(const std::string& id, const std::string& action, uint64_t total) {
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_tty_) {
    WriteLocked(Prefix(id) + action + "\n");
    return;
  }
  // A unit that restarts keeps its line rather than leaving a stale one behind.
  int index = FindActiveLocked(id);
  if (index >= 0) {
    Line& line = lines_[static_cast<size_t>(index)];
    line.action = action;
    line.total = total;
    line.done = 0;
    line.dirty = true;
    RedrawLocked();
    return;
  }
  Line line;
  line.id = id;
  line.action = action;
  line.total = total;
  AppendLocked(std::move(line));
}

void TerminalProgress::Update(const std::string& id, uint64_t done) {
  if (quiet_ || !is_tty_) return;
  std::lock_guard<std::mutex> lock(mu_);
  int index = FindActiveLocked(id);
  if (index < 0) return;
  Line& line = lines_[static_cast<size_t>(index)];
  if (line.done == done) return;
  line.done = done;
  line.dirty = true;
  // Byte counts arrive per buffer; redrawing on each would flood the terminal.
  if (drawn_ && clock_() - last_draw_ < kRedrawInterval) return;
  RedrawLocked();
}

void TerminalProgress::End(const std::string& id, const std::string& result) {
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_tty_) {
    WriteLocked(Prefix(id) + result + "\n");
    return;
  }
  int index = FindActiveLocked(id);
  if (index < 0) {
    // Ended without a Begin (e.g. a layer found already present): still report it.
    Line line;
    line.id = id;
    line.result = result;
    line.finished = true;
    AppendLocked(std::move(line));
    return;
  }
  Line& line = lines_[static_cast<size_t>(index)];
  line.result = result;
  line.finished = true;
  line.dirty = true;
  RedrawLocked();
  CompactLocked();
}

void TerminalProgress::Note(const std::string& text) {
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_tty_) {
    WriteLocked(text + "\n");
    return;
  }
  Line line;
  line.is_note = true;
  line.result = text;
  AppendLocked(std::move(line));
}

std::string TerminalProgress::RenderLine(const Line& line, size_t columns) const {
  std::string text;
  if (line.is_note) {
    text = line.result;
  } else if (line.finished) {
    text = Prefix(line.id) + line.result;
  } else {
    text = Prefix(line.id) + line.action;
    // Docker's JSONProgress: "%8v/%v" of the sizes, or the current size alone when the total
    // is unknown or has been overrun.
    std::string numbers;
    if (line.total == 0 || line.done > line.total) {
      if (line.done > 0) numbers = LeftPad(HumanSize(static_cast<double>(line.done)), 8);
    } else {
      numbers = LeftPad(HumanSize(static_cast<double>(line.done)), 8) + "/" +
                HumanSize(static_cast<double>(line.total));
    }
    std::string bar;
    if (line.total > 0) {
      // Room left on the line once the text, the numbers and the bar's "[", ">", "] " and the
      // separating space are placed; one column stays free so the cursor never wraps.
      const size_t used = DisplayWidth(text) + 1 + DisplayWidth(numbers) + 4 + 1;
      const size_t room = columns > used ? columns - used : 0;
      const size_t width = std::min(kMaxBarWidth, room);
      if (width >= kMinBarWidth) {
        const auto filled =
            std::min(width, static_cast<size_t>(static_cast<long double>(line.done) /
                                                static_cast<long double>(line.total) *
                                                static_cast<long double>(width)));
        bar = "[" + std::string(filled, '=') + ">" + std::string(width - filled, ' ') + "] ";
      }
    }
    if (!bar.empty() || !numbers.empty()) text += " " + bar + numbers;
  }
  return TruncateCodePoints(text, columns > 1 ? columns - 1 : columns);
}

void TerminalProgress::AppendLocked(Line line) {
  size_t columns = 0, rows = 0;
  TerminalSizeLocked(&columns, &rows);
  line.dirty = false;
  std::string text = "\x1b[2K" + RenderLine(line, columns) + "\n";
  lines_.push_back(std::move(line));
  WriteLocked(text);
  last_draw_ = clock_();
  drawn_ = true;
  CompactLocked();
}

void TerminalProgress::RedrawLocked() {
  size_t columns = 0, rows = 0;
  TerminalSizeLocked(&columns, &rows);
  std::string text;
  const size_t n = lines_.size();
  for (size_t i = 0; i < n; ++i) {
    Line& line = lines_[i];
    if (!line.dirty) continue;
    line.dirty = false;
    const size_t up = n - i;
    // A line scrolled above the top of the screen cannot be reached any more.
    if (rows != 0 && up >= rows) continue;
    text += "\x1b[" + std::to_string(up) + "A\r\x1b[2K" + RenderLine(line, columns) + "\x1b[" +
            std::to_string(up) + "B\r";
  }
  if (!text.empty()) WriteLocked(text);
  last_draw_ = clock_();
  drawn_ = true;
}

void TerminalProgress::CompactLocked() {
  size_t keep = 0;
  while (keep < lines_.size() && (lines_[keep].finished || lines_[keep].is_note)) ++keep;
  lines_.erase(lines_.begin(), lines_.begin() + static_cast<std::ptrdiff_t>(keep));
}

int TerminalProgress::FindActiveLocked(const std::string& id) const {
  for (size_t i = lines_.size(); i-- > 0;) {
    const Line& line = lines_[i];
    if (!line.finished && !line.is_note && line.id == id) return static_cast<int>(i);
  }
  return -1;
}

void TerminalProgress::WriteLocked(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

void TerminalProgress::TerminalSizeLocked(size_t* columns, size_t* rows) const {
  *columns = kDefaultColumns;
  *rows = 0;
  struct winsize ws {};
  const int fd = fileno(out_);
  if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0) {
    if (ws.ws_col > 0) *columns = ws.ws_col;
    *rows = ws.ws_row;
  }
}

}  // namespace cli
