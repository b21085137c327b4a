/* net.c - see net.h. */
#include "net.h"

#include <errno.h>
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

int net_listen_start(uv_loop_t *loop, uv_tcp_t *handle, int fd, int backlog, uv_connection_cb cb,
                     int *initialised)
{
    int rc = uv_tcp_init(loop, handle);
    *initialised = rc == 0;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    if ((rc = uv_tcp_open(handle, fd)) != 0) {
        close(fd);
        return rc;
    }
    return uv_listen((uv_stream_t *)handle, backlog, cb);
}

void net_tune(uv_tcp_t *handle, unsigned keepalive_secs)
{
    (void)uv_tcp_nodelay(handle, 1);
    if (keepalive_secs > 0) (void)uv_tcp_keepalive(handle, 1, keepalive_secs);
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

uint16_t net_local_port(const uv_tcp_t *handle)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getsockname(handle, (struct sockaddr *)&sa, &len) != 0) return 0;
    if (sa.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&sa)->sin6_port);
}
