#include "daemon/daemon.h"

int main(int argc, char** argv) { return wxcanary::daemon::Main(argc, argv); }
