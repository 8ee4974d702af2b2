// The one assertion the fuzz harnesses use: a broken property prints what and aborts, which
// libFuzzer reports as a crash and the regression test (tests/fuzz_regressions) as a failure.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RRA_FUZZ_CHECK(cond, what)                                                               \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            std::fprintf(stderr, "fuzz property broken at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                         what, #cond);                                                           \
            std::abort();                                                                        \
        }                                                                                        \
    } while (0)
