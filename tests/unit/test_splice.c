/* test_splice.c - a plain relay between two loopback TCP connections takes
 * the splice path: bytes arrive in order both ways, the `first` bytes go
 * ahead, the stats counters move as bytes flow, half-close passes through,
 * and once the relay ends no pipe is left (live or pooled). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "relay.h"
#include "splice.h"
#include "unit.h"

/* A connected pair of loopback TCP sockets: *out_a and *out_b. */
static int tcp_pair(int *out_a, int *out_b)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    int a = socket(AF_INET, SOCK_STREAM, 0);
    if (a < 0 || connect(a, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    int b = accept(l, NULL, NULL);
    close(l);
    if (b < 0) return -1;
    *out_a = a;
    *out_b = b;
    return 0;
}

static int released;

static void release(uv_tcp_t *h)
{
    (void)h;
    released++;
}

/* Runs the loop until `want` bytes arrived on fd (into buf), or EOF when
 * want is 0. Returns the bytes read, -1 on EOF first. */
static long pump_until(uv_loop_t *loop, int fd, char *buf, size_t want)
{
    size_t got = 0;
    for (int i = 0; i < 200000; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf + got, want - got + (want == 0), MSG_DONTWAIT);
        if (n == 0) return want == 0 ? 0 : -1;
        if (n > 0) got += (size_t)n;
        if (want > 0 && got == want) return (long)got;
    }
    return (long)got;
}

static void test_plain_relay_splices_both_ways_with_stats_and_half_close(void)
{
    uv_loop_t loop;
    uv_tcp_t ha, hb;
    int x, a, b, y; /* x <-> a (relay) b <-> y */
    list_t set;
    relay_stats_t stats = {{0, 0}};
    static char up[100000], down[50000], buf[100000];
    for (size_t i = 0; i < sizeof up; i++) up[i] = (char)(i * 7);
    for (size_t i = 0; i < sizeof down; i++) down[i] = (char)(i * 13 + 1);

    CHECK(splice_enabled());
    CHECK(tcp_pair(&x, &a) == 0 && tcp_pair(&b, &y) == 0);
    uv_loop_init(&loop);
    list_init(&set);
    uv_tcp_init(&loop, &ha);
    uv_tcp_init(&loop, &hb);
    CHECK(uv_tcp_open(&ha, a) == 0 && uv_tcp_open(&hb, b) == 0);
    CHECK(relay_start(&set, &ha, release, &hb, release, (const uint8_t *)"first", 5, &stats) == 0);
    CHECK(splice_counters()->relays == 1);

    /* a -> b: the first bytes, then what x sends. */
    CHECK(send(x, up, sizeof up, 0) == (ssize_t)sizeof up);
    CHECK(pump_until(&loop, y, buf, 5) == 5);
    CHECK_MEM(buf, 5, "first", 5);
    CHECK(pump_until(&loop, y, buf, sizeof up) == (long)sizeof up);
    CHECK_MEM(buf, sizeof up, up, sizeof up);
    CHECK(stats.bytes[0] == 5 + sizeof up);

    /* b -> a */
    CHECK(send(y, down, sizeof down, 0) == (ssize_t)sizeof down);
    CHECK(pump_until(&loop, x, buf, sizeof down) == (long)sizeof down);
    CHECK_MEM(buf, sizeof down, down, sizeof down);
    CHECK(stats.bytes[1] == sizeof down);
    CHECK(splice_counters()->bytes == sizeof up + sizeof down);

    /* Half-close: x's FIN reaches y, and y can still answer. */
    shutdown(x, SHUT_WR);
    CHECK(pump_until(&loop, y, buf, 0) == 0);
    CHECK(send(y, "late", 4, 0) == 4);
    CHECK(pump_until(&loop, x, buf, 4) == 4);
    CHECK_MEM(buf, 4, "late", 4);
    shutdown(y, SHUT_WR);
    CHECK(pump_until(&loop, x, buf, 0) == 0);

    /* Both directions done: the relay ends by itself. */
    for (int i = 0; i < 100000 && released < 2; i++) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(released == 2);
    CHECK(list_empty(&set));
    CHECK(splice_counters()->pipes_live == 0 && splice_counters()->pipes_pooled == 0);
    CHECK(uv_loop_close(&loop) == 0);
    close(x);
    close(y);
    relay_pool_drain();
}

int main(void)
{
    unsetenv("BORE_SPLICE"); /* this test is about the splice path */
    RUN(test_plain_relay_splices_both_ways_with_stats_and_half_close);
    UNIT_DONE();
}
