// Reference: an image name as users type it, normalised as Docker does.
//
// Grammar (distribution/reference): [domain[:port]/]path[:tag][@sha256:hex]. A first path
// component is a domain when it contains '.' or ':' or is "localhost"; otherwise the domain is
// docker.io, and a single-component path on docker.io gets "library/" ("nginx" ->
// "docker.io/library/nginx"). Path components are lowercase [a-z0-9] joined by '.', '_', '__' or
// runs of '-'; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. Value type.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "layerstore/digest.h"
#include "layerstore/status.h"

namespace layerstore {

struct Reference {
  std::string domain;            // "docker.io", "localhost:5000", "quay.io"
  std::string path;              // "library/nginx", "user/app"
  std::string tag;               // empty when the reference has only a digest
  std::optional<Digest> digest;  // set for name@sha256:...

  // "docker.io/library/nginx"
  std::string Name() const;
  // "docker.io/library/nginx:latest", "docker.io/library/nginx@sha256:..." (tag and digest both when both set)
  std::string String() const;
  // Docker's short form: "nginx", "user/app", "quay.io/x/y", "localhost:5000/app"
  std::string FamiliarName() const;
  // FamiliarName plus ":tag" and/or "@digest"
  std::string FamiliarString() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

// Parses and normalises `text`. A reference with neither tag nor digest gets tag "latest".
// Errors are InvalidArgument naming the text and what is wrong ("invalid reference format:
// repository name must be lowercase", "... tag too long", "... invalid digest").
Result<Reference> ParseReference(std::string_view text);

// As ParseReference, but leaves the tag empty when none was given (for `strata pull --all-tags`
// style uses and for matching names without a tag).
Result<Reference> ParseReferenceNoDefaultTag(std::string_view text);

}  // namespace layerstore
