// TerminalProgress: the ProgressSink the CLI hands to long store operations (load, save).
//
// On a terminal it keeps one line per unit of work and redraws it in place, the way `docker load`
// does; elsewhere (logs, pipes, CI) it prints one plain line when a unit starts and one when it
// ends, so captured output stays readable and small.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "layerstore/progress.h"

namespace cli {

class TerminalProgress final : public layerstore::ProgressSink {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `out` is not owned and must outlive this object. `is_tty` selects the in-place display;
  // `quiet` silences everything, Notes included.
  TerminalProgress(FILE* out, bool is_tty, bool quiet);
  // As above with an injected clock, so tests can step past the redraw rate limit.
  TerminalProgress(FILE* out, bool is_tty, bool quiet, Clock clock);

  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  void Begin(const std::string& id, const std::string& action, uint64_t total) override;
  void Update(const std::string& id, uint64_t done) override;
  void End(const std::string& id, const std::string& result) override;
  void Note(const std::string& line) override;

  // Minimum time between two redraws caused by Update; Begin, End and Note draw at once.
  static constexpr std::chrono::milliseconds kRedrawInterval{100};

 private:
  struct Line {
    std::string id;
    std::string action;
    std::string result;
    uint64_t total = 0;
    uint64_t done = 0;
    bool finished = false;
    bool is_note = false;  // a free-form line: static once written
    bool dirty = false;
  };

  // Text of one line, fitted to `columns` so it never wraps (a wrapped line would throw off
  // the cursor arithmetic of every redraw after it).
  std::string RenderLine(const Line& line, size_t columns) const;
  // Appends a new line below the live region and draws it.
  void AppendLocked(Line line);
  // Redraws every dirty line of the region in place.
  void RedrawLocked();
  // Drops finished lines from the top of the region: they can never change again.
  void CompactLocked();
  // Index in lines_ of the unfinished unit `id`, or -1.
  int FindActiveLocked(const std::string& id) const;
  void WriteLocked(const std::string& text);
  // Terminal size of `out_`; 80 columns and unknown rows (0) when it is not a terminal.
  void TerminalSizeLocked(size_t* columns, size_t* rows) const;

  FILE* const out_;
  const bool is_tty_;
  const bool quiet_;
  const Clock clock_;

  std::mutex mu_;
  // The live region: the last lines printed, top to bottom; the cursor sits at the start of the
  // line below the last one.
  std::vector<Line> lines_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;  // false until the first draw, so the first Update is never held back
};

}  // namespace cli
