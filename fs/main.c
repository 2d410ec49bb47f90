/* main.c — the mqfs program: everything lives in the mq_fs library (daemon.c). */
#include <malloc.h>

#include "fs/mqfs.h"

int main(int argc, char **argv)
{
    /* Each write() of many lines becomes a batch of up to 4 MiB: keep such blocks in the heap
     * rather than mapping fresh memory for every one (bounded: at most 16 MiB kept free). */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    /* One consumer thread per open group file: two heaps, not one per thread. */
    mallopt(M_ARENA_MAX, 2);
    return mqfs_main(argc, argv);
}
