#include "app/logging.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>

#include <unistd.h>

#include <vector>

namespace rra::app {

void setUpLogging(const std::string& level) {
    // Under systemd the journal stamps each line; elsewhere a UTC time helps.
    bool underJournal = ::getenv("JOURNAL_STREAM") != nullptr;
    Poco::AutoPtr<Poco::PatternFormatter> fmt(
        new Poco::PatternFormatter(underJournal ? "%p %s: %t" : "%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
    fmt->setProperty("times", "UTC");
    Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel);
    Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(fmt, console));
    Poco::Logger::root().setChannel(channel);
    std::vector<std::string> names;
    Poco::Logger::names(names);
    for (const auto& n : names)
        Poco::Logger::get(n).setChannel(channel);
    setLogLevel(level);
}

void setLogLevel(const std::string& level) {
    Poco::Logger::root().setLevel(level);
    std::vector<std::string> names;
    Poco::Logger::names(names);
    for (const auto& n : names)
        Poco::Logger::get(n).setLevel(level);
}

}  // namespace rra::app
