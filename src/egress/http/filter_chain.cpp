#include "egress/http/filter_chain.h"

#include "egress/egress_context.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

class InterpretFilter : public ExchangeFilter {
 public:
  explicit InterpretFilter(const EgressPolicy& policy) : policy_(policy) {}
  FilterVerdict on_request(Exchange& x) override {
    auto interpreted = policy_.interpret(x.head, *x.flow);
    if (auto* d = std::get_if<Denial>(&interpreted)) return *d;
    x.request = std::move(std::get<HttpRequest>(interpreted));
    x.interpreted = true;
    return Continue{};
  }

 private:
  const EgressPolicy& policy_;
};

class HookFilter : public ExchangeFilter {
 public:
  explicit HookFilter(std::shared_ptr<HttpHooks> hooks) : hooks_(std::move(hooks)) {}
  FilterVerdict on_request(Exchange& x) override {
    if (!hooks_->on_request) return Continue{};
    RequestVerdict verdict = RequestVerdict::forward();
    try {
      verdict = hooks_->on_request(x.request);
    } catch (const std::exception& e) {
      log().warn("egress: on_request hook threw: {}", e.what());
      return Denial{500, "hook-error", "the request hook failed"};
    }
    switch (verdict.kind()) {
      case RequestVerdict::Kind::Deny: return Denial{403, "hook", verdict.reason()};
      case RequestVerdict::Kind::Respond: return verdict.response();
      case RequestVerdict::Kind::Forward: break;
    }
    return Continue{};
  }
  std::optional<Denial> on_response(Exchange& x, HttpResponse& response) override {
    if (!hooks_->on_response) return std::nullopt;
    try {
      hooks_->on_response(x.request, response);
    } catch (const std::exception& e) {
      log().warn("egress: on_response hook threw: {}", e.what());
      return Denial{502, "hook-error", "the response hook failed"};
    }
    return std::nullopt;
  }

 private:
  std::shared_ptr<HttpHooks> hooks_;
};

class AuthorizeFilter : public ExchangeFilter {
 public:
  explicit AuthorizeFilter(const EgressPolicy& policy) : policy_(policy) {}
  FilterVerdict on_request(Exchange& x) override {
    auto authorized = policy_.authorize(x.request);
    if (auto* d = std::get_if<Denial>(&authorized)) return *d;
    auto& a = std::get<Authorization>(authorized);
    x.rule = std::move(a.rule);
    x.secrets = std::move(a.secrets);
    x.reflections = std::move(a.reflections);
    return Continue{};
  }

 private:
  const EgressPolicy& policy_;
};

// Content codings hide an echoed value from the guard, so a request that
// carries a secret asks for none, and a response that has one anyway is
// refused rather than passed on unread.
class ReflectionFilter : public ExchangeFilter {
 public:
  FilterVerdict on_request(Exchange& x) override {
    if (x.reflections.empty()) return Continue{};
    x.request.headers.set("Accept-Encoding", "identity");
    x.guard = std::make_shared<ReflectionGuard>(x.reflections);
    return Continue{};
  }
  std::optional<Denial> on_response(Exchange& x, HttpResponse& response) override {
    if (!x.guard) return std::nullopt;
    for (const auto& h : response.headers.list())
      if (iequals(h.name, "content-encoding") && !iequals(h.value, "identity"))
        return Denial{502, "secret-reflection",
                      "upstream " + x.request.host +
                          " sent a content-encoded response to a request that carried a secret (the host "
                          "cannot check it for the secret's value)"};
    scrub_headers(*x.guard, response.headers);
    return std::nullopt;
  }
};

}  // namespace

FilterChain::FilterChain(const EgressContext& ctx) {
  filters_.push_back(std::make_unique<InterpretFilter>(ctx.policy));
  if (ctx.hooks) filters_.push_back(std::make_unique<HookFilter>(ctx.hooks));
  filters_.push_back(std::make_unique<AuthorizeFilter>(ctx.policy));
  filters_.push_back(std::make_unique<ReflectionFilter>());
}

void scrub_headers(const ReflectionGuard& guard, HttpHeaders& headers) {
  for (auto& h : headers.list()) h.value = guard.scrub(h.value);
}

FilterVerdict FilterChain::on_request(Exchange& x) const {
  for (const auto& f : filters_) {
    FilterVerdict v = f->on_request(x);
    if (!std::holds_alternative<Continue>(v)) return v;
  }
  return Continue{};
}

std::optional<Denial> FilterChain::on_response(Exchange& x, HttpResponse& response) const {
  for (const auto& f : filters_)
    if (auto d = f->on_response(x, response)) return d;
  return std::nullopt;
}

}  // namespace gondolin::egress
