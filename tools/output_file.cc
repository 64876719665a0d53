#include "output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace cli {

layerstore::Status WriteOutput(const std::string& path, const std::function<layerstore::Status(int fd)>& write) {
  if (path.empty()) return write(STDOUT_FILENO);
  const std::string temp = path + ".strata-tmp-" + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return layerstore::Status::FromErrno("creating " + temp, errno);
  layerstore::Status s = write(fd);
  if (s.ok() && ::fsync(fd) != 0) s = layerstore::Status::FromErrno("fsync " + temp, errno);
  ::close(fd);
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    s = layerstore::Status::FromErrno("renaming " + temp + " to " + path, errno);
  }
  if (!s.ok()) ::unlink(temp.c_str());
  return s;
}

}  // namespace cli
