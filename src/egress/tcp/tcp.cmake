# Raw-TCP exceptions of egress: mapped TCP (--tcp-map) and ingress (--listen).
# Included from src/CMakeLists.txt after gondolin_core is defined.
target_sources(gondolin_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/byte_relay.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ingress_listeners.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mapped_tcp.cpp)
