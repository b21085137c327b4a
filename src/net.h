/* net.h - every socket detail in one place: listeners bound synchronously
 * (so a port search can try many ports without waiting for close callbacks),
 * socket options, and printable peer addresses.
 *
 * Error convention: 0 or a negative libuv error code (UV_E*). */
#ifndef BORE_NET_H
#define BORE_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#define NET_ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/* Parses a literal IPv4 or IPv6 address with a port into *out. */
int net_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *out);

/* 1 if the address is reachable from the internet at large: not loopback,
 * private (RFC 1918, RFC 6598, fc00::/7), link-local, documentation or
 * multicast. */
int net_is_public(const struct sockaddr_storage *sa);

/* A non-blocking, close-on-exec socket bound to ip:port and listening.
 * Returns the fd, or a negative error: the bind errors of a port search
 * (UV_EADDRINUSE, UV_EACCES) come from here, synchronously. */
int net_listen_fd(const char *ip, uint16_t port, int backlog);

/* Wraps a listening fd in an initialised `handle` and starts accepting.
 * On failure before uv_tcp_init succeeds the fd is closed and the handle is
 * untouched (returns < 0, *initialised = 0); after it, the caller must
 * uv_close the handle (*initialised = 1). */
int net_listen_start(uv_loop_t *loop, uv_tcp_t *handle, int fd, int backlog, uv_connection_cb cb,
                     int *initialised);

/* TCP_NODELAY, and keepalive when `keepalive_secs` > 0. Failures are ignored:
 * these are optimisations on an already working socket. */
void net_tune(uv_tcp_t *handle, unsigned keepalive_secs);

/* The peer's "ip:port", or "?" if unknown. */
const char *net_peer(const uv_tcp_t *handle, char buf[NET_ADDR_STRLEN]);

/* The locally bound port of a listener, or 0. */
uint16_t net_local_port(const uv_tcp_t *handle);

#endif
