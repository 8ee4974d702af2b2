# CMake package of the raspi-release-agent plugin SDK.
#   find_package(RaspiReleaseSDK REQUIRED)
#   raspi_release_add_plugin(mydeployer mydeployer.cpp)
# builds mydeployer.so with hidden visibility, ready for agent.plugin_dir.
get_filename_component(_rra_sdk_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET RaspiRelease::sdk)
  add_library(RaspiRelease::sdk INTERFACE IMPORTED)
  set_target_properties(RaspiRelease::sdk PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_rra_sdk_prefix}/include")
endif()
set(RaspiReleaseSDK_ABI_MAJOR 1)

function(raspi_release_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(${name} PRIVATE RaspiRelease::sdk)
endfunction()
