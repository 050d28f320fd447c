# SSH egress proxy (libssh from Debian's libssh-dev). Included from
# src/CMakeLists.txt after gondolin_core is defined, so this room keeps its own
# source list.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBSSH REQUIRED IMPORTED_TARGET GLOBAL libssh>=0.10)

target_sources(gondolin_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/libssh_handles.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_audit.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_channel_bridge.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_guest_connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_guest_relay.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_host_key.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_proxy.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_request_rules.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_stream_relay.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_upstream.cpp)
target_link_libraries(gondolin_core PRIVATE PkgConfig::LIBSSH)
