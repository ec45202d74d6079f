/* The op benchmark, shared by `invedit bench ops` and the bench-ops program. */
#ifndef INVEDIT_BENCH_OPS_H
#define INVEDIT_BENCH_OPS_H
int bench_ops_main(int argc, char **argv);
#endif
