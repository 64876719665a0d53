# The libraries every strata process loads, as strata::<name> targets.
#
# With STRATA_STATIC_DEPS (the default outside sanitizer builds) they are linked from their
# static archives, and libstdc++/libgcc too: on these VMs each shared library a process maps costs
# it 0.2-0.5 ms of mmaps, page faults and symbol lookups before main, and `strata mount`, `strata
# run` and every short command pay that on each start (14 libraries: 5 ms of a 7 ms `strata
# --version`). The trade-off is the usual one: a security fix in one of these libraries needs a
# rebuild of strata. libcurl and libarchive, which parse untrusted input, stay shared and are
# dlopen'd when a command first needs them (registry/src/curl_api.h, layerstore/src/archive_api.h).
# Sanitizer builds keep everything shared: ASan must interpose operator new, which a static
# libstdc++ would define inside the executable.

if(STRATA_SANITIZE)
  set(strata_static_default OFF)
else()
  set(strata_static_default ON)
endif()
option(STRATA_STATIC_DEPS "Link the libraries strata loads at every start statically" ${strata_static_default})

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# strata::<alias> from pkg-config module <module>: its static archive when STRATA_STATIC_DEPS and
# the distribution ships one, else the shared library.
function(strata_pkg_dependency alias module)
  string(TOUPPER ${alias} prefix)
  pkg_check_modules(${prefix} REQUIRED IMPORTED_TARGET GLOBAL ${module})
  add_library(strata::${alias} INTERFACE IMPORTED GLOBAL)
  if(STRATA_STATIC_DEPS)
    set(archives "")
    set(missing FALSE)
    foreach(lib IN LISTS ${prefix}_STATIC_LIBRARIES)
      if(lib MATCHES "^(pthread|dl|rt|m)$")
        continue()  # glibc's own: Threads::Threads and the C library cover them
      endif()
      find_library(${prefix}_${lib}_ARCHIVE NAMES lib${lib}.a HINTS ${${prefix}_STATIC_LIBRARY_DIRS})
      if(NOT ${prefix}_${lib}_ARCHIVE)
        set(missing TRUE)
        break()
      endif()
      list(APPEND archives ${${prefix}_${lib}_ARCHIVE})
    endforeach()
    if(NOT missing)
      target_include_directories(strata::${alias} INTERFACE ${${prefix}_STATIC_INCLUDE_DIRS})
      target_link_libraries(strata::${alias} INTERFACE ${archives} Threads::Threads ${CMAKE_DL_LIBS})
      return()
    endif()
    message(STATUS "${module}: no static archive, linked shared")
  endif()
  target_link_libraries(strata::${alias} INTERFACE PkgConfig::${prefix})
endfunction()

strata_pkg_dependency(lmdb lmdb)
strata_pkg_dependency(zstd libzstd)
strata_pkg_dependency(isal libisal)
strata_pkg_dependency(fuse3 fuse3)
strata_pkg_dependency(uring liburing)
strata_pkg_dependency(cap libcap)

if(STRATA_STATIC_DEPS)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
  set(ZLIB_USE_STATIC_LIBS ON)
endif()
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
add_library(strata::crypto INTERFACE IMPORTED GLOBAL)
target_link_libraries(strata::crypto INTERFACE OpenSSL::Crypto)
add_library(strata::zlib INTERFACE IMPORTED GLOBAL)
target_link_libraries(strata::zlib INTERFACE ZLIB::ZLIB)

# spdlog and fmt have no static archives in Debian; header-only they cost no library at start.
find_package(spdlog REQUIRED)
add_library(strata::log INTERFACE IMPORTED GLOBAL)
if(STRATA_STATIC_DEPS)
  find_package(fmt REQUIRED)
  target_link_libraries(strata::log INTERFACE fmt::fmt-header-only Threads::Threads)
  target_compile_definitions(strata::log INTERFACE SPDLOG_FMT_EXTERNAL)
  target_include_directories(strata::log INTERFACE
    $<TARGET_PROPERTY:spdlog::spdlog_header_only,INTERFACE_INCLUDE_DIRECTORIES>)
  add_link_options($<$<LINK_LANGUAGE:CXX>:-static-libstdc++> $<$<LINK_LANGUAGE:CXX>:-static-libgcc>)
  # Nothing from the archives is exported: libcrypto.a defines a global gf_mul (curve448), and
  # libisal.so exports its own, which the executable's copy would otherwise interpose.
  add_link_options(LINKER:--exclude-libs,ALL)
else()
  target_link_libraries(strata::log INTERFACE spdlog::spdlog)
endif()

find_package(LibArchive REQUIRED)
find_package(CURL REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
