#include "layerstore/status.h"

#include <cstring>

namespace layerstore {

Status Status::FromErrno(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status(Code::kNotFound, std::move(msg), err);
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kResourceExhausted, std::move(msg), err);
    default:
      return Status(Code::kIOError, std::move(msg), err);
  }
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  std::string msg(prefix);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg), errno_);
}

}  // namespace layerstore
