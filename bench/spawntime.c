/* spawntime N CMD [ARG...] [-- CMD [ARG...]]...
 *
 * Exec-to-exit timer for bench/run. Runs every command N times, in rounds
 * (each command once per round), so that whatever else the machine is doing
 * slows all of them alike. Each round takes the commands in a new shuffled
 * order: a run starts with the caches its predecessor left, and in a fixed
 * order the program after a heavy one (qemu-user's 8 ms start, say) always
 * paid for it, about 20% here. Each run is posix_spawn() + waitpid(),
 * timed with CLOCK_MONOTONIC, with stdout and stderr on /dev/null. Prints one
 * line per command: the median in nanoseconds, or "fail exit N",
 * "fail signal N" or "fail spawn" if a run did not exit 0 (that command is
 * then not run again). A C timer rather than a script, so that the timer's
 * own overhead stays small next to a 2-syscall program.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { WARMUP = 20 };

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* One run; returns its wait status and stores its duration. */
static int run_once(char **argv, const posix_spawn_file_actions_t *fa, long long *ns)
{
    pid_t pid;
    int status;
    long long t0 = now_ns();
    if (posix_spawn(&pid, argv[0], fa, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    *ns = now_ns() - t0;
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawntime N CMD [ARG...] [-- CMD [ARG...]]...\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    if (n < 1) {
        fprintf(stderr, "spawntime: N must be at least 1\n");
        return 2;
    }

    /* Split argv[2..] at "--" into commands, in place. */
    char **cmd[argc];
    int ncmd = 0;
    cmd[ncmd++] = &argv[2];
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            cmd[ncmd++] = &argv[i + 1];
        }

    int devnull = open("/dev/null", O_WRONLY);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    posix_spawn_file_actions_adddup2(&fa, devnull, 2);

    long long *ns = calloc((size_t)ncmd * (size_t)n, sizeof *ns);
    int *bad = calloc((size_t)ncmd, sizeof *bad); /* first non-zero status */
    int order[ncmd];
    for (int c = 0; c < ncmd; c++)
        order[c] = c;
    unsigned long long rng = 0x9e3779b97f4a7c15ULL; /* fixed: runs repeat */
    for (long i = -WARMUP; i < n; i++) {
        for (int k = ncmd - 1; k > 0; k--) { /* Fisher-Yates */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int j = (int)(rng % (unsigned long long)(k + 1)), tmp = order[k];
            order[k] = order[j], order[j] = tmp;
        }
        for (int o = 0; o < ncmd; o++) {
            int c = order[o];
            long long t;
            if (bad[c])
                continue;
            int status = run_once(cmd[c], &fa, &t);
            if (status != 0)
                bad[c] = status;
            else if (i >= 0)
                ns[c * n + i] = t;
        }
    }

    for (int c = 0; c < ncmd; c++) {
        if (bad[c] == -1)
            printf("fail spawn\n");
        else if (bad[c] && WIFEXITED(bad[c]))
            printf("fail exit %d\n", WEXITSTATUS(bad[c]));
        else if (bad[c])
            printf("fail signal %d\n", WTERMSIG(bad[c]));
        if (bad[c])
            continue;
        qsort(&ns[c * n], (size_t)n, sizeof *ns, by_value);
        printf("%lld\n", ns[c * n + n / 2]);
    }
    return 0;
}
