# Warnings every target of ours gets; -Werror when STRATA_WERROR is on (CI and scripts/test.sh).
add_library(strata_warnings INTERFACE)
target_compile_options(strata_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
  -Wno-missing-field-initializers $<$<BOOL:${STRATA_WERROR}>:-Werror>)
