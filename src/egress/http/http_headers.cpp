// gondolin::HttpHeaders (public, include/gondolin/http_hooks.h).
#include "egress/http/http_message.h"

namespace gondolin {

std::optional<std::string_view> HttpHeaders::get(std::string_view name) const {
  for (const auto& h : list_)
    if (egress::iequals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

void HttpHeaders::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

void HttpHeaders::add(std::string_view name, std::string_view value) {
  list_.push_back(HttpHeader{std::string(name), std::string(value)});
}

void HttpHeaders::remove(std::string_view name) {
  std::erase_if(list_, [&](const HttpHeader& h) { return egress::iequals(h.name, name); });
}

std::size_t HttpHeaders::count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& h : list_)
    if (egress::iequals(h.name, name)) ++n;
  return n;
}

}  // namespace gondolin
