// Throwaway certificates for the loopback fakes, made with the openssl CLI at test time
// (no private key is committed): a CA, a server certificate for localhost, 127.0.0.1 and
// 127.0.0.2 signed by it, and an unrelated CA to prove that verification fails.
#pragma once

#include <string>

namespace rra::fakes {

struct TestPki {
    std::string dir, caFile, certFile, keyFile, otherCaFile;
    // Throws std::runtime_error when openssl fails.
    static TestPki generate(const std::string& dir);
};

}  // namespace rra::fakes
