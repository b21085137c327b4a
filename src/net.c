/* net.c - see net.h. */
#include "net.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)out) == 0) return 0;
    return uv_ip6_addr(ip, port, (struct sockaddr_in6 *)out);
}

static int ipv4_is_public(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } local[] = {
        {0x00000000, 0xff000000}, /* 0/8 "this network" */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 shared (carrier NAT) */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 protocol assignments */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24 documentation */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24 documentation */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24 documentation */
        {0xe0000000, 0xe0000000}, /* 224/3 multicast and reserved */
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if ((a & local[i].mask) == local[i].net) return 0;
    return 1;
}

int net_is_public(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ipv4_is_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->ss_family != AF_INET6) return 0;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, 12) == 0)
        return ipv4_is_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    static const uint8_t zero[15] = {0};
    if (memcmp(b, zero, 15) == 0) return 0;         /* :: and ::1 */
    if ((b[0] & 0xfe) == 0xfc) return 0;            /* fc00::/7 unique local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return 0; /* fe80::/10 link-local */
    if (b[0] == 0xff) return 0;                     /* multicast */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return 0; /* 2001:db8::/32 */
    return 1;
}

int net_listen_fd(const char *ip, uint16_t port, int backlog)
{
    struct sockaddr_storage sa;
    int rc = net_parse_ip(ip, port, &sa);
    if (rc != 0) return rc;

    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    socklen_t len = sa.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6);
    /* SO_REUSEADDR as upstream (tokio) sets it: a port in TIME_WAIT is free. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, backlog) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* One descriptor kept open to be given up when accept fails for want of
 * one: closing it lets the pending connection be accepted and closed. */
static int reserve_fd = -1;

static void reserve(void)
{
    if (reserve_fd < 0) reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
}

/* Descriptors ran out: accept the pending connection with the reserve's
 * and close it at once, so the peer sees EOF. Returns 1 if one was shed,
 * -1 if nothing was pending (accept(2) reports EMFILE before it looks at
 * the queue), 0 if it could not be shed. */
static int shed_one(int lfd)
{
    if (reserve_fd < 0) return 0;
    close(reserve_fd);
    reserve_fd = -1;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) close(fd);
    reserve();
    if (fd >= 0) return 1;
    return err == EAGAIN || err == EWOULDBLOCK ? -1 : 0;
}

#define ACCEPTS_PER_WAKEUP 128 /* then other handles get their turn */

static void on_listen_ready(uv_poll_t *p, int status, int events)
{
    net_listener_t *l = (net_listener_t *)p;
    (void)events;
    if (status < 0) {
        l->on_accept(l, -1, status);
        return;
    }
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && l->fd >= 0; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            l->on_accept(l, fd, 0);
            continue;
        }
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == ECONNABORTED || err == EINTR) continue;
        if (err == EMFILE || err == ENFILE) {
            int shed = shed_one(l->fd);
            if (shed < 0) return; /* the queue is empty: nobody was refused */
            l->shed += (uint64_t)shed;
        }
        l->on_accept(l, -1, -err);
        if (err != EMFILE && err != ENFILE) return;
    }
}

int net_listener_start(uv_loop_t *loop, net_listener_t *l, int fd, net_accept_cb cb,
                       int *initialised)
{
    reserve();
    l->fd = fd;
    l->on_accept = cb;
    l->shed = 0;
    int rc = uv_poll_init(loop, &l->poll, fd);
    *initialised = rc == 0;
    if (rc != 0) {
        close(fd);
        l->fd = -1;
        return rc;
    }
    return uv_poll_start(&l->poll, UV_READABLE, on_listen_ready);
}

void net_listener_close(net_listener_t *l, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&l->poll, cb);
    if (l->fd >= 0) close(l->fd); /* after uv_close: the poll no longer watches it */
    l->fd = -1;
}

int net_adopt(uv_loop_t *loop, uv_tcp_t *handle, int fd, int *initialised)
{
    int rc = uv_tcp_init(loop, handle);
    *initialised = rc == 0;
    if (rc == 0) rc = uv_tcp_open(handle, fd);
    if (rc != 0) close(fd);
    return rc;
}

void net_tune(uv_tcp_t *handle, unsigned keepalive_secs)
{
    (void)uv_tcp_nodelay(handle, 1);
    if (keepalive_secs > 0) (void)uv_tcp_keepalive(handle, 1, keepalive_secs);
}

void net_detect_dead_peer(uv_tcp_t *handle, unsigned secs)
{
    uv_os_fd_t fd;
    if (secs == 0 || uv_fileno((const uv_handle_t *)handle, &fd) != 0) return;
    int on = 1, idle = (int)(secs / 4 ? secs / 4 : 1), intvl = idle, cnt = 3;
    unsigned timeout_ms = secs * 1000;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
}

const char *net_peer(const uv_tcp_t *handle, char buf[NET_ADDR_STRLEN])
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char ip[INET6_ADDRSTRLEN];
    if (uv_tcp_getpeername(handle, (struct sockaddr *)&sa, &len) != 0) return "?";
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        uv_ip4_name(in, ip, sizeof ip);
        snprintf(buf, NET_ADDR_STRLEN, "%s:%u", ip, ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        uv_ip6_name(in6, ip, sizeof ip);
        snprintf(buf, NET_ADDR_STRLEN, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    return buf;
}

uint16_t net_local_port(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return 0;
    if (sa.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&sa)->sin6_port);
}
