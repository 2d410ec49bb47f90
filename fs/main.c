/* main.c — the mqfs program: everything lives in the mq_fs library (daemon.c). */
#include "fs/mqfs.h"

int main(int argc, char **argv)
{
    return mqfs_main(argc, argv);
}
