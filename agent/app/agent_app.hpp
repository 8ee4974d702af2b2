// The process: command-line options, logging, signals, exit codes. Everything the agent
// does while running lives in AgentRuntime.
#pragma once

#include <Poco/Util/ServerApplication.h>

#include <optional>
#include <string>

namespace rra::app {

class AgentApp : public Poco::Util::ServerApplication {
  public:
    AgentApp();

    // Poco turns a bad command line into EXIT_CONFIG (78), which says "fix the config
    // file"; a wrong option is a usage error (64). POCO_SERVER_MAIN calls this run().
    int run(int argc, char** argv);
    using ServerApplication::run;

  protected:
    void initialize(Poco::Util::Application& self) override;
    void defineOptions(Poco::Util::OptionSet& options) override;
    void handleOption(const std::string& name, const std::string& value) override;
    int main(const std::vector<std::string>& args) override;

  private:
    int checkConfig();
    int printStatus();
    int runDaemon();
    std::string agentPath() const;
    // What is wrong with the command line, checked as Poco will parse it; nothing when fine.
    std::optional<std::string> commandLineProblem(int argc, char** argv);

    std::string configPath_ = "/etc/raspi-release-agent/agent.json";
    bool checkOnly_ = false;
    bool statusOnly_ = false;
    bool statusJson_ = false;
    bool exitEarly_ = false;
};

}  // namespace rra::app
