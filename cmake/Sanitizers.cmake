# ASan+UBSan for the whole build when STRATA_SANITIZE is on; scripts/test.sh runs the unit tests so.
if(STRATA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
