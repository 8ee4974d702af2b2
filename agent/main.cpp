#include "app/agent_app.hpp"

#include <iostream>  // POCO_SERVER_MAIN reports exceptions on std::cerr

POCO_SERVER_MAIN(rra::app::AgentApp)
