// A value that must never reach a log, an error message or telemetry: it prints as ***
// and only reveal() gives the text, so every use of the real value is greppable.
#pragma once

#include <ostream>
#include <string>

namespace rra {

class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}

    bool empty() const { return value_.empty(); }
    const std::string& reveal() const { return value_; }
    bool operator==(const Secret& o) const { return value_ == o.value_; }
    bool operator!=(const Secret& o) const { return value_ != o.value_; }

    friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }
    std::string toString() const { return "***"; }

  private:
    std::string value_;
};

}  // namespace rra
