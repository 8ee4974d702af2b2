#include "app/agent_app.hpp"

#include "app/agent_runtime.hpp"
#include "app/logging.hpp"
#include "app/status_format.hpp"
#include "common/error.hpp"
#include "common/version.hpp"

#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <Poco/Util/OptionSet.h>

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#ifdef RRA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace rra::app {
namespace {

constexpr int kExitConfig = 78;  // EX_CONFIG
constexpr int kExitUsage = 64;   // EX_USAGE

sigset_t handledSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGQUIT);
    return set;
}

void notifySystemd(const char* state) {
#ifdef RRA_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

// Watchdog interval requested by systemd (WatchdogSec=), or 0.
uint64_t watchdogUsec() {
#ifdef RRA_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        return usec;
#endif
    return 0;
}

}  // namespace

AgentApp::AgentApp() {
    // Signals are taken synchronously by the main loop (sigtimedwait), so they must be
    // blocked before any thread exists; threads inherit the mask.
    sigset_t set = handledSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    setUnixOptions(true);
}

int AgentApp::run(int argc, char** argv) {
    if (auto problem = commandLineProblem(argc, argv)) {
        std::cerr << "raspi-release-agent: " << *problem << " (see --help)" << std::endl;
        return kExitUsage;
    }
    return ServerApplication::run(argc, argv);
}

std::optional<std::string> AgentApp::commandLineProblem(int argc, char** argv) {
    // The same options and rules Poco's init() applies; defining them on a local set has
    // no side effect (handlers run only from handleOption).
    Poco::Util::OptionSet set;
    defineOptions(set);
    Poco::Util::OptionProcessor processor(set);
    processor.setUnixStyle(true);
    try {
        for (int i = 1; i < argc; ++i) {
            std::string name, value;
            processor.process(argv[i], name, value);
            if (name == "help" || name == "version")
                return std::nullopt;  // they stop option processing
        }
        processor.checkRequired();
    } catch (const Poco::Util::OptionException& e) {
        return e.displayText();
    }
    return std::nullopt;
}

void AgentApp::initialize(Poco::Util::Application& self) {
    ServerApplication::initialize(self);
}

void AgentApp::defineOptions(Poco::Util::OptionSet& options) {
    ServerApplication::defineOptions(options);
    options.addOption(Poco::Util::Option("config", "c", "main configuration file")
                          .required(false)
                          .repeatable(false)
                          .argument("FILE"));
    options.addOption(Poco::Util::Option("check-config", "", "validate the configuration and exit")
                          .required(false)
                          .repeatable(false));
    options.addOption(Poco::Util::Option("status", "", "print the running agent's status and exit")
                          .required(false)
                          .repeatable(false));
    options.addOption(
        Poco::Util::Option("json", "", "with --status: print the status file as is (JSON)")
            .required(false)
            .repeatable(false));
    options.addOption(Poco::Util::Option("version", "v", "print the version and exit")
                          .required(false)
                          .repeatable(false));
    options.addOption(Poco::Util::Option("help", "h", "print this help and exit")
                          .required(false)
                          .repeatable(false));
}

void AgentApp::handleOption(const std::string& name, const std::string& value) {
    ServerApplication::handleOption(name, value);
    if (name == "config") {
        configPath_ = value;
    } else if (name == "check-config") {
        checkOnly_ = true;
    } else if (name == "status") {
        statusOnly_ = true;
    } else if (name == "json") {
        statusJson_ = true;
    } else if (name == "version") {
        std::cout << "raspi-release-agent " << kAgentVersion << std::endl;
        exitEarly_ = true;
        stopOptionsProcessing();
    } else if (name == "help") {
        Poco::Util::HelpFormatter help(options());
        help.setCommand(commandName());
        help.setUsage("[--config=FILE] [--check-config | --status [--json] | --version | --help]");
        help.setHeader(
            "raspi-release-agent keeps the components named in its configuration up to date "
            "from GitHub releases announced by a raspi-release-proxy. It runs in the "
            "foreground; SIGHUP reloads the configuration.");
        help.format(std::cout);
        exitEarly_ = true;
        stopOptionsProcessing();
    }
}

std::string AgentApp::agentPath() const {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return config().getString("application.path", "");
    buf[n] = '\0';
    return buf;
}

int AgentApp::main(const std::vector<std::string>&) {
    if (exitEarly_)
        return EXIT_OK;
    if (statusOnly_)
        return printStatus();
    if (checkOnly_)
        return checkConfig();
    return runDaemon();
}

