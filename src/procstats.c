/*
 * procstats.c - the process's own resource use, read on demand (a scrape of
 * /metrics, SIGUSR1): open and maximum descriptors, resident and virtual
 * memory, CPU time and start time, as the Prometheus process_* metrics
 * define them.
 *
 * Owns nothing but the start time it remembers. Reads /proc/self (Linux);
 * elsewhere the values it cannot read are -1 and not exported. Never
 * called on a worker's hot path: counting /proc/self/fd costs a directory
 * read per descriptor batch.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "procstats.h"

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int64_t n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Unix time the process started: /proc/self/stat's starttime (clock ticks
 * after boot, field 22) plus the boot time from /proc/stat. */
static int64_t read_start_time(void)
{
    char buf[1024];
    long long btime = -1;
    unsigned long long ticks = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f != NULL) {
        while (fgets(buf, sizeof(buf), f) != NULL)
            if (strncmp(buf, "btime ", 6) == 0) {
                btime = strtoll(buf + 6, NULL, 10);
                break;
            }
        fclose(f);
    }
    f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': start after the
     * last ')'. Then field 3 is the state; starttime is field 22. */
    const char *p = strrchr(buf, ')');
    if (p == NULL || btime < 0)
        return -1;
    p++;
    for (int field = 3; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    long hz = sysconf(_SC_CLK_TCK);
    if (p == NULL || hz <= 0)
        return -1;
    char *end;
    ticks = strtoull(p, &end, 10);
    if (end == p)
        return -1;
    return (int64_t)btime + (int64_t)(ticks / (unsigned long long)hz);
}

void process_stats_read(struct process_stats *ps)
{
    static atomic_llong start; /* 0 until first read */
    long long st = atomic_load(&start);
    if (st == 0) {
        st = read_start_time();
        if (st <= 0)
            st = (long long)time(NULL);
        atomic_store(&start, st);
    }
    ps->start_time = st;
    ps->open_fds = count_fds();

    struct rlimit rl;
    ps->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? (int64_t)rl.rlim_cur
                      : -1;

    ps->rss_bytes = ps->virtual_bytes = -1;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f != NULL) {
        char line[128];
        long page = sysconf(_SC_PAGESIZE);
        if (fgets(line, sizeof(line), f) != NULL && page > 0) {
            char *end, *end2;
            unsigned long long size = strtoull(line, &end, 10);
            unsigned long long resident = strtoull(end, &end2, 10);
            if (end != line && end2 != end) {
                ps->virtual_bytes = (int64_t)(size * (unsigned long long)page);
                ps->rss_bytes = (int64_t)(resident * (unsigned long long)page);
            }
        }
        fclose(f);
    }

    struct rusage ru;
    ps->cpu_seconds = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        ps->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
