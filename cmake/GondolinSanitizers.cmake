# ASan+UBSan apply to host code only: the guest agent is static, which ASan cannot be.
function(gondolin_sanitize target)
  if(GONDOLIN_SANITIZE)
    target_compile_options(${target} PRIVATE
      -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# Fuzzing builds instrument the library for coverage; the fuzz targets add
# the libFuzzer runtime themselves.
function(gondolin_fuzz_instrument target)
  if(GONDOLIN_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# Our headers under src/ have inline code built on Boost.Asio, whose types
# change with this macro: every target that compiles them must agree, or two
# copies of one inline function differ (an ODR violation; scripts/check-odr).
function(gondolin_asio_config target)
  target_compile_definitions(${target} PRIVATE BOOST_ASIO_NO_DEPRECATED)
endfunction()

# Every host target of ours gets all of these.
function(gondolin_target target)
  gondolin_asio_config(${target})
  gondolin_warnings(${target})
  gondolin_sanitize(${target})
  gondolin_fuzz_instrument(${target})
endfunction()
