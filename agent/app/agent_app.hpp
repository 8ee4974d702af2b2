// The process: command-line options, logging, signals, exit codes. Everything the agent
// does while running lives in AgentRuntime.
#pragma once

#include <Poco/Util/ServerApplication.h>

#include <string>

namespace rra::app {

class AgentApp : public Poco::Util::ServerApplication {
  public:
    AgentApp();

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

    std::string configPath_ = "/etc/raspi-release-agent/agent.json";
    bool checkOnly_ = false;
    bool statusOnly_ = false;
    bool statusJson_ = false;
    bool exitEarly_ = false;
};

}  // namespace rra::app
