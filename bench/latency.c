/* bench/latency.c - latency probes for the tunnel benchmark.
 *
 *   latency serve PORT            accept loop: send "!" on accept, then echo
 *   latency connect HOST PORT N   N times: connect, wait for the first byte
 *   latency rtt HOST PORT N       one connection, N 1-byte round trips
 *
 * Prints "p50_us p99_us" for the client modes. Blocking sockets, one thread
 * per accepted connection: the probe must not be the bottleneck. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    if (write(fd, "!", 1) == 1)
        while ((n = read(fd, buf, sizeof buf)) > 0)
            if (write(fd, buf, (size_t)n) != n) break;
    close(fd);
    return NULL;
}

static int dial(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    printf("%.1f %.1f\n", v[n / 2], v[(int)(n * 0.99)]);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1024)) {
            perror("listen");
            return 1;
        }
        for (;;) {
            int fd = accept(l, NULL, NULL);
            if (fd < 0) continue;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            pthread_t t;
            pthread_create(&t, NULL, echo, (void *)(intptr_t)fd);
            pthread_detach(t);
        }
    }
    if (argc != 5) {
        fprintf(stderr, "usage: latency serve PORT | connect|rtt HOST PORT N\n");
        return 2;
    }
    int port = atoi(argv[3]), n = atoi(argv[4]);
    double *v = calloc((size_t)n, sizeof *v);
    char c;
    if (strcmp(argv[1], "connect") == 0) {
        for (int i = 0; i < n; i++) {
            double t0 = now_us();
            int fd = dial(argv[2], port);
            if (read(fd, &c, 1) != 1) return 1;
            v[i] = now_us() - t0;
            close(fd);
        }
    } else {
        int fd = dial(argv[2], port);
        if (read(fd, &c, 1) != 1) return 1;
        for (int i = 0; i < n; i++) {
            double t0 = now_us();
            if (write(fd, "x", 1) != 1 || read(fd, &c, 1) != 1) return 1;
            v[i] = now_us() - t0;
        }
        close(fd);
    }
    report(v, n);
    free(v);
    return 0;
}
