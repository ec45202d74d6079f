#include "bench_ops.h"
int main(int argc, char **argv) { return bench_ops_main(argc, argv); }
