// Status and Result<T>: how every layerstore call reports failure.
//
// The store never throws across its API. A Status is a code (the kinds a caller branches on, as
// containerd's errdefs) plus a message that names what was wrong (the archive, layer, entry, path)
// and, for failed system calls, the errno. Result<T> holds either a value or a non-OK Status.
// Both are plain values: copy them, return them, no thread-safety concerns.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace layerstore {

enum class Code {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,     // bad input from the user or an archive
  kFailedPrecondition,  // the store's state forbids it (image in use, tag ambiguous)
  kCorruption,          // the store's own data is inconsistent or a digest does not match
  kIOError,             // a system call failed
  kUnavailable,         // busy (lock held), try again
  kResourceExhausted,   // a configured limit was hit (bomb protection)
  kUnsupported,         // a format or feature we do not handle
};

class Status {
 public:
  Status() = default;  // OK

  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status FailedPrecondition(std::string msg) {
    return Status(Code::kFailedPrecondition, std::move(msg));
  }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg, int err = 0) { return Status(Code::kIOError, std::move(msg), err); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status ResourceExhausted(std::string msg) {
    return Status(Code::kResourceExhausted, std::move(msg));
  }
  static Status Unsupported(std::string msg) { return Status(Code::kUnsupported, std::move(msg)); }
  // A failed system call: "context: strerror(err)". ENOENT maps to NotFound, ENOSPC and EDQUOT to
  // ResourceExhausted, everything else to IOError; the errno is kept for callers that reply with it.
  static Status FromErrno(std::string_view context, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  int posix_errno() const { return errno_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }

  // "prefix: message"; OK stays OK.
  Status WithContext(std::string_view prefix) const;
  std::string ToString() const { return ok() ? "OK" : message_; }

 private:
  Status(Code code, std::string msg, int err = 0) : code_(code), message_(std::move(msg)), errno_(err) {}

  Code code_ = Code::kOk;
  std::string message_;
  int errno_ = 0;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like std::expected
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  // REQUIRES: status is not OK (an OK Result must carry a value).

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace layerstore

#define LS_CONCAT_INNER(a, b) a##b
#define LS_CONCAT(a, b) LS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define LS_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    ::layerstore::Status ls_status_ = (expr);           \
    if (!ls_status_.ok()) return ls_status_;            \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define LS_ASSIGN_OR_RETURN(lhs, expr) LS_ASSIGN_OR_RETURN_IMPL(LS_CONCAT(ls_result_, __LINE__), lhs, expr)
#define LS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
