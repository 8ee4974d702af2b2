# CMake toolchain for cross-building the agent for the Raspberry Pi's arm64 (Debian 12 host,
# crossbuild-essential-arm64 + the :arm64 library packages; see scripts/cross-arm64).
#
# libpoco-dev:arm64 cannot be installed beside libpoco-dev:amd64, so its headers and CMake
# package come from a prefix it was extracted into: RRA_POCO_PREFIX (cache variable, or the
# environment variable of the same name), by default the one scripts/cross-arm64 makes.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT RRA_POCO_PREFIX)
  if(DEFINED ENV{RRA_POCO_PREFIX})
    set(RRA_POCO_PREFIX "$ENV{RRA_POCO_PREFIX}")
  else()
    set(RRA_POCO_PREFIX /var/tmp/rra-cross-arm64/poco)
  endif()
endif()
set(RRA_POCO_PREFIX "${RRA_POCO_PREFIX}" CACHE PATH "Where libpoco-dev:arm64 was extracted")
# try_compile projects re-read this file: hand them the prefix too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES RRA_POCO_PREFIX)

# The prefix first (Poco's headers and CMake package), then the multiarch system paths.
set(CMAKE_PREFIX_PATH "${RRA_POCO_PREFIX}/usr")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# pkg-config must only see arm64 .pc files (libarchive, libsystemd).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

# Lets CMake run arm64 programs it builds (tests, generators) on the host. qemu must run
# without -L: with it, the first thread start hangs.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
