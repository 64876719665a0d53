// libarchive, loaded on first use rather than at every start: its library tree (libxml2, ICU,
// lzma, lz4, bz2, nettle, acl: 9 of the 23 shared libraries stratafs loaded) costs milliseconds of
// CPU to map and relocate, which every `strata run` and every mount would pay though only layer
// import and archive export use it. The headers are libarchive's own; only the linking is
// deferred, as with libcurl (tools/registry/src/curl_api.h).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "layerstore/status.h"

// Every libarchive function layerstore calls.
#define LAYERSTORE_ARCHIVE_FUNCTIONS(X) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_gid) \
  X(archive_entry_hardlink) \
  X(archive_entry_mtime) \
  X(archive_entry_mtime_nsec) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_perm) \
  X(archive_entry_rdevmajor) \
  X(archive_entry_rdevminor) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_hardlink) \
  X(archive_entry_set_mode) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_rdevmajor) \
  X(archive_entry_set_rdevminor) \
  X(archive_entry_set_size) \
  X(archive_entry_set_symlink) \
  X(archive_entry_set_uid) \
  X(archive_entry_size) \
  X(archive_entry_size_is_set) \
  X(archive_entry_sparse_count) \
  X(archive_entry_symlink) \
  X(archive_entry_uid) \
  X(archive_entry_xattr_add_entry) \
  X(archive_entry_xattr_next) \
  X(archive_entry_xattr_reset) \
  X(archive_error_string) \
  X(archive_filter_bytes) \
  X(archive_filter_code) \
  X(archive_read_data) \
  X(archive_read_data_block) \
  X(archive_read_free) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open) \
  X(archive_read_open_fd) \
  X(archive_read_support_filter_all) \
  X(archive_read_support_filter_bzip2) \
  X(archive_read_support_filter_gzip) \
  X(archive_read_support_filter_xz) \
  X(archive_read_support_filter_zstd) \
  X(archive_read_support_format_raw) \
  X(archive_read_support_format_tar) \
  X(archive_set_error) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_finish_entry) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open) \
  X(archive_write_open_fd) \
  X(archive_write_set_bytes_in_last_block) \
  X(archive_write_set_format_option) \
  X(archive_write_set_format_pax_restricted)

namespace layerstore {

struct ArchiveApi {
#define LAYERSTORE_ARCHIVE_POINTER(name) decltype(&::name) name;
  LAYERSTORE_ARCHIVE_FUNCTIONS(LAYERSTORE_ARCHIVE_POINTER)
#undef LAYERSTORE_ARCHIVE_POINTER
};

// Loads libarchive the first time (thread-safe); an error that names the library when it cannot.
Status LoadArchive();

// REQUIRES: LoadArchive() succeeded (every way into import and export checks it first).
const ArchiveApi& Archive();

}  // namespace layerstore
