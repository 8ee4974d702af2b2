#include "app/status_file.hpp"

#include <Poco/Logger.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace rra::app {

StatusFile::StatusFile(std::string path, std::function<std::string()> render)
    : path_(std::move(path)), render_(std::move(render)), thread_([this] { run(); }) {}

StatusFile::~StatusFile() {
    stop();
}

void StatusFile::markDirty() {
    {
        std::lock_guard<std::mutex> lk(m_);
        dirty_ = true;
    }
    cv_.notify_one();
}

void StatusFile::stop() {
    {
        std::lock_guard<std::mutex> lk(m_);
        if (stop_)
            return;
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable())
        thread_.join();
    writeNow();
}

void StatusFile::run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stop_) {
        cv_.wait(lk, [this] { return dirty_ || stop_; });
        if (stop_)
            break;
        dirty_ = false;
        lk.unlock();
        writeNow();
        lk.lock();
        // Coalesce bursts: at most a few writes a second.
        cv_.wait_for(lk, std::chrono::milliseconds(250), [this] { return stop_; });
    }
}

void StatusFile::writeNow() {
    std::string doc;
    try {
        doc = render_();
    } catch (const std::exception& e) {
        Poco::Logger::get("agent").warning(std::string("status: ") + e.what());
        return;
    }
    std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        Poco::Logger::get("agent").warning("status file '" + tmp + "': " + strerror(errno));
        return;
    }
    ssize_t w = ::write(fd, doc.data(), doc.size());
    ::close(fd);
    if (w != static_cast<ssize_t>(doc.size()) || ::rename(tmp.c_str(), path_.c_str()) != 0)
        Poco::Logger::get("agent").warning("status file '" + path_ + "': " + strerror(errno));
}

}  // namespace rra::app
