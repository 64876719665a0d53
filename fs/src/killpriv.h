// FUSE_HANDLE_KILLPRIV_V2 (protocol 7.33). Without it the kernel asks the daemon for a file's
// security.capability (a GETXATTR round trip) before every write(2) to it, passthrough writes
// included, to see whether the write must drop privileges: a 4 KiB write cost a round trip. With
// it the kernel checks each inode once (it marks the superblock SB_NOSEC) and leaves clearing
// setuid and setgid on a write or truncation to the daemon, telling it in the request when the
// caller lacks CAP_FSETID. libfuse 3.14 passes none of those request flags to its handlers, so the
// transport, which sees each raw request, records the flag for the thread handling it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace layerfs {

// Whether a raw request (its opcode and per-opcode struct) asks the daemon to clear setuid and
// setgid: a WRITE's FUSE_WRITE_KILL_SUIDGID, a SETATTR's FATTR_KILL_SUIDGID (sent with a
// truncation), an OPEN's or CREATE's FUSE_OPEN_KILL_SUIDGID (sent with O_TRUNC).
bool RequestKillsSuidgid(uint32_t opcode, const void* op_in, size_t op_size);

// The flag of the request the calling thread is handling: set by the transport for the length of
// one fuse_session_process_buf, read by the handlers.
void SetCurrentRequestKillsSuidgid(bool kill);
bool CurrentRequestKillsSuidgid();

// For a request just read from /dev/fuse (`len` bytes at `buf`, its header first): records its
// flag for this thread, where libfuse's loop then processes it.
void NoteRequestRead(const void* buf, size_t len);

// read(2) of /dev/fuse and NoteRequestRead: the read of a libfuse custom io (fuse_custom_io).
ssize_t ReadRequestNotingFlags(int fd, void* buf, size_t len, void* userdata);

// Routes the session's reads of /dev/fuse through NoteRequestRead (a libfuse custom io), for a
// session served without the rings, whose transport does the same. Call before FUSE_INIT. False
// when libfuse refuses.
bool InstallKillFlagReader(fuse_session* se);

}  // namespace layerfs
