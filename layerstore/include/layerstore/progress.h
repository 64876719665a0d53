// ProgressSink: how long store operations (load, save, layer import/export) report progress.
//
// The store calls these from the thread doing the work; an implementation used from several
// threads must lock itself. `id` names one unit of work (a layer's short digest, a file name).
// Totals may be 0 when unknown. The default implementation does nothing.
#pragma once

#include <cstdint>
#include <string>

namespace layerstore {

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // A unit of work starts: `action` is a verb as Docker prints it ("Loading layer", "Writing layer").
  virtual void Begin(const std::string& /*id*/, const std::string& /*action*/, uint64_t /*total*/) {}
  // `done` bytes of the unit are complete (absolute, not a delta).
  virtual void Update(const std::string& /*id*/, uint64_t /*done*/) {}
  // The unit finished; `result` is a short word ("Loaded", "Already exists", "Written").
  virtual void End(const std::string& /*id*/, const std::string& /*result*/) {}
  // A free-form line of status ("Loaded image: busybox:latest" goes to stdout, not here).
  virtual void Note(const std::string& /*line*/) {}
};

}  // namespace layerstore
