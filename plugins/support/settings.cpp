// SettingsReader over Poco JSON; Poco's exceptions stay in this file.
#include "support/settings.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cmath>

namespace rra::plugin_support {

SettingsReader::SettingsReader(const std::string& json, std::string prefix)
    : prefix_(std::move(prefix)) {
    const std::string name = prefix_.empty() ? "settings" : prefix_.substr(0, prefix_.size() - 1);
    try {
        Poco::JSON::Parser parser;
        Poco::Dynamic::Var v = parser.parse(json.empty() ? "{}" : json);
        if (v.type() == typeid(Poco::JSON::Object::Ptr))
            object_ = v.extract<Poco::JSON::Object::Ptr>();
        else
            errors_.push_back(name + ": must be a JSON object");
    } catch (const Poco::Exception& e) {
        errors_.push_back(name + ": invalid JSON: " + e.displayText());
    }
}

bool SettingsReader::present(const std::string& key) {
    known_.insert(key);
    return object_ && object_->has(key) && !object_->isNull(key);
}

void SettingsReader::addError(const std::string& key, const std::string& problem) {
    errors_.push_back(prefix_ + key + ": " + problem);
}

std::string SettingsReader::requiredString(const std::string& key) {
    if (!present(key)) {
        addError(key, "required");
        return {};
    }
    auto s = optionalString(key);
    if (s && s->empty())
        addError(key, "must not be empty");
    return s.value_or("");
}

std::optional<std::string> SettingsReader::optionalString(const std::string& key) {
    if (!present(key))
        return std::nullopt;
    Poco::Dynamic::Var v = object_->get(key);
    if (!v.isString()) {
        addError(key, "must be a string");
        return std::nullopt;
    }
    return v.toString();
}

std::string SettingsReader::string(const std::string& key, const std::string& fallback) {
    return optionalString(key).value_or(fallback);
}

int64_t SettingsReader::integer(const std::string& key, int64_t fallback, int64_t min,
                                int64_t max) {
    if (!present(key))
        return fallback;
    Poco::Dynamic::Var v = object_->get(key);
    const std::string range =
        "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    try {
        int64_t n = 0;
        if (v.isInteger() && !v.isBoolean()) {
            n = v.convert<int64_t>();
        } else if (v.isNumeric() && !v.isBoolean()) {
            double d = v.convert<double>();
            if (std::floor(d) != d || d < -9.2e18 || d > 9.2e18) {
                addError(key, range);
                return fallback;
            }
            n = static_cast<int64_t>(d);
        } else {
            addError(key, range);
            return fallback;
        }
        if (n < min || n > max) {
            addError(key, range + ", got " + std::to_string(n));
            return fallback;
        }
        return n;
    } catch (const Poco::Exception&) {
        addError(key, range);
        return fallback;
    }
}

bool SettingsReader::boolean(const std::string& key, bool fallback) {
    if (!present(key))
        return fallback;
    Poco::Dynamic::Var v = object_->get(key);
    if (!v.isBoolean()) {
        addError(key, "must be true or false");
        return fallback;
    }
    return v.extract<bool>();
}

std::vector<std::string> SettingsReader::argv(const std::string& key) {
    if (!present(key))
        return {};
    Poco::JSON::Array::Ptr a = object_->getArray(key);
    const char* problem = "must be a non-empty array of non-empty strings";
    if (!a || a->size() == 0) {
        addError(key, problem);
        return {};
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < a->size(); ++i) {
        Poco::Dynamic::Var v = a->get(static_cast<unsigned>(i));
        if (!v.isString() || v.toString().empty()) {
            addError(key, std::string(problem) + " (element " + std::to_string(i) + ")");
            return {};
        }
        out.push_back(v.toString());
    }
    return out;
}

std::string SettingsReader::errorText() const {
    std::string out;
    for (const auto& e : errors_) {
        if (!out.empty())
            out += "; ";
        out += e;
    }
    return out;
}

std::vector<std::string> SettingsReader::unknownKeys() const {
    std::vector<std::string> out;
    if (!object_)
        return out;
    std::vector<std::string> names;
    object_->getNames(names);
    for (const auto& n : names)
        if (known_.count(n) == 0)
            out.push_back(prefix_ + n);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace rra::plugin_support