int AgentApp::checkConfig() {
    auto v = validateConfig(configPath_, agentPath());
    for (const auto& w : v.warnings)
        std::cerr << "warning: " << w << "\n";
    for (const auto& e : v.errors)
        std::cerr << "error: " << e << "\n";
    if (!v.valid) {
        std::cerr << configPath_ << ": configuration invalid (" << v.errors.size() << " problem(s))"
                  << std::endl;
        return kExitConfig;
    }
    const auto& c = v.valid->config;
    std::cout << configPath_ << ": configuration OK: agent '" << c.agent.id << "', "
              << c.components.size() << " component(s), " << v.valid->plugins.byName.size()
              << " plugin(s)" << std::endl;
    return EXIT_OK;
}

int AgentApp::printStatus() {
    auto loaded =
        config::loadConfig(configPath_, config::LoadEnvironment::fromProcess(agentPath()));
    std::string runtimeDir;
    if (loaded.config) {
        runtimeDir = loaded.config->agent.runtimeDir;
    } else {
        const char* rd = ::getenv("RUNTIME_DIRECTORY");
        runtimeDir = rd ? rd : "/run/raspi-release-agent";
    }
    const std::string path = runtimeDir + "/status.json";
    std::ifstream in(path);
    if (!in) {
        std::cerr << "no status in " << path << ": is the agent running?" << std::endl;
        return EXIT_UNAVAILABLE;
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (statusJson_) {
        std::cout << content.str() << std::endl;
        return EXIT_OK;
    }
    auto isAlive = [](int pid) { return ::kill(pid, 0) == 0 || errno == EPERM; };
    auto s = formatStatus(content.str(), path, isAlive, static_cast<int64_t>(::time(nullptr)));
    if (!s) {
        std::cerr << s.error().message() << std::endl;
        return EXIT_DATAERR;
    }
    std::cout << s->text << std::flush;
    // A status left by an agent that is gone is history, not the state of the device.
    return s->agentRunning ? EXIT_OK : EXIT_UNAVAILABLE;
}

int AgentApp::runDaemon() {
    setUpLogging("information");
    auto& log = Poco::Logger::get("agent");
    auto v = validateConfig(configPath_, agentPath());
    for (const auto& w : v.warnings)
        log.warning(w);
    if (!v.valid) {
        for (const auto& e : v.errors)
            log.fatal(e);
        log.fatal(configPath_ + ": configuration invalid (" + std::to_string(v.errors.size()) +
                  " problem(s)); not starting");
        notifySystemd("STATUS=configuration invalid");
        return kExitConfig;
    }
    setLogLevel(v.valid->config.agent.logLevel);
    log.information(std::string("raspi-release-agent ") + kAgentVersion + " starting with " +
                    configPath_);

    Poco::Net::initializeSSL();
    // A certificate that fails verification is refused, never asked about on a console:
    // the clients build their own verifying contexts, this covers Poco's fallback path.
    Poco::SharedPtr<Poco::Net::InvalidCertificateHandler> reject =
        new Poco::Net::RejectCertificateHandler(false);
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
    params.loadDefaultCAs = true;
    Poco::Net::SSLManager::instance().initializeClient(
        nullptr, reject, new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params));
    AgentRuntime runtime(agentPath());
    if (auto s = runtime.start(std::move(*v.valid)); !s) {
        log.fatal(s.error().message());
        // A config the runtime cannot use (say a work_dir it cannot create) is a config
        // error, not a bug: systemd must not restart-loop on it.
        return s.error().code() == ErrorCode::kConfig ? kExitConfig : EXIT_SOFTWARE;
    }
    notifySystemd("READY=1\nSTATUS=running");

    // One loop takes every signal synchronously: SIGHUP reloads, INT/TERM/QUIT stop, and
    // the timeout feeds the systemd watchdog when one is configured.
    uint64_t wd = watchdogUsec();
    long tickMs = wd ? static_cast<long>(std::max<uint64_t>(wd / 2000, 100)) : 1000;
    sigset_t set = handledSignals();
    while (true) {
        timespec ts{tickMs / 1000, (tickMs % 1000) * 1000000L};
        int sig = sigtimedwait(&set, nullptr, &ts);
        if (wd)
            notifySystemd("WATCHDOG=1");
        if (sig < 0)
            continue;  // timeout or EINTR
        if (sig == SIGHUP) {
            notifySystemd("RELOADING=1");
            runtime.reload();
            notifySystemd("READY=1");
            continue;
        }
        log.information(std::string("received ") + strsignal(sig) + ", stopping");
        break;
    }
    notifySystemd("STOPPING=1");
    runtime.stop(Millis(8000));
    log.information("stopped");
    Poco::Net::uninitializeSSL();
    return EXIT_OK;
}

}  // namespace rra::app
