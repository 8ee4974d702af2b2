// Reading a component's `settings` JSON object: typed getters that collect every problem
// by key ("settings.keep: must be an integer >= 1") and report the keys nobody asked for.
#pragma once

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rra::plugin_support {

class SettingsReader {
  public:
    // `json` is the settings object as the host passes it ("{}" when absent). A parse error
    // or a non-object is recorded like any other problem.
    explicit SettingsReader(const std::string& json, std::string prefix = "settings.");

    // Every getter marks its key as known. A missing optional key yields the default; a
    // value of the wrong type records an error and yields the default too.
    std::string requiredString(const std::string& key);
    std::optional<std::string> optionalString(const std::string& key);
    std::string string(const std::string& key, const std::string& fallback);
    int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max);
    bool boolean(const std::string& key, bool fallback);
    // A non-empty array of non-empty strings (a command line); empty when absent.
    std::vector<std::string> argv(const std::string& key);

    // Records a problem found by the plugin's own checks, e.g. ("install_dir", "must be an
    // absolute path").
    void addError(const std::string& key, const std::string& problem);

    bool hasErrors() const { return !errors_.empty(); }
    // All problems joined by "; ", in the order found.
    std::string errorText() const;
    // Keys present in the object that no getter asked for, with the prefix, sorted.
    std::vector<std::string> unknownKeys() const;

  private:
    bool present(const std::string& key);

    std::string prefix_;
    Poco::JSON::Object::Ptr object_;
    std::set<std::string> known_;
    std::vector<std::string> errors_;
};

}  // namespace rra::plugin_support
