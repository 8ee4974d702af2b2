// The status file in agent.runtime_dir that `--status` reads: rewritten atomically
// (temp file + rename) by a background thread at most every few hundred milliseconds, so
// a burst of state changes costs one write.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace rra::app {

class StatusFile {
  public:
    // `render` produces the JSON document; it is called on the writer thread.
    StatusFile(std::string path, std::function<std::string()> render);
    ~StatusFile();
    void markDirty();
    void stop();  // writes a last time and joins

  private:
    void run();
    void writeNow();

    std::string path_;
    std::function<std::string()> render_;
    std::mutex m_;
    std::condition_variable cv_;
    bool dirty_ = true;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace rra::app
